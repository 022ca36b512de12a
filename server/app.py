"""The Litestar app factory: database, worker, authentication and access rules, errors, headers, metrics.

Every route declares who may call it in `opt={"access": ...}`:
- "public": anyone; "user": any signed-in user; "candidate", "manager", "admin": that role (an admin passes every
  role check). Whether the user may touch a *particular* resource (their own submission, their organisation's
  position) is decided by the services, which answer 404 for what the user may not know exists.
A route without an access rule is refused at start (and the authorisation matrix test fails), so a new route
cannot be left open by accident.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException, WebSocketException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.pipeline import viva_version
from sandboxes.docker_backend import docker_client, reap
from sandboxes.errors import SandboxUnavailable
from server.api import ROUTES
from server.db.engine import database_url, make_engine, session_factory, upgrade
from server.db.models import AuthSession, User
from server.demo import ensure_demo
from server.errors import AuthRequired, DomainError, Forbidden, UnsupportedMediaType
from server.jobs.engine import end_tasks, engine_kind, prepare_engine_schema, report_host, sleep_or_stop
from server.jobs.engine import make_engine as make_job_engine
from server.jobs.worker import ProgressHub, Worker
from server.mail import Mailer
from server.metrics import METRICS
from server.pages import ROUTES as PAGE_ROUTES
from server.pages import render as pages_render
from server.schemas import ErrorBody, ErrorOut
from server.services import accounts, retention
from server.services.catalogue import seed_builtin_rubrics
from server.services.interviews import InterviewRooms
from server.settings import Settings, load_settings
from server.web import SESSION_COOKIE, RateLimiter, ServerState, proxy_networks, same_origin, state_of

log = logging.getLogger("viva.server")
CSRF_HEADER = "x-csrf-token"
ACCESS_LEVELS = ("public", "user", "candidate", "manager", "admin")
RETENTION_EVERY_S = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), geolocation=(), microphone=(self)",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


async def provide_db(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    async with state_of(request).factory() as db:
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            raise


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Authenticate (session cookie or bearer token), check the route's role and, for cookie sessions, CSRF.
    On a WebSocket a refusal closes the socket with 4000 + the HTTP status (4401, 4403)."""
    try:
        await _check_access(connection, handler)
    except DomainError as refused:
        if connection.scope["type"] == ScopeType.WEBSOCKET:
            raise WebSocketException(detail=refused.message, code=4000 + refused.status) from None
        raise


async def _check_access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    access = handler.opt.get("access")
    if access is None and (connection.scope["path"].startswith("/schema") or _automatic_options(handler)):
        access = "public"  # the OpenAPI document and its viewers; Litestar's own OPTIONS answers
    if access not in ACCESS_LEVELS:
        raise Forbidden("this route has no access rule")  # never reached: create_app refuses such routes
    if access == "public" and handler.opt.get("credentials") == "own" and connection.scope.get("method") == "GET":
        connection.state["user"], connection.state["session"] = None, None
        return  # a public route that checks a credential of its own (the metrics scraper's token), read-only
    user, session = await _identify(connection)
    connection.state["user"], connection.state["session"] = user, session
    if connection.scope["type"] == ScopeType.HTTP and connection.scope.get("method", "GET") not in SAFE_METHODS:
        _refuse_cross_site(connection, access, bearer=user is not None and session is None)
    if access == "public":
        return
    if user is None:
        raise AuthRequired("sign in first")
    if access != "user" and user.role not in {access, "admin"}:
        raise Forbidden(f"this needs the {access} role")
    method = connection.scope.get("method", "GET")
    if session is not None and method not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not sent or sent != session.csrf_token:
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header (send the token from sign-in)")


def _refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any], access: str, *, bearer: bool) -> None:
    """A state-changing request a browser could send from another site is refused. A browser names the page's site
    in `Origin` on every POST: it must be ours. A public route (sign-in, sign-up, resets) reads only JSON, which a
    cross-site form cannot send without a CORS preflight Viva never grants (a `text/plain` body would otherwise
    sign a victim into the attacker's account). Bearer tokens are not sent by browsers on their own: exempt."""
    if bearer:
        return
    origin = connection.headers.get("origin")
    if origin is not None and not _our_origin(connection, origin):
        raise Forbidden("cross-site request refused: its Origin is not this site")
    if access == "public":
        media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType("send this request's body as application/json")


