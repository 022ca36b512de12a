"""A service running inside a sandbox, reachable from the host.

The container has no network, and the socket directory it shares with the host is mounted read-only, so the
container can create nothing there: no symlink for the host to follow, no file to fill the host's disk. Every
connection is therefore opened *from* the container to a socket the host created:
- the gateway bridge listens on 127.0.0.1:18080 inside and forwards each connection to the host's gateway socket;
- the app tunnel keeps a few idle connections open to the host's tunnel socket; when the host writes a request
  down one, the bridge connects it to the app's port and pipes both ways, then opens a fresh idle connection.
On the host, `AppTunnel` pairs each HTTP client connection (on a private socket the sandbox cannot see) with an
idle tunnel connection, so ordinary HTTP clients reach the app. Both bridges are standard-library Python run by the
image's own python3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from sandboxes import programs
from sandboxes.base import Sandbox
from sandboxes.errors import SandboxError
from sandboxes.gateway.clients import provider_env
from sandboxes.gateway.serve import FORWARD_PORT, SOCKET_NAME, check_socket_path

STATE_DIR = "/work/.viva"
TUNNEL_SOCKET = "app-tunnel.sock"
IDLE_TUNNELS = 12
"""Idle connections the sandbox keeps open to the host: the most requests in flight at once before the host waits."""
TUNNEL_WAIT_S = 10.0
READY_POLL_S = 0.05
ALIVE_CHECK_S = 1.0
"""How often a starting app's process is checked (a `docker exec`, which costs CPU in the engine: three instances
on two cores feel every one); a crash is still seen within a second."""

BRIDGE = programs.source("bridge")
"""The bridges (sandboxes/programs/bridge.py), run by the sandbox's python3 as `python3 -c BRIDGE …`."""


