"""The Sandbox interface (after inspect_ai's SandboxEnvironment) and the registry of backends.

A sandbox is made from a SandboxSpec, whatever runs it, and offers start, exec, spawn, read_file, write_file and
cleanup. A backend is a factory of sandboxes from a spec (`backend(name)(spec)`) that says whether its sandboxes
isolate what runs in them and has their images ready (`images()`: the steps before any sandbox, such as the
dependency layer). Grading reaches sandboxes only through this module: docker_backend.py is the one that isolates,
fake_backend.py the scripted stand-in for tests. tests/integration/test_sandbox_conformance.py is what a backend
must pass.

What a command did is an ExecResult: a timeout, an out-of-memory kill or a flood of output is part of the
result (the candidate's code did it), not an exception.
"""

from __future__ import annotations

import abc
import importlib
import ipaddress
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, Self, TypeVar

import msgspec

from sandboxes.errors import SandboxError, SandboxUnavailable, UnknownBackend

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandboxes.deps import ParsedRequirements
    from sandboxes.layers import DependencyLayer
    from sandboxes.pod import PodPlan, ServiceLimits
    from sandboxes.service_images import ServiceImagePolicy
    from sandboxes.settings import SandboxSettings


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


MAX_READ_BYTES = 64 * 1024 * 1024
"""The most `Sandbox.read_file` returns, whatever limit it is given."""

ALLOWED_SYSCTLS = frozenset({"net.ipv4.ip_unprivileged_port_start"})
"""Kernel settings a sandbox may set, all of its own network namespace: `ip_unprivileged_port_start=0` lets the
non-root user bind port 80 or 443, as a companion service's image expects. Nothing that reaches the host's kernel."""


class SandboxSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a sandbox is made of, whatever backend runs it: every backend's constructor takes one.

    Every path from the host is mounted read-only; what runs inside sees nothing else of the host, and no variable
    of the host's environment."""

    image: str
    repo_dir: Path | None = None
    """The repository, mounted at /repo."""
    limits: SandboxLimits = msgspec.field(default_factory=SandboxLimits)
    owner: str = "viva"
    """Who the sandbox belongs to, as a label, so a reaper can remove what a crash left behind."""
    socket_dir: Path | None = None
    """A host directory of Unix sockets (the gateway's, the app tunnel's), mounted at /sock: the sandbox connects
    to them and can create nothing there."""
    env: dict[str, str] = {}
    """The sandbox's environment, besides HOME and PATH (which it may override)."""
    mounts: dict[Path, str] = {}
    """Extra host directories (host path → path inside), e.g. an operator's model cache."""
    file_mounts: dict[str, Path] = {}
    """Single host files (path inside → host path), e.g. a per-grading CA bundle; each must exist as a file. Keyed
    by the path inside: one host file may go to several places (the trust bundle over three stores)."""
    extra_hosts: dict[str, str] = {}
    """Names the sandbox resolves (name → a loopback address), as its /etc/hosts entries: a pod's companion
    services answer on the sandbox's own loopback."""
    sysctls: dict[str, str] = {}
    """Kernel settings of the sandbox's own namespaces, from ALLOWED_SYSCTLS only."""

    def __post_init__(self) -> None:
        refused = sorted(set(self.sysctls) - ALLOWED_SYSCTLS)
        if refused:
            raise ValueError(f"sysctls {refused} are not allowed in a sandbox; allowed: {sorted(ALLOWED_SYSCTLS)}")
        for name, address in self.extra_hosts.items():
            try:
                loopback = ipaddress.ip_address(address).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(f"extra host {name!r} must resolve to a loopback address, not {address!r}")


