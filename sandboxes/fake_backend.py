"""The fake backend: sandboxes played in memory from a test's scripted world, for orchestration tests without Docker.

It runs no candidate code. A test scripts a `FakeWorld`: what an exec of a command returns (`on_exec`), and what
"runs" when a command is spawned (`app`: an ASGI app served on the sandbox's stand-in loopback; `on_spawn`: any
asyncio function, which may print a traceback and exit as a crashing app does). Viva's own commands (mkdir, the
repository copy, the pid-file checks, `tail` of a log) and Viva's own programs (the bridge, the forwarder,
sandboxes/programs/, and the provider listener, sandboxes/gateway/trust.py) are played as the real sandbox runs them:
the programs' very functions run in-process, so the grader reaches a scripted app exactly as it reaches a real one,
through the host-side AppTunnel and the bridge over the Unix sockets in `socket_dir`; a scripted app's own HTTP
client (`FakeProcess.loopback_transport`) reaches the gateway through the forwarder, and nothing off the sandbox's
loopback. Every call is recorded (`FakeWorld.calls`, `.processes`) for assertions.

Why the grader refuses it (`isolates = False`) unless a test hands it over with its world: it isolates nothing.
What it "runs" is the test's own Python, in Viva's process, with Viva's privileges, network and files; a candidate's
command it cannot play is reported as not found, never executed. Registered as "fake" only so that the name says
what it is: `VIVA_SANDBOX_BACKEND=fake` is refused (sandboxes.base.isolating_backend), and `FakeSandbox(spec)`
without a world raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import shlex
import signal
import socket
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import mkdtemp
from typing import TYPE_CHECKING, ClassVar, Literal

import httpx

from sandboxes import programs
from sandboxes.base import (
    MAX_READ_BYTES,
    ExecResult,
    Sandbox,
    SandboxImages,
    SandboxSpec,
    UnsafeBackend,
    register_backend,
)
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.fake_files import FakeFiles
from sandboxes.layers import DependencyLayer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandboxes.deps import ParsedRequirements
    from sandboxes.pod import PodPlan, ServiceLimits
    from sandboxes.service_images import ServiceImagePolicy
    from sandboxes.settings import SandboxSettings

WORKDIR = "/work"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STOP_GRACE_S = 3.0
"""How long a TERM'd process has before it is KILLed, as in service.py's stop script."""

ExecHandler = Callable[["ExecCall"], "ExecResult | Awaitable[ExecResult]"]
ProcessMain = Callable[["FakeProcess"], Awaitable[int | None]]
ASGIApp = Callable[..., Awaitable[None]]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
ScriptHandler = Callable[["ExecCall", list[str]], "ExecResult | Awaitable[ExecResult]"]
"""One of Viva's own shell scripts, played: given the call and the script's positional arguments."""
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    """One thing the grader asked of a fake sandbox (or of its images), in the order asked."""

    kind: Literal[
        "start", "exec", "spawn", "write_file", "read_file", "cleanup", "layer", "companions", "companions ready"
    ]
    sandbox: str
    """The sandbox's id ("" for the images)."""
    cmd: list[str] = field(default_factory=list)
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    data: bytes = b""
    """What was written (write_file)."""


@dataclass(frozen=True)
class ExecCall:
    """What a scripted exec handler is given: the command, where and how it runs, and the sandbox's files."""

    cmd: list[str]
    line: str
    """The command line patterns match: the script of `sh -c SCRIPT`, else the command joined as a shell would."""
    cwd: str
    env: dict[str, str]
    """The whole environment the command sees (HOME, PATH, the spec's, the exec's)."""
    user: str | None
    input: str | None
    timeout: float
    files: FakeFiles
    sandbox: FakeSandbox


def command_line(cmd: list[str]) -> str:
    return cmd[2] if len(cmd) >= 3 and cmd[:2] == ["sh", "-c"] else shlex.join(cmd)


