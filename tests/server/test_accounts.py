"""Accounts over the API: sign-up and sign-in with sessions and CSRF, tokens, password resets and invitations (the
mail lands in the outbox without SMTP), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings
from tests.server.conftest import PASSWORD, Identity, make_identity, make_organisation


async def sign_up(client: AsyncTestClient[Litestar], admin: Identity, email: str, **fields: str) -> Response:
    """Sign up as a candidate does: ask, read the mailed link (in the outbox without SMTP), use it."""
    asked = await client.post("/api/auth/signup", json={"email": email, "password": PASSWORD, **fields})
    assert asked.status_code == 202, asked.text
    mail = (await client.get("/api/admin/outbox", headers=admin.headers)).json()["items"][0]
    code = re.search(r"/signup/confirm/(\S+)", mail["body"]).group(1)  # type: ignore[union-attr]
    return await client.post("/api/auth/signup/confirm", json={"code": code})


async def test_sign_up_sign_in_and_the_session_cookie_needs_csrf_for_changes(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    signed = await sign_up(client, admin, "Ada@Example.org", name="Ada")
    assert signed.status_code == 201 and signed.json()["user"]["email"] == "ada@example.org"
    assert signed.json()["user"]["role"] == "candidate" and "viva_session" in signed.cookies
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    csrf = signed.json()["csrf_token"]

    assert (await client.get("/api/me")).json()["email"] == "ada@example.org"
    refused = await client.post("/api/me/ai-notice")
    assert refused.status_code == 403 and "x-csrf-token" in refused.json()["error"]["message"]
    assert (await client.post("/api/me/ai-notice", headers={"x-csrf-token": "wrong"})).status_code == 403
    accepted = await client.post("/api/me/ai-notice", headers={"x-csrf-token": csrf})
    assert accepted.status_code == 200 and accepted.json()["ai_notice_accepted"]

    assert (await client.post("/api/auth/logout", headers={"x-csrf-token": csrf})).status_code == 204
    assert (await client.get("/api/me")).status_code == 401
    again = await client.post("/api/auth/login", json={"email": "ada@example.org", "password": PASSWORD})
    assert again.status_code == 200 and again.json()["csrf_token"] != csrf


async def test_bad_sign_ups_and_sign_ins_say_why_and_reveal_nothing(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    weak = await client.post("/api/auth/signup", json={"email": "b@example.org", "password": "short"})
    assert weak.status_code == 400 and weak.json()["error"]["details"] == {"field": "password"}
    bad_email = await client.post("/api/auth/signup", json={"email": "not-an-email", "password": PASSWORD})
    assert bad_email.status_code == 400 and bad_email.json()["error"]["code"] == "invalid_input"
    unknown_field = await client.post(
        "/api/auth/signup", json={"email": "b@example.org", "password": PASSWORD, "role": "admin"}
    )
    assert unknown_field.status_code == 400  # nobody signs themselves up as an admin
    assert (await sign_up(client, admin, "b@example.org")).status_code == 201
    wrong = await client.post("/api/auth/login", json={"email": "b@example.org", "password": "wrong password!!"})
    nobody = await client.post("/api/auth/login", json={"email": "nobody@example.org", "password": PASSWORD})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["error"]["message"] == nobody.json()["error"]["message"] == "wrong email or password"


async def test_api_tokens_work_without_csrf_and_stop_when_revoked(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    identity = await make_identity(settings, "candidate")
    created = await client.post("/api/tokens", json={"name": "laptop"}, headers=identity.headers)
    assert created.status_code == 201 and created.json()["token"].startswith("viva_")
    second = {"authorization": f"Bearer {created.json()['token']}"}
    assert (await client.get("/api/me", headers=second)).json()["id"] == identity.user.id
    listed = (await client.get("/api/tokens", headers=second)).json()["items"]
    assert {item["name"] for item in listed} == {"tests", "laptop"} and all(item["token"] is None for item in listed)
    assert (await client.delete(f"/api/tokens/{created.json()['id']}", headers=identity.headers)).status_code == 204
    assert (await client.get("/api/me", headers=second)).status_code == 401
    assert (await client.get("/api/me", headers={"authorization": "Bearer viva_forged"})).status_code == 401


async def test_password_reset_through_the_outbox(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    admin = await make_identity(settings, "admin")
    await make_identity(settings, "candidate", email="c@example.org")
    for email in ("c@example.org", "nobody@example.org"):  # the same answer either way
        answer = await client.post("/api/auth/password-reset", json={"email": email})
        assert answer.status_code == 202
    outbox = (await client.get("/api/admin/outbox", headers=admin.headers)).json()["items"]
    assert [mail["recipient"] for mail in outbox] == ["c@example.org"]
    token = re.search(r"/password-reset/(\S+)", outbox[0]["body"]).group(1)  # type: ignore[union-attr]
    changed = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "a brand new passphrase"}
    )
    assert changed.status_code == 200
    assert (
        await client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "once more please"})
    ).status_code == 404
    assert (
        await client.post("/api/auth/login", json={"email": "c@example.org", "password": PASSWORD})
    ).status_code == 401
    assert (
        await client.post("/api/auth/login", json={"email": "c@example.org", "password": "a brand new passphrase"})
    ).status_code == 200


async def test_a_manager_invites_a_manager_who_joins_the_same_organisation(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    admin = await make_identity(settings, "admin")
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    candidate = await make_identity(settings, "candidate")
    assert (
        await client.post("/api/invitations", json={"email": "x@example.org"}, headers=candidate.headers)
    ).status_code == 403
    assert (
        await client.post("/api/invitations", json={"email": "x@example.org", "role": "admin"}, headers=manager.headers)
    ).status_code == 403
    sent = await client.post("/api/invitations", json={"email": "new.manager@example.org"}, headers=manager.headers)
    assert sent.status_code == 201
    mail = (await client.get("/api/admin/outbox", headers=admin.headers)).json()["items"][0]
    code = re.search(r"/invitations/(\S+)", mail["body"]).group(1)  # type: ignore[union-attr]
    joined = await client.post(f"/api/invitations/{code}/accept", json={"password": PASSWORD, "name": "New"})
    assert joined.status_code == 201
    assert joined.json()["user"]["role"] == "manager" and joined.json()["user"]["organisation_id"] == organisation
    assert (await client.post(f"/api/invitations/{code}/accept", json={"password": PASSWORD})).status_code == 404
