"""Passwords (argon2id) and random tokens (stored only as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import InvalidInput

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("viva-dummy-password-for-timing")
MIN_PASSWORD = 10
MAX_PASSWORD = 1000


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, a dummy is checked so timing does not reveal accounts."""
    try:
        return _HASHER.verify(stored or _DUMMY, password[:MAX_PASSWORD]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters", {"field": "password"})
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("that password is too long", {"field": "password"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
