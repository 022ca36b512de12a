"""A hiring manager in the browser: edits a rubric, sees a validation error at its line, fixes it, saves a new
version, compares the versions, re-grades a candidate with it, and sees both versions' results side by side; a
score override with its reason and history; the CSV export."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot, sign_in

pytestmark = pytest.mark.browser

LEAN = """id: lean
version: 1
title: Lean
criteria:
  - id: docs
    title: Has a README
    weight: 1
    check: {kind: static, name: readme_sections}
  - id: tests
    title: Has tests
    weight: 1
    check: {kind: static, name: test_suite}
"""


def test_a_manager_edits_a_rubric_regrades_and_compares(page: Page, site: Site) -> None:
    organisation = site.organisation("Northwind")
    manager = site.identity("manager", organisation)
    candidate = site.identity("candidate")
    with site.api(manager) as api:
        first = api.post("/api/rubrics", json={"source": LEAN}).json()
        position = api.post("/api/positions", json={"title": "AI engineer", "rubric_version_id": first["id"]}).json()
    with site.api(candidate) as api:
        api.post("/api/positions/join", json={"invite_code": position["invite_code"]}).raise_for_status()
        submitted = api.post("/api/submissions", json={"target": "fixture:naive", "position_id": position["id"]})
        submitted.raise_for_status()

    sign_in(page, site, manager)
    shot(page, "manager-dashboard", phone=True)
    page.get_by_role("link", name="Rubrics").click()
    shot(page, "rubrics")
    page.locator("section").filter(has=page.get_by_role("heading", name=re.compile("^Lean"))).get_by_role(
        "link", name="version 1"
    ).click()
    page.wait_for_url(f"**/rubrics/{first['id']}")
    editor = page.get_by_label("Rubric YAML")
    expect(page.locator("[data-validation]")).to_have_text("Valid.")

    # A negative weight on line 11 and a check that does not exist on line 12: both reported at their lines.
    broken = LEAN.replace("version: 1", "version: 2").replace(
        "    weight: 1\n    check: {kind: static, name: test_suite}",
        "    weight: -1\n    check: {kind: static, name: no_such_check}",
    )
    editor.fill(broken)
    problems = page.locator("[data-problems] li")
    expect(problems.first).to_be_visible()
    expect(page.locator("[data-validation]")).to_contain_text("problem")
    lines = sorted({int(item) for item in problems.evaluate_all("items => items.map(i => i.dataset.line)") if item})
    assert 11 in lines, lines
    assert broken.splitlines()[10].strip() == "weight: -1"
    expect(page.locator('[data-gutter] [data-line="11"]')).to_have_class("error-line")
    shot(page, "rubric-editor-error")
    problems.filter(has_text="Line 11").get_by_role("button").click()
    selected = page.evaluate(
        "() => { const t = document.querySelector('[data-source]'); return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert selected.strip() == "weight: -1"

    fixed = LEAN.replace("version: 1", "version: 2").replace(
        "weight: 1\n    check: {kind: static, name: test_suite}",
        "weight: 3\n    check: {kind: static, name: test_suite}",
    )
    editor.fill(fixed)
    expect(page.locator("[data-validation]")).to_have_text("Valid.")
    expect(problems).to_have_count(0)
    preview = page.locator("[data-preview]")
    expect(preview).to_contain_text("Has tests")
    expect(preview).to_contain_text("weight 3 · 75.0% of the score")
    expect(preview).to_contain_text("static check test_suite")
    shot(page, "rubric-editor-valid")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(re.compile(rf".*/rubrics/(?!{first['id']}$)\d+$"))
    second_id = int(page.url.rsplit("/", 1)[-1])
    assert second_id != first["id"]
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 2")

    page.get_by_role("link", name="compare").click()
    expect(page.locator(".diff .added", has_text="weight: 3")).to_have_count(1)
    expect(page.locator(".diff .removed", has_text="weight: 1")).to_have_count(1)
    expect(page.locator("section", has_text="Weight or check changed")).to_contain_text("tests")
    shot(page, "rubric-diff")

    with site.grader():
        site.wait_graded(candidate, submitted.json()["id"])
        page.goto(f"{site.base}/positions/{position['id']}")
        page.get_by_role("link", name="report").first.click()
        page.wait_for_url(f"**/submissions/{submitted.json()['id']}")
        page.get_by_label("Rubric version", exact=True).select_option(label="lean v2")
        page.get_by_role("button", name="Re-grade").click()
        page.wait_for_url(re.compile(rf".*/submissions/(?!{submitted.json()['id']}$)\d+$"))
        regraded = int(page.url.rsplit("/", 1)[-1])
        assert regraded != submitted.json()["id"]
        page.wait_for_selector(".report", timeout=90_000)
    expect(page.locator(".report header.summary")).to_contain_text("lean")

    page.goto(f"{site.base}/positions/{position['id']}")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("lean v1")
    expect(rows.nth(1)).to_contain_text("lean v2")
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("td.score")).to_have_text(re.compile(r"\d+%"))
    shot(page, "position-side-by-side", phone=True)

    # A score override: the reason and the original are kept, and the comparison marks the changed result.
    rows.nth(1).get_by_role("link", name="report").click()
    page.get_by_label("Criterion").select_option(index=0)
    page.get_by_label("New score, 0 to 1").fill("0.5")
    page.get_by_label("Reason").fill("The README covers setup; the grader missed the usage section.")
    page.get_by_role("button", name="Save the change").click()
    history = page.get_by_role("heading", name="Score changes")
    expect(history).to_be_visible()
    expect(page.locator("table").last).to_contain_text("the grader missed the usage section")
    page.goto(f"{site.base}/positions/{position['id']}")
    expect(page.locator("table tbody tr").nth(1)).to_contain_text("changed")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text()
    assert "lean v1" in text and "lean v2" in text