class FakeWorld:
    """What the fake sandboxes of one test meet: scripted commands and apps, and the record of what was asked."""

    def __init__(
        self, *, python: str = "3.11", install_ok: bool = True, install_log: str = "", unavailable: str | None = None
    ) -> None:
        self.unavailable = unavailable
        """Why no base image can be had on this "host" (SandboxUnavailable saying so), as with no engine; None when
        the base image is there."""
        self.python = python
        """What `python_version` answers for every image."""
        self.install_ok, self.install_log = install_ok, install_log
        """How every dependency layer's install went."""
        self.companion_start_s = 0.0
        """How long a pod's companions take to become ready (each service's image is `fake-svc/<name>`)."""
        self.calls: list[Call] = []
        self.sandboxes: list[FakeSandbox] = []
        self.processes: list[FakeProcess] = []
        self.unhandled: list[str] = []
        """Command lines nothing was scripted for (answered as `not found`)."""
        self._execs: list[tuple[re.Pattern[str], ExecResult | ExecHandler]] = []
        self._spawns: list[tuple[re.Pattern[str], ProcessMain]] = []
        self._lock = threading.Lock()

    def on_exec(self, pattern: str, result: ExecResult | ExecHandler) -> None:
        """An exec whose command line matches `pattern` (re.search; the first registered wins) returns `result`,
        or what `result(call)` returns (it may be async and take time: the exec's timeout applies). As declared:
        a duration past the timeout is a timeout, and output past the limits is truncated."""
        self._execs.append((re.compile(pattern), result))

    def on_spawn(self, pattern: str, main: ProcessMain) -> None:
        """A spawned command matching `pattern` runs `await main(process)` as its process: the process ends when
        it returns (its exit status; None is 0) or raises (a traceback in its log, status 1)."""
        self._spawns.append((re.compile(pattern), main))

    def app(self, pattern: str, app: ASGIApp, *, port: int | None = None, log: str = "") -> None:
        """A spawned command matching `pattern` prints `log` and serves the ASGI `app` on the sandbox's 127.0.0.1
        at `port` (default: the command's `--port`, else $PORT, else 8000) until it is stopped."""

        async def serve(process: FakeProcess) -> None:
            if log:
                process.print(log)
            await process.serve_asgi(app, port)

        self.on_spawn(pattern, serve)

    def backend(self) -> FakeBackend:
        """The backend to hand to the grader (`run_dynamic(..., sandboxes=world.backend())`)."""
        return FakeBackend(self)

    def spawned(self) -> list[str]:
        """The command lines of every process spawned, in order, Viva's own programs included."""
        return [process.line for process in self.processes]

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _exec_handler(self, line: str) -> ExecResult | ExecHandler | None:
        return next((result for pattern, result in self._execs if pattern.search(line)), None)

    def _spawn_main(self, line: str) -> ProcessMain | None:
        return next((main for pattern, main in self._spawns if pattern.search(line)), None)


class FakeBackend:
    """The fake backend bound to a world: what a test hands to the grader."""

    isolates = False

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def __call__(self, spec: SandboxSpec, /) -> FakeSandbox:
        return FakeSandbox(spec, self.world)

    def images(self) -> FakeImages:
        return FakeImages(self.world)


