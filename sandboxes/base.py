"""The Sandbox interface (after inspect_ai's SandboxEnvironment): start, exec, read_file, write_file, cleanup.

What a command did is an ExecResult: a timeout, an out-of-memory kill or a flood of output is part of the
result (the candidate's code did it), not an exception.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import Self

import msgspec

from sandboxes.errors import UnknownBackend


class SandboxLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-sandbox caps. Read from VIVA_SANDBOX_* by server.settings; gradings and organisations may lower them."""

    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 256
    disk_mb: int = 512
    """Size of the writable work area (/work, a tmpfs)."""
    tmp_mb: int = 64
    output_bytes: int = 1_000_000
    """Per stream; the rest of a flood is dropped and `truncated` set."""
    timeout_s: float = 120.0
    """Default wall-clock limit per exec."""

    def capped_by(self, *caps: SandboxLimits | None) -> SandboxLimits:
        """These limits, lowered by a grading's or an organisation's caps: the smallest value of each field wins."""
        fields = {name: getattr(self, name) for name in self.__struct_fields__}
        for cap in caps:
            if cap is not None:
                fields = {name: min(value, getattr(cap, name)) for name, value in fields.items()}
        return SandboxLimits(**fields)


class ExecResult(msgspec.Struct, frozen=True):
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False

    @property
    def success(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class Sandbox(abc.ABC):
    """One isolated environment. Use as an async context manager so cleanup always runs."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def exec(
        self,
        cmd: list[str],
        *,
        input: str | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult: ...

    @abc.abstractmethod
    async def spawn(self, cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        """Start a background process (a service under test) and return at once; it ends with the sandbox."""

    @abc.abstractmethod
    async def write_file(self, path: str, contents: bytes) -> None: ...

    @abc.abstractmethod
    async def read_file(self, path: str, limit: int | None = None) -> bytes: ...

    @abc.abstractmethod
    async def cleanup(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cleanup()


_BACKENDS: dict[str, Callable[..., Sandbox]] = {}
_INSTALL_HINTS = {"docker": "install a Docker engine (Debian: apt-get install docker.io) and start dockerd"}


def register_backend(name: str) -> Callable[[Callable[..., Sandbox]], Callable[..., Sandbox]]:
    def register(factory: Callable[..., Sandbox]) -> Callable[..., Sandbox]:
        _BACKENDS[name] = factory
        return factory

    return register


def backend(name: str) -> Callable[..., Sandbox]:
    if name == "docker" and name not in _BACKENDS:
        import sandboxes.docker_backend  # noqa: F401, PLC0415 - registers itself on import

    try:
        return _BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted({*_BACKENDS, "docker"}))
        raise UnknownBackend(
            f"no sandbox backend {name!r}; known: {known}. {_INSTALL_HINTS.get(name, '')}".strip()
        ) from None
