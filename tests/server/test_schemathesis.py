"""schemathesis against the app's own OpenAPI document, signed in as a manager and as a candidate: no answer is a
5xx, and no connection leaves loopback (an audit hook records every socket connect made while the cases run;
submissions may only name `localhost`, so even an accepted URL is fetched from loopback)."""

from __future__ import annotations

import asyncio
import ipaddress
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
        people = {role: asyncio.run(make_identity(SETTINGS, role, organisation_id=None)) for role in ("candidate",)}
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


@SCHEMA.exclude(path_regex=r".*/events$").parametrize()
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("role", ["manager", "candidate"])
def test_no_server_errors(case: Any, role: str, served: tuple[TestClient[Litestar], dict[str, Identity]]) -> None:
    client, people = served
    kwargs = case.as_transport_kwargs(base_url="http://testserver.local", headers=people[role].headers)
    response = client.request(**{key: value for key, value in kwargs.items() if key in _ALLOWED})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )


_ALLOWED = {"method", "url", "headers", "params", "json", "content", "data", "files"}
