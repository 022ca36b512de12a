"""Health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from sqlalchemy import text

from server.metrics import METRICS
from server.web import state_of

PUBLIC = {"access": "public"}


@get("/health", opt=PUBLIC, sync_to_thread=False)
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/ready", opt=PUBLIC)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The database answers and start-up (migrations, seeding, the worker) finished."""
    state = state_of(request)
    database = True
    try:
        async with state.factory() as db:
            await (await db.connection()).execute(text("SELECT 1"))
    except Exception:  # any failure to answer means "not ready"
        database = False
    ok = database and state.ready
    return Response({"ready": ok, "database": database, "started": state.ready}, status_code=200 if ok else 503)


@get("/metrics", opt=PUBLIC, media_type=MediaType.TEXT, sync_to_thread=False)
def metrics() -> str:
    """Prometheus text format: requests, job durations, model spend."""
    return METRICS.render()


ROUTES = [health, ready, metrics]