class FakeImages(SandboxImages):
    """Nothing to build: the base image is its name (unless the world has none), and a dependency layer is the base
    image with the requirements "installed" as the world says."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def base_image(self, settings: SandboxSettings) -> str:
        if self.world.unavailable is not None:
            raise SandboxUnavailable(self.world.unavailable)
        return settings.image

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
        self.world._record(Call("layer", "", cmd=list(requirements.requirements)))
        return DependencyLayer(
            image=base_image,
            cached=True,
            requirements=list(requirements.requirements),
            missing_wheels=[],
            install_ok=self.world.install_ok,
            log_tail=self.world.install_log,
            seconds=0.0,
        )

    def python_version(self, image: str) -> str:
        return self.world.python

    def service_images(
        self, plan: PodPlan, policy: ServiceImagePolicy, built: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        return {
            sidecar.name: (built or {}).get(sidecar.name, f"fake-svc/{sidecar.name}") for sidecar in plan.sidecars
        }, {}


@register_backend("fake")
class FakeSandbox(Sandbox):
    isolates: ClassVar[bool] = False

    def __init__(self, spec: SandboxSpec, world: FakeWorld | None = None) -> None:
        if world is None:
            raise UnsafeBackend(
                "the fake sandbox backend isolates nothing and runs nothing by itself: only a test makes one, with "
                "the world it plays (FakeWorld(...).backend())"
            )
        super().__init__(spec)
        self.world = world
        self.processes: list[FakeProcess] = []
        self._files: FakeFiles | None = None
        self._loopback: FakeLoopback | None = None
        self._name = f"fake-{len(world.sandboxes) + 1}"
        self._next_pid = 100
        world.sandboxes.append(self)

    @classmethod
    def images(cls) -> FakeImages:
        raise UnsafeBackend("the fake sandbox backend has no images of its own: use FakeWorld(...).backend()")

    @property
    def id(self) -> str:
        if self._files is None:
            raise SandboxError("the sandbox was not started")
        return self._name

    @property
    def files(self) -> FakeFiles:
        if self._files is None:
            raise SandboxError("the sandbox was not started")
        return self._files

    @property
    def loopback(self) -> FakeLoopback:
        if self._loopback is None:
            raise SandboxError("the sandbox was not started")
        return self._loopback

    async def start(self) -> None:
        spec = self.spec
        mounts: dict[str, Path] = {inside: host for host, inside in spec.mounts.items()} | dict(spec.file_mounts)
        if spec.repo_dir is not None:
            mounts["/repo"] = spec.repo_dir
        if spec.socket_dir is not None:
            mounts["/sock"] = spec.socket_dir
        for inside, host in spec.file_mounts.items():
            if not host.is_file():
                raise SandboxError(f"cannot mount {host} at {inside}: it is not a file on this host")
        self._files = FakeFiles(spec.limits, mounts)
        self._loopback = FakeLoopback()
        self.world._record(Call("start", self._name))

    async def cleanup(self) -> None:
        if self._files is None:
            return
        running = [process for process in self.processes if process.alive]
        for process in running:
            process.terminate()
        await asyncio.to_thread(lambda: [process.wait(STOP_GRACE_S) for process in running])
        for process in running:
            process.kill()
        if self._loopback is not None:
            self._loopback.close()
        self._files, self._loopback = None, None
        self.world._record(Call("cleanup", self._name))

    async def start_companions(
        self,
        plan: PodPlan,
        images: Mapping[str, str],
        *,
        limits: ServiceLimits,
        budget_s: float,
        time_scale: float = 1.0,
    ) -> list[str]:
        """The pod played: recorded when asked and when ready, `world.companion_start_s` apart (within the budget,
        as the Docker pod waits for readiness), in dependency order. Nothing runs: a scripted app that "talks" to a
        companion plays that too."""
        names = [sidecar.name for sidecar in plan.sidecars]
        self.world._record(Call("companions", self._name, cmd=names))
        await asyncio.sleep(min(self.world.companion_start_s, budget_s))
        self.world._record(Call("companions ready", self._name, cmd=names))
        return [f"{name}: {images[name]} ready (played)" for name in names]

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        """What a command sees, as in the Docker sandbox: HOME and PATH, the spec's, then the exec's own."""
        return {"HOME": WORKDIR, "PATH": "/usr/local/bin:/usr/bin:/bin", **self.spec.env, **(env or {})}

    # --- exec --------------------------------------------------------------------------------------------------

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
        files = self.files
        self.world._record(Call("exec", self._name, cmd=list(cmd), cwd=cwd, env=dict(env or {})))
        timeout = timeout or self.spec.limits.timeout_s
        call = ExecCall(
            list(cmd), command_line(cmd), cwd or WORKDIR, self.environment(env), user, input, timeout, files, self
        )
        if not files.is_dir(call.cwd):
            return ExecResult(126, "", f"OCI runtime exec failed: chdir to cwd ({call.cwd!r}): no such directory", 0.0)
        handler = self.world._exec_handler(call.line) or _viva_command(cmd)
        if handler is None:
            self.world.unhandled.append(call.line)
            return ExecResult(127, "", f"sh: 1: {_first_word(call.line)}: not found\n", 0.0)
        started = time.monotonic()
        try:
            outcome = handler(call) if callable(handler) else handler
            if inspect.isawaitable(outcome):
                outcome = await asyncio.wait_for(outcome, timeout)
        except TimeoutError:
            return ExecResult(137, "", "", time.monotonic() - started, timed_out=True)
        if not isinstance(outcome, ExecResult):
            raise TypeError(f"the handler for {call.line!r} returned {outcome!r}, not an ExecResult")
        return self._as_declared(outcome, timeout)

    def _as_declared(self, result: ExecResult, timeout: float) -> ExecResult:
        """The result with the Docker sandbox's rules applied: past the timeout it is a KILL at the timeout (137);
        each stream keeps at most `output_bytes`."""
        cap = self.spec.limits.output_bytes
        stdout, stderr = result.stdout.encode(), result.stderr.encode()
        timed_out = result.timed_out or result.duration_s >= timeout
        return ExecResult(
            returncode=137 if timed_out else result.returncode,
            stdout=stdout[:cap].decode(errors="replace"),
            stderr=stderr[:cap].decode(errors="replace"),
            duration_s=min(result.duration_s, timeout) if timed_out else result.duration_s,
            timed_out=timed_out,
            oom_killed=result.oom_killed and not timed_out,
            truncated=result.truncated or len(stdout) > cap or len(stderr) > cap,
        )

    # --- files -------------------------------------------------------------------------------------------------

    async def write_file(self, path: str, contents: bytes) -> None:
        files = self.files
        self.world._record(Call("write_file", self._name, path=path, data=bytes(contents)))
        try:
            files.write(path, bytes(contents))
        except OSError as error:
            raise SandboxError(f"could not write {path!r} in the sandbox: {error.strerror}") from None

    async def read_file(self, path: str, limit: int | None = None) -> bytes:
        files = self.files
        self.world._record(Call("read_file", self._name, path=path))
        try:
            return files.read(path)[: min(limit or MAX_READ_BYTES, MAX_READ_BYTES)]
        except OSError as error:
            raise SandboxError(f"could not read {path!r} in the sandbox: {error.strerror}") from None

    # --- spawn -------------------------------------------------------------------------------------------------

    async def spawn(self, cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        files = self.files
        self.world._record(Call("spawn", self._name, cmd=list(cmd), cwd=cwd, env=dict(env or {})))
        launch = _launch(cmd, cwd or WORKDIR)
        self._next_pid += 1
        process = FakeProcess(self, self._next_pid, launch, self.environment(env))
        self.processes.append(process)
        with self.world._lock:
            self.world.processes.append(process)
        problem = self._prepare(process, files)
        if problem is not None:
            process.never_ran(problem)
            return
        process.main = self._program(process, files) or self.world._spawn_main(launch.line) or _not_found
        if process.main is _not_found:
            self.world.unhandled.append(launch.line)
        process.start()

    def _prepare(self, process: FakeProcess, files: FakeFiles) -> int | None:
        """What the shell does before the program starts (write the pid file, cd, open the log); the exit status
        of the shell when one of these fails."""
        try:
            if process.launch.pid_file is not None:
                files.write(process.launch.pid_file, f"{process.pid}\n".encode())
            if not files.is_dir(process.cwd):
                return 2
            if process.launch.log is not None:
                if process.launch.log_dir_made:
                    files.mkdir(process.launch.log.rsplit("/", 1)[0] or "/")
                files.write(process.launch.log, b"")
        except OSError:
            return 2
        return None

    def _program(self, process: FakeProcess, files: FakeFiles) -> ProcessMain | None:
        """Viva's own program when the command runs one: `python3 SCRIPT ARGS`, SCRIPT holding its exact source, or
        `python3 -c SOURCE ARGS`."""
        words = process.launch.argv
        if len(words) < 2 or words[0] not in {"python3", "python"}:
            return None
        if words[1] == "-c":
            text, rest = (words[2] if len(words) > 2 else ""), words[3:]
        else:
            script = words[1] if words[1].startswith("/") else f"{process.cwd}/{words[1]}"
            try:
                text, rest = files.read(script).decode(), words[2:]
            except (OSError, UnicodeDecodeError):
                return None
        args = [self._host_path(arg) for arg in rest]
        if text == programs.source("bridge"):
            return lambda proc: _run_bridge(proc, args)
        if text == programs.source("forwarder"):
            return lambda proc: _run_forwarder(proc, args)
        return None

    def _host_path(self, arg: str) -> str:
        """A socket path inside (/sock/...) as the host's: the in-process programs open the host's sockets."""
        if self.spec.socket_dir is not None and arg.startswith("/sock/"):
            return str(self.spec.socket_dir / arg.removeprefix("/sock/"))
        return arg

    def process_of(self, pid_file: str) -> FakeProcess | None:
        try:
            pid = int(self.files.read(pid_file).decode().strip())
        except (OSError, ValueError):
            return None
        return next((process for process in self.processes if process.pid == pid), None)


# --- processes -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A spawned command as the shell would run it: the program's command line, where, and where its output goes."""

    line: str
    argv: list[str]
    cwd: str
    log: str | None = None
    pid_file: str | None = None
    log_dir_made: bool = False
    """The shell makes the log's directory first (`mkdir -p "${1%/*}"`)."""


