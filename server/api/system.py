"""Health, readiness and metrics."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from litestar import MediaType, Request, Response, get
from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Job, utcnow
from server.errors import AuthRequired, NotFound
from server.jobs.engine import living_hosts
from server.metrics import METRICS, render_fleet
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


@get("/metrics", opt={**PUBLIC, "credentials": "own"}, media_type=MediaType.TEXT)
async def metrics(request: Request[Any, Any, Any]) -> str:
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
    state = state_of(request)
    async with state.factory() as db:
        fleet = await fleet_metrics(db, state.settings.server.worker_stalled_seconds)
    return METRICS.render() + fleet


async def fleet_metrics(db: AsyncSession, stalled_seconds: float) -> str:
    """Queue depth, job age, running gradings and worker heartbeats, read from the database: every process exports
    the whole fleet, so any one scraped is enough."""
    now = utcnow()
    queued_rows = (
        await db.exec(select(Job.priority, func.count()).where(Job.state == "queued").group_by(col(Job.priority)))
    ).all()
    oldest = (await db.exec(select(func.min(Job.created_at)).where(Job.state == "queued"))).one()
    running = (await db.exec(select(func.count()).select_from(Job).where(Job.state == "running"))).one()
    hosts = [
        (row.name, alive, (now - row.heartbeat_at).total_seconds(), row.slots, row.busy, row.draining)
        for row, alive in await living_hosts(db, stalled_seconds)
    ]
    oldest_age = (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
    return render_fleet(dict(queued_rows), oldest_age, running, hosts)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ROUTES = [health, ready, metrics]