class Sandbox(abc.ABC):
    """One environment for code Viva does not trust, made from a spec. Use as an async context manager so cleanup
    always runs; cleaning up twice is harmless."""

    isolates: ClassVar[bool]
    """Whether what runs inside is contained (no network, no privileges, capped resources, the host out of reach).
    A real grading runs only on a backend that isolates; the conformance suite's attacks run against every one
    that says it does."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec

    @classmethod
    @abc.abstractmethod
    def images(cls) -> SandboxImages:
        """What readies this backend's images on this host; SandboxUnavailable when it cannot (no engine)."""

    @property
    @abc.abstractmethod
    def id(self) -> str:
        """The backend's handle on the running sandbox (Docker: the container id), for what joins it, such as a
        pod's sidecars; SandboxError before start."""

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
    ) -> ExecResult:
        """Run `cmd` to its end (at most `timeout`, default the limits' `timeout_s`), in `cwd` (default /work)."""

    @abc.abstractmethod
    async def spawn(self, cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        """Start a background process (a service under test) and return at once; it ends with the sandbox. Its
        output goes where `cmd` redirects it."""

    @abc.abstractmethod
    async def write_file(self, path: str, contents: bytes) -> None:
        """Write `contents` at `path` (its directory must exist); SandboxError when the sandbox refuses."""

    @abc.abstractmethod
    async def read_file(self, path: str, limit: int | None = None) -> bytes:
        """At most `limit` bytes (and MAX_READ_BYTES) of the file at `path`; SandboxError when it cannot be read."""

    @abc.abstractmethod
    async def cleanup(self) -> None: ...

    async def start_companions(
        self,
        plan: PodPlan,
        images: Mapping[str, str],
        *,
        limits: ServiceLimits,
        budget_s: float,
        time_scale: float = 1.0,
    ) -> list[str]:
        """Start the companion services of `plan` (service → local image, from `SandboxImages.service_images`)
        beside this running sandbox, sharing its network namespace, in dependency order, and return when each is
        ready, within `budget_s` together: one line per service saying how its readiness was decided. They end
        with the sandbox. Raises PodStartFailed (sandboxes/docker_pod.py) when one exits, turns unhealthy or is
        late. A backend without pods says so (SandboxUnavailable): the grading is then not_run, never a 0."""
        raise SandboxUnavailable(f"the {type(self).__name__} backend runs no companion services")

    async def companions_down(self) -> list[str]:
        """The companions no longer running, one line each with the reason and their last log line."""
        return []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cleanup()


class SandboxImages(abc.ABC):
    """The steps before any sandbox, which belong to the backend: the base image, and a project's dependency layer
    over it. Docker pulls or finds the base image and builds the layer as an image of its own (sandboxes/images.py,
    sandboxes/layers.py); the fake has nothing to build and hands the base image back. Blocking: call them in a
    thread."""

    @abc.abstractmethod
    def base_image(self, settings: SandboxSettings) -> str:
        """The id of the base image `settings` name, ready on this host; SandboxUnavailable saying what to do."""

    @abc.abstractmethod
    def dependency_layer(
        self,
        base_image: str,
        requirements: ParsedRequirements,
        cache_dir: Path,
        index_url: str,
        *,
        extra_index_url: str = "",
        max_mb: int | None = None,
    ) -> DependencyLayer:
        """The image to run with `requirements` installed over `base_image`; LayerTooLarge past `max_mb`."""

    @abc.abstractmethod
    def python_version(self, image: str) -> str:
        """`3.11` or the like: the Python an image runs."""

    def module_dir(self, image: str, python: str, module: str) -> str | None:
        """Where `python` of `image` imports the package `module` from (its directory's parent, the
        site-packages), or None when it does not import: what a mount over one of its files needs to know."""
        return None

    def service_images(
        self, plan: PodPlan, policy: ServiceImagePolicy, built: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Every companion's local image (service → image) and those that cannot be had (service → why). `built`
        gives the images made for the sidecars built from the repository (their dependency layers)."""
        return {}, {
            sidecar.name: f"the {type(self).__name__} backend has no images for companion services"
            for sidecar in plan.sidecars
        }


class SandboxBackend(Protocol):
    """What `backend(name)` gives: a factory of sandboxes from a spec (a Sandbox subclass is one), which says
    whether they isolate and has their images ready."""

    @property
    def isolates(self) -> bool: ...

    def __call__(self, spec: SandboxSpec, /) -> Sandbox: ...

    def images(self) -> SandboxImages: ...


class UnsafeBackend(SandboxError):
    """Raised when a sandbox backend that isolates nothing (the fake) is asked to run candidate code for a real
    grading, or the fake is made without the scripted world it plays. A deployment's configuration error."""


_BACKENDS: dict[str, SandboxBackend] = {}
_BUILT_IN = {"docker": "sandboxes.docker_backend", "fake": "sandboxes.fake_backend"}
"""Backends of this package, registered when their module is imported (the first time their name is asked for)."""
_INSTALL_HINTS = {"docker": "install a Docker engine (Debian: apt-get install docker.io) and start dockerd"}
Backend = TypeVar("Backend", bound=SandboxBackend)


def register_backend(name: str) -> Callable[[Backend], Backend]:
    def register(factory: Backend) -> Backend:
        _BACKENDS[name] = factory
        return factory

    return register


def backend(name: str) -> SandboxBackend:
    """The backend registered as `name`; UnknownBackend saying which exist when there is none."""
    if name not in _BACKENDS and name in _BUILT_IN:
        importlib.import_module(_BUILT_IN[name])  # registers itself on import
    try:
        return _BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted({*_BACKENDS, *_BUILT_IN}))
        raise UnknownBackend(
            f"no sandbox backend {name!r}; known: {known}. {_INSTALL_HINTS.get(name, '')}".strip()
        ) from None


def isolating_backend(name: str) -> SandboxBackend:
    """The backend named `name` (VIVA_SANDBOX_BACKEND) for a real grading: UnknownBackend when there is none,
    UnsafeBackend when its sandboxes isolate nothing."""
    found = backend(name)
    if not found.isolates:
        raise UnsafeBackend(
            f"the sandbox backend {name!r} isolates nothing, so it never runs a grading's candidate code; "
            "set VIVA_SANDBOX_BACKEND to one that does (docker)"
        )
    return found
