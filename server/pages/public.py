"""Pages anyone may open: the front door, sign in and up, password reset, invitations, and position invite links
(the links Viva's mails and managers hand out)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Invitation, Organisation, Position, User, utcnow
from server.pages.render import home_of, page_opt, render, safe_next
from server.security import token_hash

PUBLIC = page_opt("public")
Code = str


@get("/", opt=PUBLIC, include_in_schema=False)
async def front_door(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    user: User | None = request.state.get("user")
    if user is not None:
        return Redirect(home_of(user), status_code=303)
    return render(request, "public/welcome.html.j2")


@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any],
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
) -> Response[str] | Redirect:
    user: User | None = request.state.get("user")
    if user is not None:
        return Redirect(safe_next(next_path, home_of(user)), status_code=303)
    return render(request, "public/login.html.j2", next_path=safe_next(next_path, ""))


@get("/signup", opt=PUBLIC, include_in_schema=False)
async def signup_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    invite: Annotated[str | None, QueryParameter(name="invite", max_length=100)] = None,
) -> Response[str]:
    position = await _open_position(db, invite) if invite else None
    return render(request, "public/signup.html.j2", invite=invite if position else "", position=position)


@get("/signup/confirm/{code:str}", opt=PUBLIC, include_in_schema=False)
async def signup_confirm_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[str]:
    """The link a sign-up mail carries. Opening it changes nothing (mail scanners open links); the button does."""
    return render(request, "public/signup_confirm.html.j2", code=code[:100])


@get("/password-reset", opt=PUBLIC, include_in_schema=False)
async def reset_request_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "public/reset_request.html.j2")


@get("/password-reset/{token:str}", opt=PUBLIC, include_in_schema=False)
async def reset_confirm_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    return render(request, "public/reset_confirm.html.j2", token=token[:200])


@get("/invitations/{code:str}", opt=PUBLIC, include_in_schema=False)
async def invitation_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], code: FromPath[str]
) -> Response[str]:
    invitation = (await db.exec(select(Invitation).where(Invitation.code_hash == token_hash(code[:200])))).first()
    valid = invitation is not None and invitation.accepted_at is None and invitation.expires_at > utcnow()
    organisation = await db.get(Organisation, invitation.organisation_id) if invitation and valid else None
    return render(
        request,
        "public/invitation.html.j2",
        status_code=200 if valid else 404,
        code=code[:200],
        invitation=invitation if valid else None,
        organisation=organisation,
    )


@get("/join/{code:str}", opt=PUBLIC, include_in_schema=False)
async def join_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], code: FromPath[str]
) -> Response[str] | Redirect:
    """A position's invite link. A signed-in candidate joins with one click; anyone else signs up (and joins) or
    signs in first."""
    position = await _open_position(db, code)
    user: User | None = request.state.get("user")
    if position is None:
        return render(request, "public/join.html.j2", status_code=404, position=None, organisation=None, code="")
    if user is None:
        return Redirect(f"/signup?invite={code}", status_code=303)
    organisation = await db.get(Organisation, position.organisation_id)
    return render(request, "public/join.html.j2", position=position, organisation=organisation, code=code)


async def _open_position(db: AsyncSession, code: str | None) -> Position | None:
    if not code:
        return None
    position = (await db.exec(select(Position).where(Position.invite_code == code[:100]))).first()
    return position if position is not None and position.open else None


ROUTES = [
    front_door,
    login_page,
    signup_page,
    signup_confirm_page,
    reset_request_page,
    reset_confirm_page,
    invitation_page,
    join_page,
]
