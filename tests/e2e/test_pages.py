"""Every main page, as the people who use it: no console errors (the page fixture), screenshots at a laptop's and a
phone's width, nothing wider than a phone's screen, and an accessibility check — axe-core's rules (labels, names,
contrast, landmarks, ARIA) with no violation, and a keyboard walk (Tab) whose focus starts at the skip link,
follows the page's reading order and is always visible."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import LAPTOP, PHONE, Site, shot, sign_in

pytestmark = pytest.mark.browser

AXE = Axe()


def _check(page: Page, name: str, *, keyboard: bool = False) -> list[str]:
    problems = []
    shot(page, f"page-{name}", phone=True)
    page.set_viewport_size(PHONE)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > PHONE["width"] + 1:
        problems.append(f"{name}: {width}px wide on a {PHONE['width']}px phone")
    page.set_viewport_size(LAPTOP)
    results = AXE.run(page)
    for violation in results.response["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"]][:3]
        problems.append(f"{name}: {violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    if keyboard:
        problems += [f"{name}: {problem}" for problem in _keyboard_walk(page)]
    return problems


def _keyboard_walk(page: Page, presses: int = 40) -> list[str]:
    """Tab through the page: each stop must come after the previous one in document order (until focus wraps), be
    visible on screen with a visible focus outline, and the first must be the skip link."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    stops: list[dict[str, Any]] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => {
              const el = document.activeElement;
              if (!el || el === document.body) return null;
              if (!window.__order) { window.__order = new WeakMap(); let i = 0;
                for (const node of document.querySelectorAll('*')) window.__order.set(node, i++); }
              const style = getComputedStyle(el);
              const box = el.getBoundingClientRect();
              return {order: window.__order.get(el), tag: el.tagName, text: (el.innerText || el.value || el.id || '').slice(0, 40),
                      outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
                      visible: box.width > 0 && box.height > 0};
            }"""
        )
        if stop is None or (stops and stop["order"] == stops[0]["order"]):
            break  # focus left the page or wrapped around
        stops.append(stop)
    problems = []
    if not stops or stops[0]["text"] != "Skip to content":
        problems.append(f"the first Tab stop is {stops[0] if stops else None}, not the skip link")
    for before, after in itertools.pairwise(stops):
        if after["order"] is not None and before["order"] is not None and after["order"] < before["order"]:
            problems.append(
                f"focus jumps back from {before['tag']} {before['text']!r} to {after['tag']} {after['text']!r}"
            )
    for stop in stops:
        if not stop["outline"]:
            problems.append(f"no visible focus on {stop['tag']} {stop['text']!r}")
        if not stop["visible"]:
            problems.append(f"focus lands on an invisible {stop['tag']} {stop['text']!r}")
    if len(stops) < 3:
        problems.append(f"only {len(stops)} Tab stops")
    return problems


def test_every_main_page_is_clean_readable_and_accessible(browser: Browser, page: Page, site: Site) -> None:
    organisation = site.organisation("Globex")
    manager = site.identity("manager", organisation)
    admin = site.identity("admin")
    candidate = site.identity("candidate")
    with site.api(manager) as api:
        rubrics = api.get("/api/rubrics").json()["items"]
        capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
        position = api.post("/api/positions", json={"title": "Platform", "rubric_version_id": capstone["id"]}).json()
        edited = api.post(
            "/api/rubrics", json={"source": api.get(f"/api/rubrics/{capstone['id']}").json()["source"]}
        ).json()
        api.post("/api/invitations", json={"email": "colleague@example.org"}).raise_for_status()
    with site.api(candidate) as api, site.grader():
        api.post("/api/positions/join", json={"invite_code": position["invite_code"]}).raise_for_status()
        submission = api.post("/api/submissions", json={"target": "fixture:middling", "position_id": position["id"]})
        submission_id = submission.json()["id"]
        assert site.wait_graded(candidate, submission_id)["status"] == "done"
        interview = api.post("/api/interviews", json={"submission_id": submission_id}).json()

    problems: list[str] = []
    for path, name in [
        ("/", "welcome"),
        ("/login", "login"),
        ("/signup", "signup"),
        ("/password-reset", "password-reset"),
        ("/password-reset/some-token", "password-reset-confirm"),
        (f"/signup?invite={position['invite_code']}", "signup-invited"),
    ]:
        page.goto(site.base + path)
        problems += _check(page, name, keyboard=name == "login")

    sign_in(page, site, candidate)
    for path, name in [
        ("/home", "candidate-home"),
        ("/submit", "submit"),
        (f"/submissions/{submission_id}", "report"),
        (f"/submissions/{submission_id}/source/server.py", "source"),
        (f"/interviews/{interview['id']}", "interview"),
        (f"/interviews/{interview['id']}/report", "interview-report-unfinished"),
    ]:
        page.goto(site.base + path)
        if name == "interview":
            page.get_by_label("Your answer").wait_for()
            page.wait_for_function("() => !document.querySelector('#answer').disabled")
        problems += _check(page, name, keyboard=name in ("candidate-home", "submit"))

    page.context.clear_cookies()
    sign_in(page, site, manager)
    for path, name in [
        ("/manage", "manager-dashboard"),
        (f"/positions/{position['id']}", "position"),
        ("/rubrics", "rubrics"),
        (f"/rubrics/{edited['id']}", "rubric-editor"),
        ("/rubrics/new", "rubric-new"),
        (f"/rubrics/diff?a={capstone['id']}&b={edited['id']}", "rubric-diff"),
        (f"/submissions/{submission_id}", "report-as-manager"),
    ]:
        page.goto(site.base + path)
        if name.startswith("rubric-") and name != "rubric-diff":
            page.wait_for_function("() => document.querySelector('[data-validation]').textContent !== 'Checking…'")
        problems += _check(page, name, keyboard=name in ("manager-dashboard", "position", "rubric-editor"))

    page.context.clear_cookies()
    sign_in(page, site, admin)
    page.goto(f"{site.base}/admin/outbox")
    problems += _check(page, "outbox")
    assert not problems, "\n".join(problems)
