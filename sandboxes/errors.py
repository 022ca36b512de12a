"""Errors raised by sandboxes. The split that matters: Viva's machinery failing is never the candidate's fault."""

from __future__ import annotations

from typing import Literal


class SandboxError(Exception):
    """Root of every error this room raises."""


class SandboxUnavailable(SandboxError):
    """Raised when Viva cannot run a sandbox here: no engine, engine down, our image missing or failing to build.
    A grading turns this into `not_run`, never into a score against the candidate."""


class UnknownBackend(SandboxError):
    """Raised when a backend name is not registered; the message says what is available and what to install."""


class LayerTooLarge(SandboxError):
    """Raised when a project's dependency layer comes out past the ceiling (VIVA_SANDBOX_LAYER_MAX_MB); the image is
    removed first. Viva's limit, not the candidate's failure: a grading makes the dynamic leaves not_run with it."""

    def __init__(self, size_mb: int, max_mb: int) -> None:
        super().__init__(
            f"the dependency layer is {size_mb:,} MB installed, over the {max_mb:,} MB ceiling "
            f"(VIVA_SANDBOX_LAYER_MAX_MB)"
        )
        self.size_mb, self.max_mb = size_mb, max_mb


class PodStartFailed(SandboxError):
    """Raised by a backend's `start_companions` (Docker: sandboxes/docker_pod.py `start_sidecars`) when a sidecar
    exits during start, fails its healthcheck, or is not ready within the startup budget; everything it had started
    is removed first. `probe_missing` says the healthcheck's own
    program is not in the image (a substitute image can lack a tool the official one has): then it is Viva's
    limitation, not the candidate's failure."""

    def __init__(
        self,
        service: str,
        reason: str,
        *,
        kind: Literal["exited", "unhealthy", "timeout"],
        log_tail: str = "",
        exit_code: int | None = None,
        probe_missing: bool = False,
    ) -> None:
        super().__init__(f"sidecar {service}: {reason}")
        self.service, self.reason, self.kind = service, reason, kind
        self.log_tail, self.exit_code, self.probe_missing = log_tail, exit_code, probe_missing
