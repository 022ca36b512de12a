"""Accounts: organisations, users and roles, sessions, API tokens, invitations, password resets."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import (
    ROLES,
    ApiToken,
    AuthSession,
    Invitation,
    Organisation,
    PasswordReset,
    User,
    utcnow,
)
from server.errors import AuthRequired, Conflict, Forbidden, InvalidInput, NotFound
from server.mail import Mailer
from server.security import hash_password, new_token, token_hash, verify_password

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
INVITATION_DAYS = 7
RESET_HOURS = 2


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
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", {"field": "role"})
    if role == "manager" and organisation_id is None:
        raise InvalidInput("a manager belongs to an organisation", {"field": "organisation_id"})
    email = normalise_email(email)
    if (await db.exec(select(User).where(User.email == email))).first() is not None:
        raise Conflict("an account with that email exists", {"field": "email"})
    user = User(
        email=email,
        name=name.strip()[:200],
        role=role,
        organisation_id=organisation_id if role != "candidate" else None,
        password_hash=hash_password(password),
    )
    db.add(user)
    await db.flush()
    return user


async def authenticate(db: AsyncSession, email: str, password: str) -> User:
    user = (await db.exec(select(User).where(User.email == email.strip().lower()))).first()
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
    record = (await db.exec(select(PasswordReset).where(PasswordReset.token_hash == token_hash(token)))).first()
    if record is None or record.used_at is not None or record.expires_at <= utcnow():
        raise NotFound("this reset link is not valid any more")
    user = await db.get(User, record.user_id)
    if user is None:
        raise NotFound("this reset link is not valid any more")
    user.password_hash = hash_password(password)
    record.used_at = utcnow()
    for session in (await db.exec(select(AuthSession).where(AuthSession.user_id == user.id))).all():
        await db.delete(session)  # a reset signs the account out everywhere
    return user


def _id(item: User) -> int:
    assert item.id is not None, "flushed rows have ids"
    return item.id
