"""A repository whose README, comments and strings carry `<script>` tags, `onerror` attributes and `javascript:`
links, graded and opened by a manager: everything shows as text, nothing runs, no link leads to script."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot, sign_in

pytestmark = pytest.mark.browser


def test_a_hostile_repository_renders_inert(page: Page, site: Site) -> None:
    organisation = site.organisation("Contoso")
    manager = site.identity("manager", organisation)
    candidate = site.identity("candidate")
    with site.api(manager) as api:
        rubrics = api.get("/api/rubrics").json()["items"]
        capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
        position = api.post("/api/positions", json={"title": "Hostile", "rubric_version_id": capstone["id"]}).json()
    with site.api(candidate) as api, site.grader():
        api.post("/api/positions/join", json={"invite_code": position["invite_code"]}).raise_for_status()
        submitted = api.post("/api/submissions", json={"target": "fixture:hostile", "position_id": position["id"]})
        assert site.wait_graded(candidate, submitted.json()["id"])["status"] == "done"

    # Anything that runs would show up: a dialog (the page fixture fails on one), or this marker being set.
    page.add_init_script("window.__ran = []; window.alert = (m) => window.__ran.push(String(m));")
    sign_in(page, site, manager)
    page.goto(f"{site.base}/submissions/{submitted.json()['id']}")
    report = page.locator(".report")
    expect(report).to_be_visible()
    for details in report.locator("details").all():
        details.evaluate("element => element.open = true")

    # The hostile text is there, as text.
    expect(report).to_contain_text("javascript:alert('link')")
    expect(report).to_contain_text("<a href=\"javascript:alert('anchor')\">")
    expect(report).to_contain_text('<script>alert("grader")</script>')
    # And none of it became markup: no script, no handler attribute, no javascript: link anywhere on the page.
    assert report.locator("script").count() == 0
    assert page.locator("[onerror], [onload], [onclick]").count() == 0
    hrefs = page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and not [
        href for href in hrefs if href.strip().lower().startswith(("javascript:", "data:", "vbscript:"))
    ]
    assert all(
        src.startswith("/static/")
        for src in page.locator("script[src]").evaluate_all("s => s.map(x => x.getAttribute('src'))")
    )
    assert page.evaluate("() => window.__ran") == []
    shot(page, "hostile-report")

    # Following an evidence link shows the file, with its markup as text too.
    page.locator(".report a[href*='/source/README.md']").first.click()
    expect(page.locator("tr#L1")).to_contain_text('<script>alert("readme")</script>')
    assert page.locator("main script, main img").count() == 0
    assert page.evaluate("() => window.__ran") == []
    shot(page, "hostile-source")
