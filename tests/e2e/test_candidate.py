"""A candidate in the browser: signs up, reads the AI notice, submits a fixture project, watches the grading
progress, opens the report and follows an evidence link to the right file and line."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot

pytestmark = pytest.mark.browser


def test_a_candidate_signs_up_submits_watches_and_follows_evidence(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/")
    shot(page, "welcome", phone=True)
    page.get_by_role("link", name="Create an account").first.click()
    page.get_by_label("Your name").fill("Ada Candidate")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill("a long enough passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Check your email")

    # The account is made when the mailed link is used (the outbox stands in for the candidate's inbox).
    admin = site.identity("admin")
    with site.api(admin) as client:
        mail = next(m for m in client.get("/api/admin/outbox").json()["items"] if m["recipient"] == "ada@example.org")
    link = re.search(r"http\S+/signup/confirm/\S+", mail["body"])
    assert link is not None, mail["body"]
    page.goto(link.group(0))
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url("**/home")

    # Nothing can be submitted before the AI notice is read and accepted.
    expect(page.get_by_role("heading", name="Before you start: how Viva uses AI")).to_be_visible()
    expect(page.get_by_text("human review").first).to_be_visible()
    shot(page, "candidate-home-notice", phone=True)
    page.get_by_role("button", name="I understand — continue").click()
    expect(page.locator("main").get_by_role("link", name="Submit a project")).to_be_visible()

    page.goto(f"{site.base}/submit")
    shot(page, "submit", phone=True)
    page.get_by_label("Repository URL").fill("fixture:middling")
    page.get_by_role("button", name="Grade it").click()
    page.wait_for_url(re.compile(r".*/submissions/\d+$"))
    submission_id = int(page.url.rsplit("/", 1)[-1])

    # No grader is running yet: the page shows the grading waiting, with its stages.
    progress = page.locator("[data-progress]")
    expect(progress).to_be_visible()
    expect(progress.get_by_role("status")).to_contain_text("Waiting for a free grader")
    expect(progress.locator("[data-stage]")).to_have_count(5)
    shot(page, "progress-queued")

    seen: list[str] = []

    def record(label: str) -> None:
        seen.append(label)

    page.expose_function("recordProgress", record)
    page.evaluate(
        """() => new MutationObserver(() => window.recordProgress(
             document.querySelector('[data-progress-label]')?.textContent || '')).observe(
             document.querySelector('[data-progress-label]'), {childList: true, characterData: true, subtree: true})"""
    )
    with site.grader():
        # The stream moves the bar through the stages, then the page reloads with the report.
        page.wait_for_selector(".report", timeout=90_000)
    assert any(label.startswith("Stage ") for label in seen) or any("Loading the report" in s for s in seen), seen
    expect(page.locator("header.summary")).to_contain_text("Viva grading report")
    shot(page, "report", phone=True)

    # An evidence link opens the graded file at the cited line, and that line is the excerpt.
    item = page.locator(".report ul.evidence li").filter(has=page.locator("a[href*='/source/']")).first
    item.locator("xpath=ancestor::details").first.evaluate("details => details.open = true")
    link = item.locator("a[href*='/source/']").first
    href = link.get_attribute("href") or ""
    match = re.fullmatch(rf"/submissions/{submission_id}/source/(.+)#L(\d+)", href)
    assert match, href
    path, line = match.group(1), int(match.group(2))
    excerpt = item.locator("pre.excerpt").first.inner_text().strip().splitlines()[0].strip()
    link.click()
    page.wait_for_url(f"**/submissions/{submission_id}/source/{path}#L{line}")
    expect(page.get_by_role("heading", level=1)).to_have_text(path)
    target = page.locator(f"tr#L{line}")
    expect(target).to_be_visible()
    assert page.evaluate("() => document.querySelector(':target')?.id") == f"L{line}"
    assert excerpt in target.inner_text()
    source = (site.settings.data_path / "snapshots" / str(submission_id) / path).read_text().splitlines()
    assert target.locator("td").nth(1).inner_text() == source[line - 1]
    shot(page, "source-at-line")