_SESSION_START = re.compile(r'^echo \$\$ > "\$1"; cd "\$2" && exec sh -c "\$3" > "\$4" 2>&1$')
"""service.py's app start: `setsid sh -c SCRIPT sh PID_FILE WORKDIR COMMAND LOG`."""
_LOGGED_PROGRAM = re.compile(r'^(mkdir -p "\$\{1%/\*\}"; )?log="\$1"; shift; exec (\w+)( -c)? "\$@" > "\$log" 2>&1$')
"""service.py's bridge start, `sh -c SCRIPT sh LOG -c SOURCE ARGS...` (the log's directory made first), or the
same with a script file in place of `-c SOURCE`."""


def _launch(cmd: list[str], cwd: str) -> Launch:
    words = cmd[1:] if cmd[:1] == ["setsid"] else list(cmd)
    if len(words) >= 8 and words[:2] == ["sh", "-c"] and _SESSION_START.match(words[2]):
        pid_file, workdir, line, log = words[4:8]
        return Launch(line, _split(line), workdir, log=log, pid_file=pid_file)
    program = _LOGGED_PROGRAM.match(words[2]) if len(words) >= 5 and words[:2] == ["sh", "-c"] else None
    if program is not None:
        argv = [program.group(2), *(["-c"] if program.group(3) else []), *words[5:]]
        return Launch(shlex.join(argv), argv, cwd, log=words[4], log_dir_made=program.group(1) is not None)
    line = command_line(words)
    return Launch(line, _split(line), cwd)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


