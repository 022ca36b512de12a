"""Accounts: organisations, users and roles, sessions, API tokens, invitations, password resets."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import (
    ROLES,
    ApiToken,
    AuthSession,
    Invitation,
    Organisation,
    PasswordReset,
    SignupRequest,
    User,
    utcnow,
)
from server.errors import AuthRequired, Conflict, Forbidden, InvalidInput, NotFound
from server.mail import Mailer
from server.security import check_password_rules, hash_password, new_token, token_hash, verify_password

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
INVITATION_DAYS = 7
RESET_HOURS = 2
SIGNUP_HOURS = 24


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise InvalidInput("that is not an email address", {"field": "email"})
    return email


async def create_organisation(db: AsyncSession, name: str) -> Organisation:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an organisation needs a name of at most 200 characters", {"field": "name"})
    organisation = Organisation(name=name)
    db.add(organisation)
    await db.flush()
    return organisation


async def create_user(
    db: AsyncSession, *, email: str, password: str, role: str, organisation_id: int | None = None, name: str = ""
) -> User:
    """An account made by someone who may know whether the address is taken (an admin, an invitation's holder,
    the demo): a taken address is a Conflict. Anonymous sign-ups go through `request_sign_up` instead."""
    return await _insert_user(
        db, email=email, password_hash=hash_password(password), role=role, organisation_id=organisation_id, name=name
    )


async def _insert_user(
    db: AsyncSession, *, email: str, password_hash: str, role: str, organisation_id: int | None, name: str
) -> User:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", {"field": "role"})
    if role == "manager" and organisation_id is None:
        raise InvalidInput("a manager belongs to an organisation", {"field": "organisation_id"})
    email = normalise_email(email)
    if await _user_by_email(db, email) is not None:
        raise Conflict("an account with that email exists", {"field": "email"})
    user = User(
        email=email,
        name=name.strip()[:200],
        role=role,
        organisation_id=organisation_id if role != "candidate" else None,
        password_hash=password_hash,
    )
    db.add(user)
    await db.flush()
    return user


async def request_sign_up(
    db: AsyncSession, mailer: Mailer, *, email: str, password: str, name: str, invite_code: str | None, public_url: str
) -> None:
    """A candidate asks for an account. The answer is the same whether or not the address has one (what differs is
    the mail: a link to finish signing up, or a note that the account exists), and so is the work done — the
    password is hashed either way — so neither the answer nor its timing tells an account exists."""
    address = normalise_email(email)
    check_password_rules(password)
    password_hash = hash_password(password)
    base = public_url.rstrip("/")
    existing = await _user_by_email(db, address)
    if existing is not None:
        await mailer.send(
            db,
            address,
            "You already have a Viva account",
            "Someone — you, we hope — tried to create a Viva account with this address, which already has one.\n\n"
            f"Sign in: {base}/login\nForgot the password? {base}/password-reset\n\n"
            "If it was not you, you can ignore this mail; nothing was changed.\n",
        )
        return
    code = new_token()
    db.add(
        SignupRequest(
            email=address,
            name=name.strip()[:200],
            password_hash=password_hash,
            invite_code=(invite_code or None),
            code_hash=token_hash(code),
            expires_at=utcnow() + timedelta(hours=SIGNUP_HOURS),
        )
    )
    await mailer.send(
        db,
        address,
        "Finish creating your Viva account",
        f"To finish creating your account, open:\n\n{base}/signup/confirm/{code}\n\n"
        f"The link works once, for {SIGNUP_HOURS} hours. If you did not ask for an account, ignore this mail.\n",
    )


async def confirm_sign_up(db: AsyncSession, code: str) -> tuple[User, str | None]:
    """Use a sign-up link (once): the account is created and its invite code, if any, handed back to join."""
    now = utcnow()
    record = (await db.exec(select(SignupRequest).where(SignupRequest.code_hash == token_hash(code)))).first()
    if record is None or record.used_at is not None or record.expires_at <= now:
        raise NotFound("this sign-up link is not valid any more")
    if not await _claim(db, SignupRequest, record.id, now):
        raise NotFound("this sign-up link is not valid any more")  # a second tab used it a moment ago
    await db.exec(
        update(SignupRequest)
        .where(col(SignupRequest.email) == record.email, col(SignupRequest.used_at).is_(None))
        .values(used_at=now)  # the other links mailed to this address are spent too
    )
    try:
        user = await _insert_user(
            db,
            email=record.email,
            password_hash=record.password_hash,
            role="candidate",
            organisation_id=None,
            name=record.name,
        )
    except Conflict:
        raise NotFound("an account with this address exists already; sign in instead") from None
    return user, record.invite_code


async def _user_by_email(db: AsyncSession, address: str) -> User | None:
    return (await db.exec(select(User).where(User.email == address))).first()


async def authenticate(db: AsyncSession, email: str, password: str) -> User:
    user = await _user_by_email(db, email.strip().lower())
    if not verify_password(user.password_hash if user else None, password) or user is None or user.disabled:
        raise AuthRequired("wrong email or password")
    return user


async def start_session(db: AsyncSession, user: User, hours: float) -> tuple[str, AuthSession]:
    token = new_token()
    record = AuthSession(
        token_hash=token_hash(token),
        user_id=_id(user),
        csrf_token=secrets.token_urlsafe(24),
        expires_at=utcnow() + timedelta(hours=hours),
    )
    db.add(record)
    await db.flush()
    return token, record


async def session_user(db: AsyncSession, token: str) -> tuple[User, AuthSession] | None:
    record = (await db.exec(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))).first()
    if record is None or record.expires_at <= utcnow():
        return None
    user = await db.get(User, record.user_id)
    return (user, record) if user is not None and not user.disabled else None


async def end_session(db: AsyncSession, record: AuthSession) -> None:
    await db.delete(record)


async def create_api_token(db: AsyncSession, user: User, name: str) -> tuple[str, ApiToken]:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token needs a name of at most 100 characters", {"field": "name"})
    token = "viva_" + new_token()
    record = ApiToken(user_id=_id(user), name=name, prefix=token[:12], token_hash=token_hash(token))
    db.add(record)
    await db.flush()
    return token, record


async def token_user(db: AsyncSession, token: str) -> User | None:
    record = (await db.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))).first()
    if record is None or record.revoked:
        return None
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now  # at most one write a minute per token, not one per request
    user = await db.get(User, record.user_id)
    return user if user is not None and not user.disabled else None


async def revoke_api_token(db: AsyncSession, user: User, token_id: int) -> None:
    record = await db.get(ApiToken, token_id)
    if record is None or record.user_id != user.id:
        raise NotFound("no such token")
    record.revoked = True


async def invite(
    db: AsyncSession, mailer: Mailer, inviter: User, *, email: str, role: str, public_url: str
) -> Invitation:
    """A manager invites another manager to their organisation (an admin may invite an admin)."""
    if role not in ("manager", "admin") or (role == "admin" and inviter.role != "admin"):
        raise Forbidden(f"you cannot invite someone as {role!r}")
    if inviter.organisation_id is None:
        raise Forbidden("only a member of an organisation can invite to it")
    code = new_token()
    invitation = Invitation(
        code_hash=token_hash(code),
        organisation_id=inviter.organisation_id,
        email=normalise_email(email),
        role=role,
        invited_by=_id(inviter),
        expires_at=utcnow() + timedelta(days=INVITATION_DAYS),
    )
    db.add(invitation)
    await db.flush()
    link = f"{public_url.rstrip('/')}/invitations/{code}"
    await mailer.send(
        db, invitation.email, "You are invited to Viva", f"{inviter.name or inviter.email} invited you.\n\n{link}\n"
    )
    return invitation


async def accept_invitation(db: AsyncSession, code: str, *, name: str, password: str) -> User:
    invitation = (await db.exec(select(Invitation).where(Invitation.code_hash == token_hash(code)))).first()
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= utcnow():
        raise NotFound("this invitation is not valid any more")
    invitation.accepted_at = utcnow()
    return await create_user(
        db,
        email=invitation.email,
        password=password,
        role=invitation.role,
        organisation_id=invitation.organisation_id,
        name=name,
    )


async def request_password_reset(db: AsyncSession, mailer: Mailer, email: str, public_url: str) -> None:
    """Always succeeds, so the answer does not reveal whether an account exists; mails the link when it does."""
    try:
        address = normalise_email(email)
    except InvalidInput:
        return
    user = (await db.exec(select(User).where(User.email == address))).first()
    if user is None or user.disabled:
        return
    token = new_token()
    db.add(
        PasswordReset(
            user_id=_id(user), token_hash=token_hash(token), expires_at=utcnow() + timedelta(hours=RESET_HOURS)
        )
    )
    link = f"{public_url.rstrip('/')}/password-reset/{token}"
    await mailer.send(db, address, "Reset your Viva password", f"To choose a new password, open:\n\n{link}\n")


async def reset_password(db: AsyncSession, token: str, password: str) -> User:
    """Use a reset link: one use, and it spends every other outstanding link; the account is signed out
    everywhere — browser sessions ended, API tokens revoked — since whoever had the old password may have either."""
    now = utcnow()
    record = (await db.exec(select(PasswordReset).where(PasswordReset.token_hash == token_hash(token)))).first()
    if record is None or record.used_at is not None or record.expires_at <= now:
        raise NotFound("this reset link is not valid any more")
    user = await db.get(User, record.user_id)
    if user is None or not await _claim(db, PasswordReset, record.id, now):
        raise NotFound("this reset link is not valid any more")
    user.password_hash = hash_password(password)
    await sign_out_everywhere(db, user, now)
    return user


async def sign_out_everywhere(db: AsyncSession, user: User, now: datetime | None = None) -> None:
    """After a password changes: no session, token or reset link made before it still works."""
    user_id = _id(user)
    await db.exec(update(ApiToken).where(col(ApiToken.user_id) == user_id).values(revoked=True))
    await db.exec(
        update(PasswordReset)
        .where(col(PasswordReset.user_id) == user_id, col(PasswordReset.used_at).is_(None))
        .values(used_at=now or utcnow())
    )
    for session in (await db.exec(select(AuthSession).where(AuthSession.user_id == user_id))).all():
        await db.delete(session)


async def _claim(
    db: AsyncSession, table: type[PasswordReset] | type[SignupRequest], row_id: int | None, now: datetime
) -> bool:
    """Mark a one-use link used, if nobody else did first (a conditional update, so two requests racing with the
    same link cannot both pass)."""
    claimed = await db.exec(
        update(table).where(col(table.id) == row_id, col(table.used_at).is_(None)).values(used_at=now)
    )
    return bool(claimed.rowcount == 1)


def _id(item: User) -> int:
    assert item.id is not None, "flushed rows have ids"
    return item.id
