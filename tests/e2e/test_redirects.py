"""Open redirect after sign-in, tried in Chromium: the browser's own URL parser decides where a `next` path goes, so
this is where the test belongs. Every request the page makes to any host but this site's is aborted and recorded —
nothing leaves loopback — and the test fails if one was even attempted."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Page, Route

from tests.e2e.conftest import Site
from tests.server.conftest import PASSWORD

# Each is read by a browser as //evil.example (another site): it drops tabs and newlines, reads `\` as `/`.
HOSTILE_NEXT = [
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r\n/evil.example/",
    "/\\evil.example/",
    "\\/evil.example/",
    "//evil.example/",
    "/\t\\evil.example/",
    " //evil.example/",
    "https://evil.example/",
    "javascript:alert(document.domain)",
]


def _foreign_requests(page: Page, site: Site) -> list[str]:
    ours = urlsplit(site.base).netloc
    seen: list[str] = []

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            seen.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    return seen


def _sign_in(page: Page, site: Site, email: str, next_path: str) -> None:
    page.goto(f"{site.base}/login?next={quote(next_path, safe='')}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.browser
@pytest.mark.parametrize("hostile", HOSTILE_NEXT, ids=repr)
def test_open_redirect_after_sign_in_stays_on_this_site(page: Page, site: Site, hostile: str) -> None:
    identity = site.identity("candidate")
    foreign = _foreign_requests(page, site)
    _sign_in(page, site, identity.user.email, hostile)
    page.wait_for_url(f"{site.base}/home")
    assert not foreign, f"the browser was sent to another site: {foreign}"
    # Signed in now, the login page itself redirects at once: the same rule holds for the server's 303.
    page.goto(f"{site.base}/login?next={quote(hostile, safe='')}")
    page.wait_for_url(f"{site.base}/home")
    assert not foreign, f"the server's redirect left the site: {foreign}"


@pytest.mark.browser
def test_a_plain_next_path_still_brings_the_user_back(page: Page, site: Site) -> None:
    identity = site.identity("candidate")
    foreign = _foreign_requests(page, site)
    _sign_in(page, site, identity.user.email, "/submit?from=mail")
    page.wait_for_url(f"{site.base}/submit?from=mail")
    assert not foreign
