"""Browser tests: Playwright drives Debian's Chromium against a real `viva serve` (SQLite, the offline model,
static-only grading, fixture projects from tests/fixtures/apps) over real HTTP.

The web process runs without a grading worker; a test that needs gradings starts a second `viva serve` with the
worker on, against the same database — so a submission waits, visibly queued, until a grader is there, and its
progress reaches the page the way it does when gradings run in another process. Every page a test opens is
watched for console errors and uncaught exceptions (any one fails the test), and screenshots land in
test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from server.settings import Settings
from tests.server.conftest import APPS, PASSWORD, Identity, make_identity, make_organisation, server_settings
from tests.server.test_durability import _free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
T = TypeVar("T")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


@dataclass
class Site:
    base: str
    settings: Settings
    environment: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def identity(self, role: str, organisation_id: int | None = None, *, accepted: bool = True) -> Identity:
        return _run(make_identity(self.settings, role, organisation_id=organisation_id, accepted=accepted))

    def organisation(self, name: str) -> int:
        return _run(make_organisation(self.settings, name))

    def api(self, identity: Identity) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=identity.headers, timeout=30)

    @contextmanager
    def grader(self) -> Iterator[None]:
        """A second server process with the grading worker on, for as long as the block runs."""
        port = _free_port()
        process = _serve({**self.environment, "VIVA_SERVER_WORKER": "1"}, port, self.logs / f"grader-{port}.log")
        try:
            yield
        finally:
            _stop(process)

    def wait_graded(self, identity: Identity, submission_id: int, seconds: float = 90) -> dict[str, object]:
        deadline = time.monotonic() + seconds
        with self.api(identity) as client:
            while True:
                body: dict[str, object] = client.get(f"/api/submissions/{submission_id}").json()
                if body["status"] in ("done", "failed", "cancelled"):
                    return body
                assert time.monotonic() < deadline, f"grading {submission_id} did not finish: {body}"
                time.sleep(0.3)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a database helper on its own loop in another thread: Playwright's sync API owns this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _serve(environment: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"viva serve exited: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"viva serve did not become ready: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    scratch = tmp_path_factory.mktemp("site")
    port = _free_port()
    values = {
        "VIVA_DATA_DIR": str(scratch / "data"),
        "VIVA_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'viva.db'}",
        "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
        "VIVA_SUBMISSIONS_STATIC_ONLY": "1",
        "VIVA_SERVER_WORKER": "0",
        "VIVA_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "VIVA_SERVER_JOB_LEASE_SECONDS": "6",
        "VIVA_LIMITS_LOGIN_PER_MINUTE": "1000",
        "VIVA_LIMITS_SUBMISSIONS_PER_MINUTE": "1000",
        "VIVA_LIMITS_INTERVIEW_STARTS_PER_MINUTE": "1000",
    }
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VIVA_")}, **values}
    settings = server_settings(values["VIVA_DATABASE_URL"], scratch / "data", **values)
    web = _serve(environment, port, scratch / "web.log")
    running = Site(f"http://127.0.0.1:{port}", settings, environment, scratch, [web])
    try:
        yield running
    finally:
        _stop(web)


# Module scope, not session: while Playwright's sync driver runs it owns this thread's event loop, and the async
# tests in other folders need it back.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-background-networking"]
    )
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies, empty local storage). Console errors and uncaught exceptions on any
    page fail the test; a screenshot of the last page is kept."""
    context = browser.new_context(viewport=LAPTOP)
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and message.location.get("url") == opened.url:
            return  # the page itself answered 404 on purpose (a used invitation); a missing script or icon still fails
        problems.append(f"{opened.url}: console error: {message.text} ({message.location.get('url')})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"{opened.url}: uncaught: {error}"))
    opened.on(
        "dialog", lambda dialog: (problems.append(f"{opened.url}: a dialog opened: {dialog.message}"), dialog.dismiss())
    )
    try:
        yield opened
    finally:
        shot(opened, f"{_slug(request.node.name)}-last")
        context.close()
    assert not problems, "\n".join(problems)


def shot(page: Page, name: str, *, phone: bool = False) -> Path:
    """Save a full-page screenshot (and, with phone=True, one at a phone's width too)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if phone:
        size = page.viewport_size or LAPTOP
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(size)
    return path


def sign_in(page: Page, site: Site, identity: Identity) -> None:
    page.goto(f"{site.base}/login")
    page.get_by_label("Email").fill(identity.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/(home|manage)$"))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120]
