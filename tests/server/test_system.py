"""Health, readiness, metrics, the OpenAPI document, error bodies, security headers, and migrations that match the
models — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from server.app import create_app
from server.db.engine import database_url, upgrade
from server.metrics import METRICS
from server.settings import Settings
from tests.providers.fake_server import FakeReply, serve_fake_provider
from tests.server.conftest import make_identity, server_settings, wait_for

METRICS_TOKEN = "scraper-token-for-the-tests-0123"
SCRAPER = {"authorization": f"Bearer {METRICS_TOKEN}"}


async def test_health_ready_metrics_and_headers(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_METRICS_TOKEN=METRICS_TOKEN)
    async with AsyncTestClient(create_app(settings)) as client:
        health = await client.get("/health")
        assert health.json() == {"status": "ok"}
        assert health.headers["x-content-type-options"] == "nosniff" and health.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
        assert (await client.get("/ready")).json() == {"ready": True, "database": True, "started": True}
        candidate = await make_identity(settings, "candidate")
        await client.get("/api/me", headers=candidate.headers)
        metrics = (await client.get("/metrics", headers=SCRAPER)).text
        assert re.search(r'viva_http_requests_total\{method="GET",route="/api/me",status="200"\} [1-9]', metrics), (
            metrics
        )
        assert "viva_http_request_seconds_bucket" in metrics


async def test_errors_have_one_shape(client: AsyncTestClient[Litestar]) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404 and set(missing.json()["error"]) == {"status", "code", "message", "details"}
    malformed = await client.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_input"
    anonymous = await client.get("/api/me")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "auth_required"
    assert "Traceback" not in malformed.text


async def test_the_openapi_document_describes_the_api(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert document["info"]["title"] == "Viva"
    for path in ("/api/submissions", "/api/submissions/{submission_id}", "/api/auth/login", "/api/positions"):
        assert path in document["paths"], path


def test_migrations_build_exactly_the_models(settings: Settings) -> None:
    """Upgrading to head gives the tables the models describe: a model change without a migration fails here."""
    url = database_url(settings)
    upgrade(url)

    async def differences() -> list[object]:
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
        await engine.dispose()
        return list(found)

    assert asyncio.run(differences()) == []


@pytest.mark.usefixtures("allow_model_requests")  # the judge talks to the local fake provider
async def test_the_judges_spend_on_a_grading_reaches_the_metrics(database_url: str, tmp_path: Path) -> None:
    """The server's judge is a real provider here (the OpenAI SDK against a local server speaking its protocol): a
    grading's judge calls are priced and added to the model-spend metric under `grading`."""

    def no_claims(protocol: str, body: dict[str, Any]) -> FakeReply:  # a judge that finds nothing, validly
        return FakeReply(tool_calls=[(body["tools"][0]["function"]["name"], {"claims": []})])

    with serve_fake_provider(no_claims) as provider:
        settings = server_settings(
            database_url,
            tmp_path / "data",
            VIVA_GRADING_JUDGE_MODEL="openai:gpt-4o-mini",
            VIVA_LLM_OPENAI_API_KEY="test-key",
            VIVA_LLM_OPENAI_BASE_URL=provider.base_url + "/v1",
            VIVA_METRICS_TOKEN=METRICS_TOKEN,
        )
        async with AsyncTestClient(create_app(settings)) as client:
            before = _spend(METRICS.render(), "grading")
            candidate = await make_identity(settings, "candidate")
            submitted = await client.post(
                "/api/submissions", json={"target": "fixture:middling"}, headers=candidate.headers
            )
            assert (await wait_for(client, candidate, submitted.json()["id"]))["status"] == "done"
            after = _spend((await client.get("/metrics", headers=SCRAPER)).text, "grading")
        assert provider.requests, "the judge should have called the provider"
        assert after > before


def _spend(metrics: str, purpose: str) -> float:
    found = re.search(rf'viva_model_spend_usd_total\{{purpose="{purpose}"\}} ([0-9.]+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_no_route_returns_an_unpaged_list(settings: Settings) -> None:
    """Every list the API returns is a page (items, total, limit, offset): a route returning a bare list fails here."""
    bare_lists = []
    for route in create_app(settings).routes:
        for handler in getattr(route, "route_handlers", []):
            returned = handler.parsed_fn_signature.return_type.annotation
            if typing.get_origin(returned) is list:
                bare_lists.append(str(route.path))
    assert bare_lists == []


async def test_lists_page_with_limit_and_offset(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    candidate = await make_identity(settings, "candidate")
    for name in ("one", "two", "three"):
        assert (await client.post("/api/tokens", json={"name": name}, headers=candidate.headers)).status_code == 201
    first = (await client.get("/api/tokens?limit=2", headers=candidate.headers)).json()
    rest = (await client.get("/api/tokens?limit=2&offset=2", headers=candidate.headers)).json()
    assert (first["total"], first["limit"], first["offset"]) == (4, 2, 0)  # the identity's own token and three more
    names = [item["name"] for item in first["items"] + rest["items"]]
    assert names[1:] == ["one", "two", "three"] and len(set(names)) == 4
    for bad in ("limit=0", "limit=201", "offset=-1", "limit=two"):
        refused = await client.get(f"/api/tokens?{bad}", headers=candidate.headers)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_input", bad
    interviews = (await client.get("/api/interviews", headers=candidate.headers)).json()
    assert interviews == {"items": [], "total": 0, "limit": 50, "offset": 0}