class FakeProcess:
    """A spawned process as the fake plays it: its main runs on an event loop of its own in a thread of its own (as
    a process has its own), its output goes to its log in the sandbox's files, its ports are on the sandbox's
    stand-in loopback. TERM and KILL cancel it."""

    def __init__(self, sandbox: FakeSandbox, pid: int, launch: Launch, env: dict[str, str]) -> None:
        self.sandbox, self.pid, self.launch, self.env = sandbox, pid, launch, env
        self.main: ProcessMain = _not_found
        self.returncode: int | None = None
        """None while it runs; its exit status after (a negative signal number when killed)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[int] | None = None
        self._signal = 0
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{sandbox._name}-pid-{pid}")

    @property
    def line(self) -> str:
        return self.launch.line

    @property
    def cwd(self) -> str:
        return self.launch.cwd

    @property
    def alive(self) -> bool:
        return self.returncode is None

    @property
    def files(self) -> FakeFiles:
        return self.sandbox.files

    @property
    def log(self) -> str:
        """What it printed so far (empty when its output goes nowhere)."""
        if self.launch.log is None:
            return ""
        with contextlib.suppress(OSError, SandboxError):
            return self.files.read(self.launch.log).decode(errors="replace")
        return ""

    @property
    def port(self) -> int:
        """The port its command names (`--port N`, `--bind HOST:N`), else $PORT, else 8000."""
        named = re.search(r"(?:--port|-p)[ =](\d{2,5})\b|(?:--bind|-b)[ =]\S*:(\d{2,5})\b", self.line)
        if named:
            return int(named.group(1) or named.group(2))
        return int(self.env["PORT"]) if self.env.get("PORT", "").isdigit() else 8000

    def print(self, *parts: object, end: str = "\n") -> None:
        """Write to its log, as print would to the redirected output."""
        if self.launch.log is not None:
            with contextlib.suppress(OSError, SandboxError):
                self.files.write(self.launch.log, (" ".join(map(str, parts)) + end).encode(), append=True)

    @property
    def stdout(self) -> _Output:
        return _Output(self)

    async def listen(self, handle: StreamHandler, port: int) -> asyncio.AbstractServer:
        """Listen on the sandbox's 127.0.0.1:`port` (OSError when something already does)."""
        return await asyncio.start_unix_server(handle, sock=self.sandbox.loopback.bind(port, self))

    async def connect(self, port: int) -> Streams:
        """Connect to the sandbox's 127.0.0.1:`port` (ConnectionRefusedError when nothing listens)."""
        return await asyncio.open_unix_connection(self.sandbox.loopback.address(port))

    def loopback_transport(self) -> httpx.AsyncBaseTransport:
        """The transport for the process's own HTTP clients, as a scripted app makes them from its environment
        (`httpx.AsyncClient(transport=process.loopback_transport())` then `OPENAI_BASE_URL`): 127.0.0.1 and
        localhost are the sandbox's stand-in loopback (the gateway's forwarder at 18080); any other host is refused,
        as in a sandbox without a network."""
        return _LoopbackTransport(self.sandbox.loopback)

    def http(self, port: int, timeout: float = 30.0) -> httpx.AsyncClient:
        """An HTTP client for http://127.0.0.1:`port` inside the sandbox (the gateway's forwarder is at 18080)."""
        transport = httpx.AsyncHTTPTransport(uds=self.sandbox.loopback.path(port))
        return httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}", timeout=timeout)

    async def serve_asgi(self, app: ASGIApp, port: int | None = None) -> None:
        """Serve `app` (uvicorn) on the sandbox's 127.0.0.1:`port` (default `self.port`) until stopped."""
        import uvicorn  # noqa: PLC0415 - loaded when a scripted app is served, as the gateway does

        listener = self.sandbox.loopback.bind(self.port if port is None else port, self)
        config = uvicorn.Config(
            app, lifespan="off", log_config=None, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve(sockets=[listener]))
        try:
            await asyncio.shield(serving)
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving

    def start(self) -> None:
        self._thread.start()

    def never_ran(self, status: int) -> None:
        """The shell failed before the program (a pid file or log it could not write, a missing directory)."""
        self._end(status)

    def terminate(self, number: int = signal.SIGTERM) -> None:
        with self._lock:
            if self.returncode is not None:
                return
            self._signal = number
            if self._loop is not None and self._task is not None:
                with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: it has just ended
                    self._loop.call_soon_threadsafe(self._task.cancel)

    def kill(self) -> None:
        """KILL: it is gone at once (whatever its thread still does is no longer the sandbox's)."""
        self.terminate(signal.SIGKILL)
        self._end(-signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        status = 1
        try:
            asyncio.set_event_loop(loop)
            with self._lock:
                self._loop, self._task = loop, loop.create_task(self._body())
                if self._signal:
                    self._task.cancel()
            status = loop.run_until_complete(self._task)
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except asyncio.CancelledError:
            status = -(self._signal or signal.SIGTERM)
        finally:
            with self._lock:
                loop.close()
            self._end(status)

    async def _body(self) -> int:
        try:
            status = await self.main(self)
        except asyncio.CancelledError:
            return -(self._signal or signal.SIGTERM)
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # the process crashed: Python prints the traceback and exits 1
            self.print(traceback.format_exc(), end="")
            return 1
        return 0 if status is None else status

    def _end(self, status: int) -> None:
        with self._lock:
            if self.returncode is None:
                self.returncode = status
        loopback = self.sandbox._loopback
        if loopback is not None:
            loopback.release(self)
        self._ended.set()


class _Output:
    """A process's standard output, for `print(..., file=...)`: into its log."""

    def __init__(self, process: FakeProcess) -> None:
        self.process = process

    def write(self, text: str, /) -> int:
        self.process.print(text, end="")
        return len(text)

    def flush(self) -> None:
        pass


class _LoopbackTransport(httpx.AsyncBaseTransport):
    """HTTP to the stand-in loopback by the URL's port; every other address fails as it would with no network."""

    def __init__(self, loopback: FakeLoopback) -> None:
        self.loopback = loopback
        self._ports: dict[int, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.host not in LOOPBACK_HOSTS:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            path = self.loopback.address(port)
        except ConnectionRefusedError:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request) from None
        if port not in self._ports:
            self._ports[port] = httpx.AsyncHTTPTransport(uds=path)
        return await self._ports[port].handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._ports.values():
            await transport.aclose()


class FakeLoopback:
    """A fake sandbox's 127.0.0.1: each port listened on is a Unix socket in a private directory of the host, so
    nothing of a scripted app ever listens on the host's network."""

    def __init__(self) -> None:
        self.directory = Path(mkdtemp(prefix="viva-fake-"))
        self._owners: dict[int, FakeProcess] = {}
        self._lock = threading.Lock()

    def path(self, port: int) -> str:
        return str(self.directory / f"{port}.sock")

    def bind(self, port: int, owner: FakeProcess) -> socket.socket:
        """A listening socket for `port`, owned by `owner` until it ends; OSError when the port is taken."""
        with self._lock:
            holder = self._owners.get(port)
            if holder is not None and holder.alive:
                raise OSError(98, f"[Errno 98] error while attempting to bind on address ('127.0.0.1', {port})")
            Path(self.path(port)).unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path(port))
            listener.listen(128)
            self._owners[port] = owner
            return listener

    def address(self, port: int) -> str:
        with self._lock:
            holder = self._owners.get(port)
        if holder is None or not holder.alive:
            raise ConnectionRefusedError(111, "Connection refused")
        return self.path(port)

    def release(self, owner: FakeProcess) -> None:
        with self._lock:
            for port in [port for port, holder in self._owners.items() if holder is owner]:
                del self._owners[port]
                Path(self.path(port)).unlink(missing_ok=True)

    def close(self) -> None:
        import shutil  # noqa: PLC0415 - only at cleanup

        shutil.rmtree(self.directory, ignore_errors=True)


