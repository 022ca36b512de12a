"""A candidate takes a short text interview in the browser with the offline model, reloads the page in the middle
of an answer without losing it (or recording it twice), finishes, and reads the interview report."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot, sign_in

pytestmark = pytest.mark.browser

ANSWERS = [
    "Support agents use it to answer customer questions from our help centre; we measure it with 40 golden questions.",
    "We retry the model call twice with exponential backoff, then return a 503 so the client can retry later.",
    "Chunks are 400 tokens with 50 overlap; smaller chunks lost table headers and recall@5 fell from 0.82 to 0.71.",
    "Each request is capped at two cents from the provider's token usage, and we alert at 80% of the daily budget.",
    "We strip instructions from retrieved documents and check answers for leaked system prompt text before replying.",
    "The eval suite runs in CI on every pull request and fails the build below 85% exact match on the golden set.",
]


def test_a_candidate_interviews_reloads_midway_and_reads_the_report(page: Page, site: Site) -> None:
    candidate = site.identity("candidate")
    with site.api(candidate) as api, site.grader():
        submitted = api.post("/api/submissions", json={"target": "fixture:middling"}).json()
        assert site.wait_graded(candidate, submitted["id"])["status"] == "done"

    sign_in(page, site, candidate)
    page.goto(f"{site.base}/submissions/{submitted['id']}")
    page.get_by_role("button", name="Start the interview").click()
    page.wait_for_url("**/interviews/*")
    interview_id = int(page.url.rsplit("/", 1)[-1])
    answer_box = page.get_by_label("Your answer")
    expect(answer_box).to_be_enabled()
    chat = page.locator("[data-chat]")
    expect(chat.locator(".turn.interviewer")).to_have_count(1)
    shot(page, "interview-first-question", phone=True)

    def send(text: str) -> None:
        answer_box.fill(text)
        page.get_by_role("button", name="Send answer").click()

    send(ANSWERS[0])
    expect(chat.locator(".turn.interviewer")).to_have_count(2)
    expect(answer_box).to_be_enabled()

    # The second answer is sent and the page is reloaded before its reply can arrive.
    send(ANSWERS[1])
    page.reload()
    expect(answer_box).to_be_enabled(timeout=30_000)
    expect(chat.locator(".turn.candidate", has_text=ANSWERS[1])).to_have_count(1)
    expect(chat.locator(".turn.interviewer")).to_have_count(3)
    with site.api(candidate) as api:
        transcript = api.get(f"/api/interviews/{interview_id}").json()["transcript"]
    answered = [turn["text"] for turn in transcript if turn["role"] == "candidate"]
    assert answered == ANSWERS[:2]  # nothing lost, nothing twice

    finished = page.locator("[data-finished]")
    for number in range(2, 45):  # 8 topics, each with up to 3 follow-ups its rubric allows
        if finished.is_visible():
            break
        before = chat.locator(".turn.interviewer").count()
        send(ANSWERS[number % len(ANSWERS)] + f" (answer {number + 1})")
        page.wait_for_function(
            "([count]) => document.querySelectorAll('[data-chat] .turn.interviewer:not(.pending)').length > count "
            "|| !document.querySelector('[data-finished]').hidden",
            arg=[before],
        )
        if not finished.is_visible():
            expect(answer_box).to_be_enabled()
    expect(finished).to_be_visible()
    shot(page, "interview-finished")

    finished.get_by_role("link", name="Read your interview report").click()
    page.wait_for_url(f"**/interviews/{interview_id}/report")
    expect(page.get_by_role("heading", name="Interview report")).to_be_visible()
    expect(page.get_by_role("heading", name="Dimensions")).to_be_visible()
    expect(page.locator("table tbody tr").first).to_be_visible()
    exactly_the_second = re.compile(re.escape(ANSWERS[1]) + r"\s*$")
    expect(page.locator(".chat .turn.candidate", has_text=exactly_the_second)).to_have_count(1)
    shot(page, "interview-report", phone=True)
