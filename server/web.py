"""What handlers share across the API's modules: the server state on the app, and small request helpers."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import SettingsError, TooMany
from server.jobs.engine import JobEngine
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
    queue: JobEngine
    """The job engine: gradings enter it here (server/jobs/engine.py)."""
    hub: ProgressHub
    mailer: Mailer
    worker: Worker
    limiter: RateLimiter
    interviews: InterviewRooms
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False


class RateLimiter:
    """Fixed windows per (bucket, key), in process: `key` is a client address or an account's email.

    `hit` counts a request and refuses it past the limit; `check` and `count` split that in two, for limits that
    count only failures (a failed sign-in) but must refuse before the expensive work (the password hash)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(self, bucket: str, key: str, limit: int, *, window_s: int = 60) -> None:
        self.check(bucket, key, limit, window_s=window_s)
        self.count(bucket, key, window_s=window_s)

    def check(self, bucket: str, key: str, limit: int, *, window_s: int = 60) -> None:
        if self._current(bucket, key, window_s)[1] >= limit:
            wait = "a minute" if window_s <= 60 else "an hour" if window_s <= 3600 else "a while"
            raise TooMany(f"too many {bucket} requests; try again in {wait}")

    def count(self, bucket: str, key: str, *, window_s: int = 60) -> None:
        start, used = self._current(bucket, key, window_s)
        self._windows[(bucket, key)] = (start, used + 1)

    def _current(self, bucket: str, key: str, window_s: int) -> tuple[int, int]:
        window = int(time.time() // window_s)
        start, used = self._windows.get((bucket, key), (window, 0))
        return (start, used) if start == window else (window, 0)


def state_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ServerState:
    return connection.app.state["viva"]  # type: ignore[no-any-return]


def client_address(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address for rate limits: the peer's, unless the peer is a configured proxy, in which case the
    nearest `X-Forwarded-For` hop that is not one of our proxies. Anyone can write that header, so it is believed
    only from the proxies an operator named (uvicorn's own proxy handling is switched off, see `uvicorn_options`)."""
    peer = request.client.host if request.client else "unknown"
    proxies = state_of(request).settings.server.trusted_proxies
    if not proxies or not _is_proxy(peer, proxies):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_proxy(hop, proxies):
            return hop
    return peer


def _is_proxy(address: str, proxies: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxy_networks(tuple(proxies)))


@functools.cache
def proxy_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The trusted proxies as networks; a value that is no address or network stops the server at start."""
    try:
        return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
    except ValueError as error:
        raise SettingsError(f"VIVA_SERVER_TRUSTED_PROXIES: {error}") from None


def uvicorn_options() -> dict[str, Any]:
    """uvicorn believes `X-Forwarded-For` from 127.0.0.1 by default, which would let any local client (or a proxy
    that passes the header through) choose its own address; Viva reads the header itself, from trusted proxies
    only (`client_address`)."""
    return {"proxy_headers": False, "server_header": False}


def same_origin(origin: str, public_url: str) -> bool:
    mine, theirs = urlsplit(public_url), urlsplit(origin)
    return (theirs.scheme, theirs.hostname, theirs.port) == (mine.scheme, mine.hostname, mine.port)
