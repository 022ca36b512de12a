"""What handlers share across the API's modules: the server state on the app, and small request helpers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import TooMany
from server.jobs.queue import JobQueue
from server.jobs.worker import ProgressHub, Worker
from server.mail import Mailer
from server.services.interviews import InterviewRooms
from server.settings import Settings

SESSION_COOKIE = "viva_session"


@dataclass
class ServerState:
    """What the handlers share, set up once per app."""

    settings: Settings
    engine: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    queue: JobQueue
    hub: ProgressHub
    mailer: Mailer
    worker: Worker
    limiter: RateLimiter
    interviews: InterviewRooms
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False


class RateLimiter:
    """Fixed one-minute windows per (bucket, client address), in process."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(self, bucket: str, client: str, per_minute: int) -> None:
        minute = int(time.time() // 60)
        start, count = self._windows.get((bucket, client), (minute, 0))
        if start != minute:
            start, count = minute, 0
        if count >= per_minute:
            raise TooMany(f"too many {bucket} requests; try again in a minute")
        self._windows[(bucket, client)] = (start, count + 1)


def state_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ServerState:
    return connection.app.state["viva"]  # type: ignore[no-any-return]


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"