async def _run_bridge(process: FakeProcess, args: list[str]) -> None:
    from sandboxes.programs import bridge  # noqa: PLC0415 - Viva's program, imported to run it in-process

    await bridge.run(args, listen=process.listen, connect=process.connect, out=process.stdout)


async def _run_forwarder(process: FakeProcess, args: list[str]) -> None:
    from sandboxes.programs import forwarder  # noqa: PLC0415 - as above

    await forwarder.run(args, listen=process.listen, out=process.stdout)


async def _not_found(process: FakeProcess) -> int:
    process.print(f"sh: 1: {_first_word(process.line)}: not found")
    return 127


def _first_word(line: str) -> str:
    words = _split(line)
    return words[0] if words else ""


# --- Viva's own commands ---------------------------------------------------------------------------------------
# The shell lines sandboxes/service.py, grader/dynamic/run.py and grader/dynamic/evals.py run, played on the fake's
# files and processes. A change in their wording needs a row here; tests/unit/test_dynamic_orchestration.py fails
# without one (the app would never be found to start).

_SHELL_METACHARACTERS = re.compile(r"[;|<>$`&()*?\\\"']")
COREUTILS = {"mkdir", "rm", "cp", "ln", "true"}


def _viva_command(cmd: list[str]) -> ExecHandler | None:
    if cmd[:1] in (["mkdir"], ["rm"]):
        return lambda call: _coreutils([cmd], call.files)
    if len(cmd) < 3 or cmd[:2] != ["sh", "-c"]:
        return None
    script, args = cmd[2], cmd[4:]
    for pattern, handler in _SCRIPTS:
        if pattern.search(script):
            return _with_args(handler, args)
    chain = [shlex.split(part) for part in script.split(" && ")]
    if all(words and words[0] in COREUTILS and not _SHELL_METACHARACTERS.search(" ".join(words)) for words in chain):
        return lambda call: _coreutils(chain, call.files)
    return None