def _our_origin(connection: ASGIConnection[Any, Any, Any, Any], origin: str) -> bool:
    """Our public URL, or the address this request was sent to (behind a proxy the two can differ; a cross-site
    request carries the other site's Origin either way)."""
    here = f"{connection.url.scheme}://{connection.url.netloc}"
    return same_origin(origin, state_of(connection).settings.server.public_url) or same_origin(origin, here)


async def _identify(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[User | None, AuthSession | None]:
    state = state_of(connection)
    authorization = connection.headers.get("authorization", "")
    async with state.factory() as db:
        if authorization.lower().startswith("bearer "):
            user = await accounts.token_user(db, authorization[7:].strip())
            await db.commit()
            if user is None:
                raise AuthRequired("that API token is not valid")
            return user, None
        cookie = connection.cookies.get(SESSION_COOKIE)
        if cookie:
            found = await accounts.session_user(db, cookie)
            if found is not None:
                return found
    return None, None


def current_user(request: Request[Any, Any, Any]) -> User:
    user = request.state.get("user")
    if user is None:
        raise AuthRequired("sign in first")
    return user  # type: ignore[no-any-return]


def error_response(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """One error shape for the API; on a page, the same error as a page (and a sign-in redirect when signed out)."""
    body = _error_body(request, error)
    if _wants_page(request):
        if body.status == 401:
            return pages_render.sign_in_redirect(request)
        return pages_render.render(request, "error.html.j2", status_code=body.status, error=body)
    return Response(ErrorOut(body), status_code=body.status)


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    handler = request.scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    if opt.get("page"):
        return True
    if opt.get("access") is not None:
        return False  # an API route: JSON, whatever the client accepts
    path = request.url.path
    api = path.startswith(("/api/", "/schema", "/static/")) or path in ("/health", "/ready", "/metrics")
    return not api and "text/html" in request.headers.get("accept", "")


def _error_body(request: Request[Any, Any, Any], error: Exception) -> ErrorBody:
    if isinstance(error, DomainError):
        body = ErrorBody(error.status, error.code, error.message, error.details)
    elif isinstance(error, ValidationException):
        body = ErrorBody(400, "invalid_input", "the request does not match the API", {"problems": error.extra or []})
    elif isinstance(error, HTTPException):
        body = ErrorBody(error.status_code, _code(error.status_code), str(error.detail))
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = ErrorBody(500, "internal", "Viva hit an unexpected error; it has been logged")
    return body


def _code(status: int) -> str:
    return {
        400: "invalid_input",
        401: "auth_required",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        429: "too_many",
    }.get(status, "error")


def observability(app: ASGIApp) -> ASGIApp:
    """Security headers on every HTTP answer, and the request metrics."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            handler = scope.get("route_handler")
            route = next(iter(sorted(handler.paths)), "?") if handler is not None else "unmatched"
            METRICS.observe_request(str(scope.get("method", "?")), route, status, time.perf_counter() - started)

    return middleware


async def prepare_database(settings: Settings) -> None:
    """Bring the schema up to date, seed the built-in rubrics and the demo. Once per start: by the only process, or
    by `viva serve`'s parent before it starts several (concurrent migrations would race)."""
    url = database_url(settings)
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own loop: keep it off ours
    if engine_kind(settings, url) == "procrastinate":
        await prepare_engine_schema(url)  # the job engine's own tables, beside Viva's
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        async with factory() as db:
            await seed_builtin_rubrics(db)
            await db.commit()
        if settings.server.demo:
            await ensure_demo(settings, factory)
    finally:
        await engine.dispose()


def process_app() -> Litestar:
    """One of several server processes (`uvicorn --factory`): settings from the environment as the parent read
    them; the parent prepared the database."""
    return create_app(load_settings(env_file=Path(".env")), prepared=True)


def create_app(settings: Settings, *, run_worker: bool | None = None, prepared: bool = False) -> Litestar:
    proxy_networks(tuple(settings.server.trusted_proxies))  # a bad value stops the start, not a request later
    url = database_url(settings)
    engine = make_engine(url)
    factory = session_factory(engine)
    jobs = make_job_engine(settings, url, factory)
    hub = ProgressHub()
    state = ServerState(
        settings=settings,
        engine=engine,
        factory=factory,
        queue=jobs,
        hub=hub,
        mailer=Mailer(settings.mail),
        worker=Worker(settings, factory, jobs, hub),
        limiter=RateLimiter(),
        interviews=InterviewRooms(settings, factory),
    )
    worker_on = settings.server.worker if run_worker is None else run_worker

    async def startup(app: Litestar) -> None:
        if not prepared:
            await prepare_database(settings)
        if worker_on:
            if not settings.submissions.static_only:
                await asyncio.to_thread(reap_sandboxes)  # containers a killed server left behind
            state.tasks += state.worker.start(settings.server.worker_slots)
            state.tasks.append(asyncio.create_task(_report_worker(state)))
        else:
            state.tasks += jobs.start(None, 0)  # a web-only process still hands its queued rows to the engine
        state.tasks.append(asyncio.create_task(_retention_loop(state)))
        state.ready = True

    async def shutdown(app: Litestar) -> None:
        state.ready = False
        if worker_on:
            # A server stopping hands its running gradings back to the queue (the next process, or this one
            # restarted, grades them) rather than leaving them to wait out their leases.
            await state.worker.drain(0, hand_back_seconds=5)
        state.worker.stop()
        await jobs.close()
        await end_tasks(state.tasks)
        await engine.dispose()

    app = Litestar(
        route_handlers=[*ROUTES, *PAGE_ROUTES],
        dependencies={"db": Provide(provide_db), "user": Provide(current_user, sync_to_thread=False)},
        guards=[access_guard],
        middleware=[observability],
        exception_handlers={Exception: error_response},
        on_startup=[startup],
        on_shutdown=[shutdown],
        openapi_config=OpenAPIConfig(title="Viva", version=viva_version(), path="/schema"),
        request_max_body_size=settings.submissions.max_archive_mb * 1024 * 1024 + 256 * 1024,
        state=None,
        debug=False,
    )
    app.state["viva"] = state
    _require_access_rules(app)
    return app


async def _report_worker(state: ServerState) -> None:
    """The in-process worker on the worker hosts page, like any `viva worker`."""
    worker, server = state.worker, state.settings.server
    await report_host(
        state.factory,
        worker.name,
        engine=await asyncio.to_thread(docker_engine_name, state.settings),
        slots=server.worker_slots,
        busy=lambda: worker.busy,
        done=lambda: worker.done,
        every_seconds=server.worker_heartbeat_seconds,
        stopping=worker.stopping,
        draining=lambda: worker.draining,
    )


async def _retention_loop(state: ServerState) -> None:
    """Apply the retention settings at start and then hourly, until the server stops."""
    stopping = state.worker.stopping  # set when the server shuts down, whether or not it runs gradings
    while not stopping.is_set():
        try:
            async with state.factory() as db:
                removed = await retention.sweep(db, state.settings)
                await db.commit()
            if any(removed.values()):
                log.info("retention removed %s", removed)
        except Exception:  # a failed sweep is retried next hour; it must not stop the server
            log.exception("the retention sweep failed")
        await sleep_or_stop(stopping, RETENTION_EVERY_S)


def docker_engine_name(settings: Settings) -> str:
    """The Docker engine this process's sandboxes run on, for the worker hosts page; or why there is none."""
    if settings.submissions.static_only:
        return "none (static-only grading)"
    try:
        info = docker_client().info()
    except SandboxUnavailable as error:
        return f"none: {error}"[:200]
    except Exception as error:  # an engine that answers oddly is still worth naming on the page
        return f"unreadable: {type(error).__name__}"
    return f"{info.get('Name', '?')} {str(info.get('ID', ''))[:12]} (Docker {info.get('ServerVersion', '?')})"


def reap_sandboxes() -> None:
    try:
        removed = reap(docker_client())
    except SandboxUnavailable:
        return  # no Docker here: dynamic checks will say so in each report
    if removed:
        log.info("removed %d sandbox container(s) left by a stopped server: %s", len(removed), ", ".join(removed))


def _automatic_options(handler: Any) -> bool:
    return set(getattr(handler, "http_methods", ())) == {"OPTIONS"}


def _require_access_rules(app: Litestar) -> None:
    missing = [
        f"{sorted(route.path for route in [route])[0]} ({handler.handler_name})"
        for route in app.routes
        for handler in getattr(route, "route_handlers", [getattr(route, "route_handler", None)])
        if handler is not None
        and not str(route.path).startswith("/schema")
        and not _automatic_options(handler)
        and handler.opt.get("access") not in ACCESS_LEVELS
    ]
    if missing:
        raise RuntimeError(f"routes without an access rule: {', '.join(missing)}")