class StartFailure(Exception):
    """The service did not become ready; `log_tail` says what it printed."""

    def __init__(self, reason: str, log_tail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class AppTunnel:
    """Host side of the tunnel: listens on `shared/app-tunnel.sock` for the sandbox's idle connections and on
    `private/app.sock` for the host's HTTP clients, and pairs them. Runs its own event loop in a thread."""

    def __init__(self, shared_dir: Path, private_dir: Path) -> None:
        self.shared = shared_dir / TUNNEL_SOCKET
        self.private = private_dir / "app.sock"
        check_socket_path(self.shared)
        check_socket_path(self.private)
        private_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(private_dir, 0o700)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise SandboxError(f"the app tunnel did not start: {self._failure or 'no answer within 10 s'}")

    def close(self) -> None:
        """Close both listeners, cancel the connections still open, and stop the loop."""
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

        async def from_sandbox(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await idle.put((reader, writer))

        async def from_host(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.wait_for(idle.get(), TUNNEL_WAIT_S)
            except TimeoutError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)

        async def setup() -> None:
            for path in (self.shared, self.private):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._servers.append(await asyncio.start_unix_server(from_sandbox, str(self.shared)))
            os.chmod(self.shared, 0o666)  # noqa: S103 - the sandbox user (uid 1000) connects to it
            self._servers.append(await asyncio.start_unix_server(from_host, str(self.private)))

        try:
            self._loop.run_until_complete(setup())
        except Exception as error:  # reported by start(), which is waiting for this thread
            for server in self._servers:  # a listener bound before the failure is released
                server.close()
            self._loop.close()
            self._failure = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def app_tunnel(shared_dir: Path, private_dir: Path) -> Iterator[AppTunnel]:
    tunnel = AppTunnel(shared_dir, private_dir)
    tunnel.start()
    try:
        yield tunnel
    finally:
        tunnel.close()


class SandboxedService:
    """One app process in a sandbox, started, probed over HTTP from the host, restarted and stopped."""

    def __init__(
        self,
        sandbox: Sandbox,
        tunnel: AppTunnel,
        port: int,
        *,
        workdir: str = "/work/app",
        forwards: Sequence[tuple[int, str]] = (),
    ) -> None:
        """`forwards`: more (port, socket inside) pairs the bridge process carries besides the gateway's, such as
        the provider proxy's (sandboxes/gateway/trust.py)."""
        self.sandbox = sandbox
        self.tunnel = tunnel
        self.port = port
        self.workdir = workdir
        self.forwards = list(forwards)
        self.starts = 0
        self._bridged = False

    @property
    def pid_file(self) -> str:
        return f"{STATE_DIR}/app.pid"

    @property
    def log_file(self) -> str:
        return f"{STATE_DIR}/app-{self.starts}.log"

    async def bridge(self) -> None:
        """Start the bridges once per sandbox: the gateway's forwarder, the other forwards and the app tunnel, in
        one process started by one engine call (the program's text goes on the command line, so nothing is
        written first)."""
        if self._bridged:
            return
        commands = [["forward", str(FORWARD_PORT), f"/sock/{SOCKET_NAME}"]]
        commands += [["forward", str(port), sock] for port, sock in self.forwards]
        commands.append(["tunnel", f"/sock/{TUNNEL_SOCKET}", str(self.port), str(IDLE_TUNNELS)])
        args = [word for command in commands for word in ("+", *command)][1:]
        await self.sandbox.spawn(
            [
                "sh",
                "-c",
                'mkdir -p "${1%/*}"; log="$1"; shift; exec python3 -c "$@" > "$log" 2>&1',
                "sh",
                f"{STATE_DIR}/bridge.log",
                BRIDGE,
                *args,
            ]
        )
        self._bridged = True

    async def start(self, command: str, env: dict[str, str]) -> None:
        """Spawn `command` (a shell line from the manifest or detection) in its own session, output to a log."""
        await self.bridge()
        self.starts += 1
        await self.sandbox.spawn(
            [
                "setsid",
                "sh",
                "-c",
                'echo $$ > "$1"; cd "$2" && exec sh -c "$3" > "$4" 2>&1',
                "sh",
                self.pid_file,
                self.workdir,
                command,
                self.log_file,
            ],
            env=env,
        )

    async def wait_ready(self, health_path: str, timeout_s: float, *, any_status: bool = False) -> float:
        """Seconds until `health_path` answered 200 (any HTTP answer with `any_status`: the app is listening).
        Raises StartFailure when the process exits or time runs out. Polls often (a refused connection through the
        tunnel costs next to nothing) and asks whether the process still lives less often (a `docker exec`)."""
        started = time.monotonic()
        checked = started
        async with self.client(timeout=2.0) as client:
            while True:
                try:
                    response = await client.get(health_path)
                    if response.status_code == 200 or any_status:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                now = time.monotonic()
                if now - checked >= ALIVE_CHECK_S:
                    checked = now
                    if not await self.alive():
                        raise StartFailure("the process exited before it answered", await self.tail())
                if now - started > timeout_s:
                    raise StartFailure(f"no 200 from {health_path} within {timeout_s:g} s", await self.tail())
                await asyncio.sleep(READY_POLL_S)

    async def alive(self) -> bool:
        command = ["sh", "-c", 'kill -0 "$(cat "$1")" 2>/dev/null', "sh", self.pid_file]
        return (await self.sandbox.exec(command, timeout=10)).returncode == 0

    async def stop(self) -> None:
        """TERM the process group, then KILL what is left after three seconds."""
        script = (
            'pid="$(cat "$1" 2>/dev/null)" || exit 0; kill -TERM "-$pid" 2>/dev/null; '
            'for i in 1 2 3 4 5 6; do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done; '
            'kill -KILL "-$pid" 2>/dev/null; exit 0'
        )
        await self.sandbox.exec(["sh", "-c", script, "sh", self.pid_file], timeout=15)

    async def tail(self, path: str | None = None, limit: int = 4000) -> str:
        command = ["sh", "-c", 'tail -c "$1" "$2" 2>/dev/null', "sh", str(limit), path or self.log_file]
        return (await self.sandbox.exec(command, timeout=10)).stdout

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        """An HTTP client whose requests reach the app inside the sandbox (Host: 127.0.0.1:<port>)."""
        transport = httpx.AsyncHTTPTransport(uds=str(self.tunnel.private))
        return httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{self.port}", timeout=timeout)


def gateway_env() -> dict[str, str]:
    """What the app is told about its LLM providers: every common client's variables (sandboxes/gateway/clients.py)
    pointed at the gateway's forwarder inside the sandbox, with keys that open nothing else."""
    return provider_env(f"http://127.0.0.1:{FORWARD_PORT}")
