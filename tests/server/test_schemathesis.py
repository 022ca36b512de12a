"""schemathesis against the app's own OpenAPI document, as each of the four kinds of caller — anonymous, candidate,
manager, admin: no answer is a 5xx, and no connection leaves loopback (an audit hook records every socket connect made while the cases run;
submissions may only name `localhost`, so even an accepted URL is fetched from loopback)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server.conftest import Identity, make_identity, make_organisation, server_settings

DATA = Path(tempfile.mkdtemp(prefix="viva-schemathesis-"))
SETTINGS: Settings = server_settings(
    f"sqlite+aiosqlite:///{DATA / 'viva.db'}",
    DATA / "data",
    VIVA_SUBMISSIONS_HOSTS="localhost",
    VIVA_FETCH_ALLOWED_HOSTS="localhost",
    VIVA_LIMITS_LOGIN_PER_MINUTE="1000",
    VIVA_LIMITS_SUBMISSIONS_PER_MINUTE="1000",
)
SCHEMA = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi_schema.to_schema())
CONNECTED: list[Any] = []
RECORDING = {"on": False}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if RECORDING["on"] and event == "socket.connect":
        CONNECTED.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient[Litestar], dict[str, Identity]]]:
    with TestClient(create_app(SETTINGS)) as client:
        people = {
            role: asyncio.run(make_identity(SETTINGS, role, organisation_id=None)) for role in ("candidate", "admin")
        }
        people["manager"] = asyncio.run(_manager())
        RECORDING["on"] = True
        try:
            yield client, people
        finally:
            RECORDING["on"] = False
    assert all(_loopback(address) for address in CONNECTED), [a for a in CONNECTED if not _loopback(a)]


async def _manager() -> Identity:
    return await make_identity(SETTINGS, "manager", organisation_id=await make_organisation(SETTINGS))


def _loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # a Unix socket: on this machine by definition
    host = address[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testserver.local")


ROLES = ["anonymous", "candidate", "manager", "admin"]


def _headers(people: dict[str, Identity], role: str) -> dict[str, str]:
    return people[role].headers if role in people else {}


@SCHEMA.exclude(path_regex=r".*/events$").parametrize()
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("role", ROLES)
def test_no_server_errors(case: Any, role: str, served: tuple[TestClient[Litestar], dict[str, Identity]]) -> None:
    client, people = served
    kwargs = case.as_transport_kwargs(base_url="http://testserver.local", headers=_headers(people, role))
    response = client.request(**{key: value for key, value in kwargs.items() if key in _ALLOWED})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )


_ALLOWED = {"method", "url", "headers", "params", "json", "content", "data", "files"}


# The red team's cases, kept as explicit examples beside the generated ones: a pagination value past any integer
# column (it gave OverflowError, a 500) and path values with a NUL byte or control characters (the source viewer
# gave a 500). Every paged route and every path parameter of the OpenAPI document gets them, for every role.
HUGE = "99999999999999999999"
PAGED = sorted(
    path
    for path, operations in SCHEMA.raw_schema["paths"].items()
    if any(parameter.get("name") == "offset" for parameter in operations.get("get", {}).get("parameters", []))
)


@pytest.fixture(scope="module")
def examples(
    served: tuple[TestClient[Litestar], dict[str, Identity]],
) -> tuple[TestClient[Litestar], dict[str, Identity]]:
    """Identities of their own for the explicit examples: the generated cases may have revoked the first ones'
    tokens (DELETE /api/tokens/{id} is in the schema), and then every request would only test the sign-in wall."""
    client, _ = served
    people = {role: asyncio.run(make_identity(SETTINGS, role)) for role in ("candidate", "admin")}
    people["manager"] = asyncio.run(_manager())
    return client, people


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("query", [f"offset={HUGE}", f"limit={HUGE}", "offset=-1", "limit=-5", f"offset=-{HUGE}"])
def test_pagination_extremes_are_refused_not_crashed(
    query: str, role: str, examples: tuple[TestClient[Litestar], dict[str, Identity]]
) -> None:
    client, people = examples
    assert PAGED, "the schema names no paged route: the examples would test nothing"
    for path in PAGED:
        url = re.sub(r"\{[^}]+\}", "1", path) + f"?{query}"
        answer = client.get(url, headers=_headers(people, role), follow_redirects=False)
        assert answer.status_code in (400, 401, 403, 404), f"{url} as {role}: {answer.status_code} {answer.text[:200]}"


HOSTILE_PATHS = ["README.md%00.txt", "%00", "a%0Ab", "..%2F..%2Fetc%2Fpasswd", "x" * 5000]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("hostile", HOSTILE_PATHS, ids=lambda value: value[:20])
def test_hostile_path_values_are_refused_not_crashed(
    hostile: str, role: str, examples: tuple[TestClient[Litestar], dict[str, Identity]]
) -> None:
    client, people = examples
    routes = [f"/submissions/1/source/{hostile}", f"/api/submissions/{hostile}", f"/api/rubrics/{hostile}"]
    for url in routes:
        answer = client.get(url, headers=_headers(people, role), follow_redirects=False)
        assert answer.status_code < 500, f"{url[:80]} as {role}: {answer.status_code} {answer.text[:200]}"