def _with_args(handler: ScriptHandler, args: list[str]) -> ExecHandler:
    return lambda call: handler(call, args)


def _coreutils(chain: list[list[str]], files: FakeFiles) -> ExecResult:
    """`a && b && c` of mkdir -p, rm -f/-rf, cp -a, ln -sf, true: the first failure ends it, as in sh."""
    for words in chain:
        program, flags = words[0], {word for word in words[1:] if word.startswith("-")}
        operands = [word for word in words[1:] if not word.startswith("-")]
        try:
            if program == "mkdir":
                for path in operands:
                    files.mkdir(path)
            elif program == "rm":
                for path in operands:
                    files.remove(path, recursive=bool(flags & {"-r", "-rf", "-fr", "-R"}))
            elif program == "cp":
                *sources, destination = operands
                for source in sources:
                    files.copy(source, destination)
            elif program == "ln":
                files.symlink(operands[0], operands[1])
        except OSError as error:
            return ExecResult(1, "", f"{program}: {error.filename}: {error.strerror}\n", 0.0)
    return ExecResult(0, "", "", 0.0)


def _alive(call: ExecCall, args: list[str]) -> ExecResult:
    process = call.sandbox.process_of(args[0])
    return ExecResult(0 if process is not None and process.alive else 1, "", "", 0.0)


async def _stop(call: ExecCall, args: list[str]) -> ExecResult:
    process = call.sandbox.process_of(args[0])
    if process is not None and process.alive:
        process.terminate()
        if not await asyncio.to_thread(process.wait, STOP_GRACE_S):
            process.kill()
    return ExecResult(0, "", "", 0.0)


def _tail(call: ExecCall, args: list[str]) -> ExecResult:
    try:
        data = call.files.read(args[1])
    except OSError:
        return ExecResult(1, "", "", 0.0)
    return ExecResult(0, data[-int(args[0]) :].decode(errors="replace"), "", 0.0)


_SCRIPTS: list[tuple[re.Pattern[str], ScriptHandler]] = [
    (re.compile(r'^kill -0 "\$\(cat "\$1"\)"'), _alive),
    (re.compile(r'kill -TERM "-\$pid"'), _stop),
    (re.compile(r'^tail -c "\$1" "\$2"'), _tail),
]
