"""Errors raised by the server room. Domain errors carry the HTTP status they map to (server/app.py turns every
one into the same JSON body: {"error": {"status", "code", "message", "details"}})."""

from __future__ import annotations

from typing import Any, ClassVar


class ServerError(Exception):
    """Root of every error the server room raises."""


class SettingsError(ServerError):
    """Raised when a VIVA_* environment variable (or .env line) cannot be turned into the setting it names."""


class DomainError(ServerError):
    """A request Viva refuses, with the reason; `status` and `code` say how the API reports it."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(DomainError):
    """Raised for input that breaks a rule: a bad email, a weak password, a URL off the allow-list."""

    status, code = 400, "invalid_input"


class AuthRequired(DomainError):
    """Raised when a route needs a signed-in user and the request has no valid session or token."""

    status, code = 401, "auth_required"


class Forbidden(DomainError):
    """Raised when the user is signed in but may not do this (wrong role, someone else's data, missing CSRF)."""

    status, code = 403, "forbidden"


class NotFound(DomainError):
    """Raised for a resource that does not exist, or that the user may not know exists."""

    status, code = 404, "not_found"


class Conflict(DomainError):
    """Raised when the request clashes with current state: an email taken, a job already finished."""

    status, code = 409, "conflict"


class UnsupportedMediaType(DomainError):
    """Raised when a request's body is not of the type the route reads (a sign-in sent as a form, not JSON)."""

    status, code = 415, "unsupported_media_type"


class TooMany(DomainError):
    """Raised when a limit is reached: concurrent gradings, or a rate limit."""

    status, code = 429, "too_many"
