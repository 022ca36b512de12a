"""Health, readiness and metrics."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import MediaType, Request, Response, get
from sqlalchemy import text

from server.errors import AuthRequired, NotFound
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


@get("/metrics", opt={**PUBLIC, "credentials": "own"}, media_type=MediaType.TEXT, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> str:
    """Prometheus text format: requests, job durations, model spend. Off (404) unless VIVA_METRICS_TOKEN or
    VIVA_METRICS_PUBLIC is set. The scraper's token is a setting of its own, not an API token: the route checks it
    itself (`credentials: own` keeps the access guard from reading the header as a user's token)."""
    settings = state_of(request).settings.metrics
    if not settings.public:
        if settings.token is None:
            raise NotFound("no such route (metrics are off: set VIVA_METRICS_TOKEN or VIVA_METRICS_PUBLIC)")
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), settings.token.encode()):
            raise AuthRequired("send the metrics token: Authorization: Bearer <VIVA_METRICS_TOKEN>")
    return METRICS.render()


ROUTES = [health, ready, metrics]
