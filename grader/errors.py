"""Errors raised by the grader. `GraderError` is the root; each class says when it is raised."""

from __future__ import annotations


class GraderError(Exception):
    """Root of every error the grader raises."""


class FetchError(GraderError):
    """Raised when a target cannot be fetched: bad or refused target, clone failure, missing ref."""


class TargetRefused(FetchError):
    """Raised when a target is refused before any I/O: a dangerous transport, an option-like URL,
    a local path where only remote URLs are allowed, a host not on the allow-list."""


class FetchLimitExceeded(FetchError):
    """Raised when a repository exceeds a fetch limit (size, file count, time). The message names the setting."""
