"""Errors raised by sandboxes. The split that matters: Viva's machinery failing is never the candidate's fault."""

from __future__ import annotations


class SandboxError(Exception):
    """Root of every error this room raises."""


class SandboxUnavailable(SandboxError):
    """Raised when Viva cannot run a sandbox here: no engine, engine down, our image missing or failing to build.
    A grading turns this into `not_run`, never into a score against the candidate."""


class UnknownBackend(SandboxError):
    """Raised when a backend name is not registered; the message says what is available and what to install."""
