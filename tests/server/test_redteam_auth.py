"""What a red-team pass found in sign-in, sign-up and password resets, each pinned by a test named after it: a reset
that left API tokens working, older reset links that outlived a newer one, a sign-up that told whether an address
has an account, a sign-in a cross-site form could send, and rate limits that believed `X-Forwarded-For` from anyone
and counted only per address. (The open redirect after sign-in is tested in Chromium: tests/e2e/test_redirects.py.)"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings
from tests.server.conftest import PASSWORD, Identity, make_identity, server_settings
from tests.server.test_durability import _free_port, _serve

NEW_PASSWORD = "a brand new passphrase"


async def _outbox(client: AsyncTestClient[Litestar], admin: Identity) -> list[dict[str, str]]:
    items: list[dict[str, str]] = (await client.get("/api/admin/outbox?limit=100", headers=admin.headers)).json()[
        "items"
    ]
    return items


def _links(mails: list[dict[str, str]], kind: str) -> list[str]:
    return [found.group(1) for mail in mails if (found := re.search(rf"/{kind}/(\S+)", mail["body"]))]


async def _reset_links(client: AsyncTestClient[Litestar], admin: Identity, email: str, count: int) -> list[str]:
    for _ in range(count):
        assert (await client.post("/api/auth/password-reset", json={"email": email})).status_code == 202
    return _links(await _outbox(client, admin), "password-reset")


async def test_a_password_reset_revokes_api_tokens_and_sessions(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    victim = await make_identity(settings, "candidate", email="victim@example.org")
    signed_in = await client.post("/api/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
    assert signed_in.status_code == 200
    assert (await client.get("/api/me", headers=victim.headers)).status_code == 200
    [link] = await _reset_links(client, admin, "victim@example.org", 1)
    changed = await client.post("/api/auth/password-reset/confirm", json={"token": link, "password": NEW_PASSWORD})
    assert changed.status_code == 200
    assert (await client.get("/api/me", headers=victim.headers)).status_code == 401, "the bearer token still works"
    assert (await client.get("/api/me")).status_code == 401, "the browser session still works"
    assert (await client.get("/api/tokens", headers=admin.headers)).status_code == 200, "someone else was signed out"


async def test_an_older_reset_link_is_spent_once_a_newer_one_is_used(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    await make_identity(settings, "candidate", email="twice@example.org")
    newest, older = await _reset_links(client, admin, "twice@example.org", 2)  # the outbox lists newest first
    assert (
        await client.post("/api/auth/password-reset/confirm", json={"token": newest, "password": NEW_PASSWORD})
    ).status_code == 200
    stale = await client.post("/api/auth/password-reset/confirm", json={"token": older, "password": "attacker's pick!"})
    assert stale.status_code == 404
    assert (
        await client.post("/api/auth/login", json={"email": "twice@example.org", "password": NEW_PASSWORD})
    ).status_code == 200


async def test_one_reset_link_used_twice_at_once_changes_the_password_once(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    await make_identity(settings, "candidate", email="race@example.org")
    [link] = await _reset_links(client, admin, "race@example.org", 1)
    answers = await asyncio.gather(
        *(
            client.post("/api/auth/password-reset/confirm", json={"token": link, "password": f"{word} passphrase x"})
            for word in ("first", "second", "third")
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 404, 404]


async def test_sign_up_answers_the_same_whether_or_not_the_address_has_an_account(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    await make_identity(settings, "candidate", email="taken@example.org")
    taken = await client.post("/api/auth/signup", json={"email": "Taken@example.org", "password": PASSWORD})
    free = await client.post("/api/auth/signup", json={"email": "free@example.org", "password": PASSWORD})
    assert (taken.status_code, taken.json()) == (free.status_code, free.json()) == (202, free.json())
    assert "viva_session" not in taken.cookies and "viva_session" not in free.cookies
    mails = {mail["recipient"]: mail for mail in await _outbox(client, admin)}
    assert "already has one" in mails["taken@example.org"]["body"]
    assert not _links([mails["taken@example.org"]], "signup/confirm"), "the owner's address was offered a new account"
    [code] = _links([mails["free@example.org"]], "signup/confirm")
    made = await client.post("/api/auth/signup/confirm", json={"code": code})
    assert made.status_code == 201 and made.json()["user"]["email"] == "free@example.org"
    assert (await client.post("/api/auth/signup/confirm", json={"code": code})).status_code == 404


async def test_a_sign_up_link_for_an_address_taken_meanwhile_makes_no_second_account(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    for _ in range(2):
        await client.post("/api/auth/signup", json={"email": "double@example.org", "password": PASSWORD})
    codes = _links(await _outbox(client, admin), "signup/confirm")
    assert len(codes) == 2
    assert (await client.post("/api/auth/signup/confirm", json={"code": codes[0]})).status_code == 201
    assert (await client.post("/api/auth/signup/confirm", json={"code": codes[1]})).status_code == 404


async def test_login_csrf_a_cross_site_form_cannot_sign_a_victim_in(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    await make_identity(settings, "candidate", email="attacker@example.org")
    body = '{"email": "attacker@example.org", "password": "' + PASSWORD + '"}'
    as_form = await client.post("/api/auth/login", content=body, headers={"content-type": "text/plain"})
    assert as_form.status_code == 415 and "viva_session" not in as_form.cookies
    foreign = await client.post(
        "/api/auth/login",
        content=body,
        headers={"content-type": "application/json", "origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and "viva_session" not in foreign.cookies
    for route in ("/api/auth/signup", "/api/auth/password-reset", "/api/auth/password-reset/confirm"):
        refused = await client.post(route, content="{}", headers={"content-type": "text/plain"})
        assert refused.status_code == 415, route
    ours = await client.post(
        "/api/auth/login",
        content=body,
        headers={"content-type": "application/json", "origin": settings.server.public_url},
    )
    assert ours.status_code == 200
    csrf = ours.json()["csrf_token"]
    foreign_logout = await client.post("/api/auth/logout", headers={"x-csrf-token": csrf, "origin": "http://evil.x"})
    assert foreign_logout.status_code == 403


async def test_failed_sign_ins_are_limited_per_account_from_any_address(tmp_path: Path, database_url: str) -> None:
    from server.app import create_app  # noqa: PLC0415 - this test builds its own app with its own limits

    limited = server_settings(
        database_url,
        tmp_path / "limited",
        VIVA_LIMITS_LOGIN_PER_MINUTE="1000",
        VIVA_LIMITS_FAILED_LOGINS_PER_ACCOUNT_PER_HOUR="3",
    )
    async with AsyncTestClient(create_app(limited)) as client:
        await make_identity(limited, "candidate", email="target@example.org")
        await make_identity(limited, "candidate", email="bystander@example.org")
        for _ in range(3):
            wrong = await client.post(
                "/api/auth/login", json={"email": "target@example.org", "password": "guess guess!"}
            )
            assert wrong.status_code == 401
        locked = await client.post("/api/auth/login", json={"email": "TARGET@example.org", "password": PASSWORD})
        assert locked.status_code == 429, "a fourth guess at the account was tried"
        bystander = await client.post("/api/auth/login", json={"email": "bystander@example.org", "password": PASSWORD})
        assert bystander.status_code == 200


async def test_one_address_receives_a_bounded_number_of_reset_mails(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    await make_identity(settings, "candidate", email="inbox@example.org")
    limit = settings.limits.account_mails_per_hour
    answers = [
        (await client.post("/api/auth/password-reset", json={"email": "inbox@example.org"})).status_code
        for _ in range(limit + 2)
    ]
    assert answers == [202] * limit + [429, 429]
    assert len(await _outbox(client, admin)) == limit
    for _ in range(limit + 2):  # an address with no account is counted the same: the limit reveals nothing
        await client.post("/api/auth/password-reset", json={"email": "nobody@example.org"})
    nobody = await client.post("/api/auth/password-reset", json={"email": "nobody@example.org"})
    assert nobody.status_code == 429


def _logins(base: str, count: int, forwarded: bool) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=10) as http:
        for number in range(count):
            headers = {"x-forwarded-for": f"203.0.113.{number + 1}"} if forwarded else {}
            answer = http.post("/api/auth/login", json={"email": "x@example.org", "password": "wrong"}, headers=headers)
            statuses.append(answer.status_code)
    return statuses


def _away_from_a_window_edge(needed_s: float = 20.0) -> None:
    """The limiter counts in fixed wall-clock minutes (server/web.py): five logins that straddle a minute's edge
    would start counting again halfway. Start them where the minute has room for them."""
    into = time.time() % 60
    if into > 60 - needed_s:
        time.sleep(60 - into + 0.1)


def test_rate_limits_ignore_x_forwarded_for_unless_the_peer_is_a_trusted_proxy(tmp_path: Path) -> None:
    """A real `viva serve` over real HTTP on loopback (uvicorn believed the header from 127.0.0.1 by default). The
    documentation range 203.0.113.0/24 appears only inside a header; no packet goes anywhere but loopback."""
    base_values = {
        "VIVA_SUBMISSIONS_STATIC_ONLY": "1",
        "VIVA_SERVER_WORKER": "0",
        "VIVA_LIMITS_LOGIN_PER_MINUTE": "3",
    }
    for trusted, expected in (("", [401, 401, 401, 429, 429]), ("127.0.0.1", [401] * 5)):
        scratch = tmp_path / (trusted or "untrusted")
        values = {
            **base_values,
            "VIVA_DATA_DIR": str(scratch / "data"),
            "VIVA_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'viva.db'}",
            "VIVA_SERVER_TRUSTED_PROXIES": trusted,
        }
        scratch.mkdir()
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VIVA_")}, **values}
        port = _free_port()
        process = _serve(environment, port, scratch / "serve.log")
        try:
            _away_from_a_window_edge()
            assert _logins(f"http://127.0.0.1:{port}", 5, forwarded=True) == expected, trusted or "no proxies"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
