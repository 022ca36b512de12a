"""A candidate starts a role interview from their home page — a topic and a level, no repository — and is asked the
question bank's question for that level, then followed up."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot, sign_in

pytestmark = pytest.mark.browser


def test_a_candidate_starts_a_role_interview_from_the_home_page(page: Page, site: Site) -> None:
    candidate = site.identity("candidate")
    sign_in(page, site, candidate)
    page.goto(f"{site.base}/home")
    form = page.locator("form", has=page.get_by_role("heading", name="Practise a role interview"))
    form.get_by_label("Topic").select_option(label="agents and tool failures")
    form.get_by_label("Level").select_option(label="Senior")
    shot(page, "role-interview-start")
    form.get_by_role("button", name="Start the interview").click()
    page.wait_for_url("**/interviews/*")
    expect(page.get_by_role("heading", name="Role interview: agents")).to_be_visible()
    chat = page.locator("[data-chat]")
    expect(chat.locator(".turn.interviewer").first).to_contain_text("refund")
    answer_box = page.get_by_label("Your answer")
    expect(answer_box).to_be_enabled()
    answer_box.fill("We would make the refund tool careful and check things before it runs.")
    page.get_by_role("button", name="Send answer").click()
    expect(chat.locator(".turn.interviewer")).to_have_count(2)
    expect(chat.locator(".turn.interviewer").nth(1)).to_contain_text("human approve")  # the question's own follow-up
