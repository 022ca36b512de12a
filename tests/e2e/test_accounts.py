"""The links Viva mails, followed in a browser: a manager's invitation to a colleague, accepted; a forgotten
password reset from the sign-in page; a position's invite link followed by a signed-in candidate. The mails are
read from the outbox (no SMTP here), as an admin would."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, shot
from tests.server.conftest import Identity

pytestmark = pytest.mark.browser


def _link(site: Site, admin: Identity, recipient: str, kind: str) -> str:
    with site.api(admin) as api:
        mails = api.get("/api/admin/outbox").json()["items"]
    body = next(mail["body"] for mail in mails if mail["recipient"] == recipient)
    found = re.search(rf"{re.escape(site.base)}/{kind}/\S+", body)
    assert found, body
    return found.group(0)


def test_invitation_reset_and_invite_links_work_in_the_browser(page: Page, site: Site) -> None:
    organisation = site.organisation("Initech")
    manager = site.identity("manager", organisation)
    admin = site.identity("admin")
    with site.api(manager) as api:
        api.post("/api/invitations", json={"email": "peter@initech.example"}).raise_for_status()
        rubrics = api.get("/api/rubrics").json()["items"]
        position = api.post(
            "/api/positions", json={"title": "ML engineer", "rubric_version_id": rubrics[0]["id"]}
        ).json()

    # The invited colleague follows the mailed link, chooses a password and lands among the positions.
    page.goto(_link(site, admin, "peter@initech.example", "invitations"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Join Initech")
    shot(page, "invitation")
    page.get_by_label("Your name").fill("Peter")
    page.get_by_label("Choose a password").fill("a colleague's passphrase")
    page.get_by_role("button", name="Accept and sign in").click()
    page.wait_for_url("**/manage")
    expect(page.get_by_role("link", name="ML engineer")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")

    # A candidate who forgot their password resets it from the sign-in page and signs in with the new one.
    candidate = site.identity("candidate")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(candidate.user.email)
    page.get_by_role("button", name="Send a reset link").click()
    expect(page.get_by_role("status")).to_contain_text("a reset link is on its way")
    page.goto(_link(site, admin, candidate.user.email, "password-reset"))
    page.get_by_label("New password").fill("my brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/login")
    page.get_by_label("Email").fill(candidate.user.email)
    page.get_by_label("Password").fill("my brand new passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")

    # The same candidate follows a position's invite link and joins with one click.
    page.goto(f"{site.base}/join/{position['invite_code']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("ML engineer")
    page.get_by_role("button", name="Join this position").click()
    page.wait_for_url("**/submit")
    expect(page.locator("#position")).to_contain_text("ML engineer")

    # A used invitation link is refused plainly.
    page.goto(_link(site, admin, "peter@initech.example", "invitations"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation is not valid any more")
