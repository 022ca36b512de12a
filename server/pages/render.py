"""Rendering pages: one Jinja environment over frontend/templates, autoescaping everything.

Pages are rendered on the server from the same services the JSON API uses; the small scripts in frontend/static
then talk to the JSON API (with the session's CSRF token from a meta tag) for everything that changes data. The
Content-Security-Policy allows scripts from this origin only, so no page has an inline script, and everything from
a candidate's repository or answers reaches the page through an autoescaped `{{ }}`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from litestar import Request, Response
from litestar.response import Redirect

from grader.report.format import percent
from server.db.models import AuthSession, User

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TEMPLATES = FRONTEND / "templates"
STATIC = FRONTEND / "static"

PAGE = {"page": True}
"""Merged into a page route's opt: errors on it answer with a page (and a sign-in redirect), not JSON."""


def page_opt(access: str) -> dict[str, Any]:
    return {"access": access, **PAGE}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = percent
    env.filters["when"] = _when
    env.globals["quote"] = lambda text: quote(str(text), safe="/")
    return env


def render(request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any) -> Response[str]:
    user: User | None = request.state.get("user")
    session: AuthSession | None = request.state.get("session")
    html = (
        environment()
        .get_template(template)
        .render(
            user=user,
            csrf_token=session.csrf_token if session is not None else "",
            path=request.url.path,
            **context,
        )
    )
    return Response(html, media_type="text/html; charset=utf-8", status_code=status_code)


def sign_in_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(value: str | None, default: str) -> str:
    r"""Only a path on this site, as the browser will read it. A browser drops tabs and newlines anywhere in a URL
    and reads a backslash as a slash, so `/\t/evil.example` and `/\evil.example` become `//evil.example`, another
    site: refuse every control character, space and backslash, then anything that is not a plain `/path`."""
    if not value or "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else default


def home_of(user: User | None) -> str:
    if user is None:
        return "/login"
    return "/home" if user.role == "candidate" else "/manage"


def _when(value: Any) -> str:
    if value is None:
        return "—"
    return str(value.strftime("%d %b %Y, %H:%M UTC"))
