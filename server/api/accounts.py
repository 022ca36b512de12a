"""Sign-up, sign-in, sessions, the AI notice, API tokens, invitations, password resets, organisations, outbox."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import ApiToken, OutboxMail, User, utcnow
from server.errors import AuthRequired, Forbidden, NotFound
from server.schemas import (
    AcceptInvitation,
    Limit,
    Login,
    NewInvitation,
    NewOrganisation,
    NewToken,
    Offset,
    OutboxOut,
    Page,
    PathId,
    ResetConfirm,
    ResetRequest,
    SessionOut,
    SignUp,
    SignUpConfirm,
    TokenOut,
    UserOut,
)
from server.services import accounts
from server.services.catalogue import join_position
from server.services.paging import paged
from server.web import SESSION_COOKIE, client_address, state_of

PUBLIC, USER, MANAGER, ADMIN = ({"access": level} for level in ("public", "user", "manager", "admin"))


async def _signed_in(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[SessionOut]:
    settings = state_of(request).settings
    token, session = await accounts.start_session(db, user, settings.server.session_hours)
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=token,
        httponly=True,
        secure=settings.server.cookie_secure,
        samesite="lax",
        max_age=int(settings.server.session_hours * 3600),
        path="/",
    )
    return Response(SessionOut(UserOut.of(user), session.csrf_token), cookies=[cookie], status_code=200)


SIGN_UP_SENT = "check your email: the link to finish signing up is on its way"


@post("/api/auth/signup", opt=PUBLIC, status_code=202)
async def sign_up(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], data: JSONBody[SignUp]
) -> dict[str, str]:
    """A candidate asks for an account (and, with an invite code, to join that position). The account is made when
    they open the link mailed to the address; the answer is the same whether or not the address has an account."""
    state = state_of(request)
    state.limiter.hit("sign-up", client_address(request), state.settings.limits.login_per_minute)
    _mail_allowance(request, data.email)
    await accounts.request_sign_up(
        db,
        state.mailer,
        email=data.email,
        password=data.password,
        name=data.name,
        invite_code=data.invite_code,
        public_url=state.settings.server.public_url,
    )
    return {"status": SIGN_UP_SENT}


@post("/api/auth/signup/confirm", opt=PUBLIC, status_code=201)
async def confirm_sign_up(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], data: JSONBody[SignUpConfirm]
) -> Response[SessionOut]:
    """The mailed link is used: the account is created, joins the position it was invited to, and is signed in."""
    state = state_of(request)
    state.limiter.hit("sign-up", client_address(request), state.settings.limits.login_per_minute)
    user, invite_code = await accounts.confirm_sign_up(db, data.code)
    if invite_code:
        with contextlib.suppress(NotFound):  # the position closed meanwhile: the account stands, the join does not
            await join_position(db, user, invite_code)
    response = await _signed_in(request, db, user)
    response.status_code = 201
    return response


@post("/api/auth/login", opt=PUBLIC, status_code=200)
async def log_in(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], data: JSONBody[Login]
) -> Response[SessionOut]:
    """Per address, every attempt counts; per account, failures do (from any address), checked before the password
    is, so a botnet spread over many addresses still gets only so many guesses at one account an hour."""
    state = state_of(request)
    limits = state.settings.limits
    state.limiter.hit("login", client_address(request), limits.login_per_minute)
    account = data.email.strip().lower()
    state.limiter.check("sign-in", account, limits.failed_logins_per_account_per_hour, window_s=3600)
    try:
        user = await accounts.authenticate(db, data.email, data.password)
    except AuthRequired:
        state.limiter.count("sign-in", account, window_s=3600)
        raise
    return await _signed_in(request, db, user)


def _mail_allowance(request: Request[Any, Any, Any], email: str) -> None:
    """Mail one address may be sent an hour (resets, sign-up links), counted whether or not it has an account, so
    the limit says nothing about accounts while nobody can flood an inbox through Viva."""
    state = state_of(request)
    state.limiter.hit("mail", email.strip().lower(), state.settings.limits.account_mails_per_hour, window_s=3600)


@post("/api/auth/logout", opt=USER, status_code=204)
async def log_out(request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]) -> Response[None]:
    session = request.state.get("session")
    if session is not None:
        await accounts.end_session(db, await db.merge(session))
    return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])


@get("/api/me", opt=USER)
async def me(user: NamedDependency[User]) -> UserOut:
    return UserOut.of(user)


@post("/api/me/ai-notice", opt=USER, status_code=200)
async def accept_ai_notice(db: NamedDependency[AsyncSession], user: NamedDependency[User]) -> UserOut:
    """The candidate read that an AI grades and interviews them, that they can ask for a human review of any result,
    and that they can delete their data; they cannot submit or start an interview before this."""
    row = await db.get(User, user.id)
    assert row is not None
    row.ai_notice_accepted_at = row.ai_notice_accepted_at or utcnow()
    return UserOut.of(row)


@post("/api/auth/password-reset", opt=PUBLIC, status_code=202)
async def password_reset(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], data: JSONBody[ResetRequest]
) -> dict[str, str]:
    state = state_of(request)
    state.limiter.hit("password-reset", client_address(request), state.settings.limits.login_per_minute)
    _mail_allowance(request, data.email)
    await accounts.request_password_reset(db, state.mailer, data.email, state.settings.server.public_url)
    return {"status": "if that address has an account, a reset link is on its way"}


@post("/api/auth/password-reset/confirm", opt=PUBLIC, status_code=200)
async def password_reset_confirm(db: NamedDependency[AsyncSession], data: JSONBody[ResetConfirm]) -> dict[str, str]:
    await accounts.reset_password(db, data.token, data.password)
    return {"status": "password changed; sign in with it"}


@post("/api/invitations/{code:str}/accept", opt=PUBLIC, status_code=201)
async def accept_invitation(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    code: FromPath[str],
    data: JSONBody[AcceptInvitation],
) -> Response[SessionOut]:
    user = await accounts.accept_invitation(db, code, name=data.name, password=data.password)
    response = await _signed_in(request, db, user)
    response.status_code = 201
    return response


@post("/api/invitations", opt=MANAGER, status_code=201)
async def invite(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    data: JSONBody[NewInvitation],
) -> dict[str, Any]:
    state = state_of(request)
    invitation = await accounts.invite(
        db, state.mailer, user, email=data.email, role=data.role, public_url=state.settings.server.public_url
    )
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at,
    }


@post("/api/organisations", opt=ADMIN, status_code=201)
async def create_organisation(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    data: JSONBody[NewOrganisation],
) -> dict[str, Any]:
    """An admin opens an organisation and invites its first manager by email."""
    state = state_of(request)
    organisation = await accounts.create_organisation(db, data.name)
    inviter = User(
        id=user.id, email=user.email, name=user.name, role="admin", organisation_id=organisation.id, password_hash=""
    )
    await accounts.invite(
        db, state.mailer, inviter, email=data.manager_email, role="manager", public_url=state.settings.server.public_url
    )
    return {"id": organisation.id, "name": organisation.name}


@post("/api/tokens", opt=USER, status_code=201)
async def create_token(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], data: JSONBody[NewToken]
) -> TokenOut:
    token, row = await accounts.create_api_token(db, user, data.name)
    assert row.id is not None
    return TokenOut(row.id, row.name, row.prefix, row.created_at, row.last_used_at, token)


@get("/api/tokens", opt=USER)
async def list_tokens(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], limit: Limit = 100, offset: Offset = 0
) -> Page[TokenOut]:
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked == False)  # noqa: E712
    rows, total = await paged(db, query, col(ApiToken.id), limit=limit, offset=offset)
    return Page(
        [TokenOut(row.id or 0, row.name, row.prefix, row.created_at, row.last_used_at) for row in rows],
        total,
        limit,
        offset,
    )


@delete("/api/tokens/{token_id:int}", opt=USER, status_code=204)
async def revoke_token(db: NamedDependency[AsyncSession], user: NamedDependency[User], token_id: PathId) -> None:
    await accounts.revoke_api_token(db, user, token_id)


@get("/api/admin/outbox", opt=ADMIN)
async def outbox(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], limit: Limit = 100, offset: Offset = 0
) -> Page[OutboxOut]:
    """Mail Viva sent, or would have sent without SMTP: invitations and reset links, newest first."""
    if user.role != "admin":
        raise Forbidden("admins only")
    rows, total = await paged(db, select(OutboxMail), col(OutboxMail.id).desc(), limit=limit, offset=offset)
    return Page(
        [
            OutboxOut(row.id or 0, row.recipient, row.subject, row.body, row.created_at, row.sent_at, row.error)
            for row in rows
        ],
        total,
        limit,
        offset,
    )


AI_NOTICE = (
    "Viva grades your project and interviews you with AI. An automated grader reads and runs your repository in an "
    "isolated sandbox, and a language model interviews you about it and rates your answers against the rubric the "
    "hiring team chose. Every score comes with its evidence. You can ask for a person to review any result, and you "
    "can delete your data — submissions, reports, interview transcripts and recordings — at any time. Data is kept "
    "only as long as this deployment's retention settings say."
)


@get("/api/ai-notice", opt=PUBLIC, sync_to_thread=False)
def ai_notice() -> dict[str, str]:
    """What a candidate is told before they start; accepting it (POST /api/me/ai-notice) unlocks submitting."""
    return {"text": AI_NOTICE}


ROUTES = [
    ai_notice,
    sign_up,
    confirm_sign_up,
    log_in,
    log_out,
    me,
    accept_ai_notice,
    password_reset,
    password_reset_confirm,
    accept_invitation,
    invite,
    create_organisation,
    create_token,
    list_tokens,
    revoke_token,
    outbox,
]
