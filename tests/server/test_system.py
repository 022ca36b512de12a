"""Health, readiness, metrics, the OpenAPI document, error bodies, security headers, and migrations that match the
models — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from server.db.engine import database_url, upgrade
from server.settings import Settings
from tests.server.conftest import make_identity


async def test_health_ready_metrics_and_headers(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    health = await client.get("/health")
    assert health.json() == {"status": "ok"}
    assert health.headers["x-content-type-options"] == "nosniff" and health.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
    assert (await client.get("/ready")).json() == {"ready": True, "database": True, "started": True}
    candidate = await make_identity(settings, "candidate")
    await client.get("/api/me", headers=candidate.headers)
    metrics = (await client.get("/metrics")).text
    assert re.search(r'viva_http_requests_total\{method="GET",route="/api/me",status="200"\} [1-9]', metrics), metrics
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
