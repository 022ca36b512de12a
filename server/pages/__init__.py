"""The pages people use in a browser, rendered on the server from frontend/templates, plus frontend/static."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from server.pages import candidate, manager, public, work
from server.pages.render import STATIC

STATIC_ROUTER = create_static_files_router(
    path="/static",
    directories=[STATIC],
    opt={"access": "public"},
    cache_control=CacheControlHeader(max_age=300),
    include_in_schema=False,
)

ROUTES: list[Any] = [*public.ROUTES, *candidate.ROUTES, *work.ROUTES, *manager.ROUTES, STATIC_ROUTER]
