"""The authorisation matrix, generated from the app's route table: every route, tried as anonymous, the owner,
another candidate, a manager of the same organisation, a manager of another, and an admin. A route added without
an access rule makes the app refuse to start, and this test fails."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from litestar import Litestar, get
from litestar.exceptions import WebSocketDisconnect
from litestar.routes import WebSocketRoute
from litestar.testing import AsyncTestClient

from server.app import _require_access_rules, access_guard
from server.settings import Settings
from tests.server.conftest import Identity, make_identity, make_organisation, wait_for

RUBRIC = (
    "id: mine\nversion: 1\ntitle: Mine\ncriteria:\n  - id: docker\n    title: Docker\n    weight: 1\n"
    "    check: {kind: static, name: dockerfile}\n"
)


SAMPLE_BODIES = {
    "overrides": {"path": "evals.runs", "score": 0.5, "reason": "checked by hand"},
    "review-request": {"message": "please have a person look at this"},
    "batches": {"text": "fixture:naive", "attest": True},
}
"""Valid bodies for routes whose resource check comes after body validation (an empty body would stop at 400)."""


@dataclass
class World:
    people: dict[str, Identity | None]
    values: dict[str, str]
    """Path parameter → the id of a resource owned by the owner candidate / manager A's organisation."""


def _route_table(app: Litestar) -> list[tuple[str, str, str]]:
    rows = []
    for route in app.routes:
        if str(route.path).startswith("/schema"):
            continue
        if isinstance(route, WebSocketRoute):
            rows.append(("WEBSOCKET", str(route.path), route.route_handler.opt["access"]))
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods - {"OPTIONS"}):
                rows.append((method, str(route.path), handler.opt["access"]))
    # Destructive ones last, and "delete all my data" after everything else.
    return sorted(rows, key=lambda row: (row[0] == "DELETE", row[1] == "/api/me/data", row[1], row[0]))


async def _world(settings: Settings, client: AsyncTestClient[Litestar]) -> World:
    org_a, org_b = await make_organisation(settings, "A"), await make_organisation(settings, "B")
    people: dict[str, Identity | None] = {
        "anonymous": None,
        "owner": await make_identity(settings, "candidate"),
        "other_candidate": await make_identity(settings, "candidate"),
        "manager_same_org": await make_identity(settings, "manager", organisation_id=org_a),
        "manager_other_org": await make_identity(settings, "manager", organisation_id=org_b),
        "admin": await make_identity(settings, "admin"),
    }
    owner, manager = people["owner"], people["manager_same_org"]
    assert owner is not None and manager is not None
    rubric = (await client.post("/api/rubrics", json={"source": RUBRIC}, headers=manager.headers)).json()
    position = (
        await client.post(
            "/api/positions", json={"title": "P", "rubric_version_id": rubric["id"]}, headers=manager.headers
        )
    ).json()
    await client.post("/api/positions/join", json={"invite_code": position["invite_code"]}, headers=owner.headers)
    submission = (
        await client.post(
            "/api/submissions", json={"target": "fixture:naive", "position_id": position["id"]}, headers=owner.headers
        )
    ).json()
    await wait_for(client, owner, submission["id"])
    token = (await client.post("/api/tokens", json={"name": "spare"}, headers=owner.headers)).json()
    interview = (
        await client.post("/api/interviews", json={"submission_id": submission["id"]}, headers=owner.headers)
    ).json()
    values = {
        "submission_id": str(submission["id"]),
        "position_id": str(position["id"]),
        "version_id": str(rubric["id"]),
        "token_id": str(token["id"]),
        "code": "not-a-real-code",
        "interview_id": str(interview["id"]),
        "token": "not-a-real-token",
        "file_path": "README.md",
    }
    return World(people, values)


def _expected(access: str, path: str, method: str, who: str, identity: Identity | None) -> set[int] | None:
    """The refusal this identity must get, or None when it may pass the gate."""
    if access == "public":
        return None
    if identity is None:
        return {401}
    role = identity.user.role
    if access != "user" and role != access and role != "admin":
        return {403}
    if "{token_id" in path and who != "owner":
        return {404}  # a token is its owner's alone
    if "{submission_id" in path:
        if who in ("other_candidate", "manager_other_org"):
            return {404}
        if method == "DELETE" and who == "manager_same_org":
            return {403}  # only the candidate deletes their data
        if path.endswith("/review-request") and who != "owner":
            return {403}  # only the candidate asks for a review of their own result (not even an admin for them)
    if ("{position_id" in path or "{version_id" in path or "{interview_id" in path) and who in (
        "manager_other_org",
        "other_candidate",
    ):
        return {404}
    if method == "WEBSOCKET" and who != "owner":
        return {404}  # an interview's socket is its candidate's alone (an admin reads the transcript instead)
    return None


async def test_every_route_against_every_kind_of_user(
    settings: Settings, client: AsyncTestClient[Litestar], app: Litestar
) -> None:
    world = await _world(settings, client)
    table = _route_table(app)
    assert len(table) >= 25
    failures = []
    for method, path, access in table:
        url = re.sub(r"\{(\w+):\w+\}", lambda match: world.values[match.group(1)], path)
        order = sorted(world.people.items(), key=lambda item: item[0] == "owner")  # the owner deletes last
        for who, identity in order:
            headers = identity.headers if identity else {}
            if method == "WEBSOCKET":
                status = await _socket_status(client, url, headers)
            elif path.endswith("/events"):
                async with client.stream(method, url, headers=headers) as response:
                    status = response.status_code
            else:
                body = SAMPLE_BODIES.get(path.rsplit("/", 1)[-1], {})
                if path.endswith("/regrade"):
                    body = {"rubric_version_id": int(world.values["version_id"])}
                response = await client.request(method, url, headers=headers, json=body, follow_redirects=False)
                status = response.status_code
                if status == 303 and response.headers.get("location", "").startswith("/login?next="):
                    status = 401  # a page sends a signed-out visitor to sign in: its refusal
            refused = _expected(access, path, method, who, identity)
            if status >= 500:
                failures.append(f"{method} {path} as {who}: {status}")
            elif refused is not None and status not in refused:
                failures.append(f"{method} {path} as {who}: {status}, expected {sorted(refused)}")
            elif refused is None and status in (401, 403):
                failures.append(f"{method} {path} as {who}: refused with {status}")
    assert not failures, "\n".join(failures)


async def _socket_status(client: AsyncTestClient[Litestar], url: str, headers: dict[str, str]) -> int:
    """200 when the socket opened and said hello; otherwise the HTTP status its close code carries."""
    try:
        socket = await client.websocket_connect(url, headers=headers)
        with socket:
            return 200 if socket.receive_json()["type"] == "hello" else 500
    except WebSocketDisconnect as refused:
        return refused.code - 4000 if 4000 <= refused.code < 5000 else refused.code  # Litestar closes with 4000+status


def test_a_route_without_an_access_rule_stops_the_app() -> None:
    @get("/open-by-accident", sync_to_thread=False)
    def forgotten() -> str:
        return "oops"

    with pytest.raises(RuntimeError, match="open-by-accident"):
        _require_access_rules(Litestar(route_handlers=[forgotten], guards=[access_guard]))
