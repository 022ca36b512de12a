"""A service running inside a sandbox, reachable from the host through a Unix socket.

The container has no network, so two small bridges (standard-library Python, run by the image's own python3)
connect it to the host through the shared socket directory: one listens on 127.0.0.1:18080 inside and forwards to
the gateway's socket (the app's "LLM provider"); the other listens on /sock/app.sock and forwards to the app's
port, so the grader can send it HTTP requests from the host. Nothing else crosses.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx

from sandboxes.base import Sandbox
from sandboxes.gateway.serve import FORWARD_PORT, SOCKET_NAME

STATE_DIR = "/work/.viva"
APP_SOCKET = "app.sock"

BRIDGE = """
import asyncio, os, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def main():
    mode, where, to = sys.argv[1], sys.argv[2], sys.argv[3]
    async def handle(reader, writer):
        try:
            if mode == "tcp":
                up_reader, up_writer = await asyncio.open_unix_connection(to)
            else:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(to))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
    if mode == "tcp":
        server = await asyncio.start_server(handle, "127.0.0.1", int(where))
    else:
        try:
            os.unlink(where)
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(handle, where)
        os.chmod(where, 0o666)
    print("bridging", mode, where, to, flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


class StartFailure(Exception):
    """The service did not become ready; `log_tail` says what it printed."""

    def __init__(self, reason: str, log_tail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class SandboxedService:
    """One app process in a sandbox, started, probed over HTTP from the host, restarted and stopped."""

    def __init__(self, sandbox: Sandbox, socket_dir: Path, port: int, *, workdir: str = "/work/app") -> None:
        self.sandbox = sandbox
        self.socket_dir = socket_dir
        self.port = port
        self.workdir = workdir
        self.starts = 0
        self._bridged = False

    @property
    def pid_file(self) -> str:
        return f"{STATE_DIR}/app.pid"

    @property
    def log_file(self) -> str:
        return f"{STATE_DIR}/app-{self.starts}.log"

    async def bridge(self) -> None:
        """Start both bridges once per sandbox and wait until they listen."""
        if self._bridged:
            return
        os.chmod(self.socket_dir, 0o1777)  # noqa: S103 - the sandbox user creates app.sock here; sticky keeps ours
        await self.sandbox.exec(["mkdir", "-p", STATE_DIR])
        await self.sandbox.write_file(f"{STATE_DIR}/bridge.py", BRIDGE.encode())
        for mode, where, to in (
            ("tcp", str(FORWARD_PORT), f"/sock/{SOCKET_NAME}"),
            ("unix", f"/sock/{APP_SOCKET}", str(self.port)),
        ):
            log = f"{STATE_DIR}/bridge-{mode}.log"
            await self.sandbox.spawn(
                [
                    "sh",
                    "-c",
                    'exec python3 "$1" "$2" "$3" "$4" > "$5" 2>&1',
                    "sh",
                    f"{STATE_DIR}/bridge.py",
                    mode,
                    where,
                    to,
                    log,
                ]
            )
        deadline = time.monotonic() + 15
        while not (self.socket_dir / APP_SOCKET).exists():
            if time.monotonic() > deadline:
                raise StartFailure("the sandbox bridges did not start", await self.tail(f"{STATE_DIR}/bridge-unix.log"))
            await asyncio.sleep(0.05)
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
        Raises StartFailure when the process exits or time runs out."""
        started = time.monotonic()
        async with self.client(timeout=2.0) as client:
            while True:
                try:
                    response = await client.get(health_path)
                    if response.status_code == 200 or any_status:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if not await self.alive():
                    raise StartFailure("the process exited before it answered", await self.tail())
                if time.monotonic() - started > timeout_s:
                    raise StartFailure(f"no 200 from {health_path} within {timeout_s:g} s", await self.tail())
                await asyncio.sleep(0.2)

    async def alive(self) -> bool:
        # A zombie still answers kill -0; the init process (docker --init) reaps, so this is the live process.
        result = await self.sandbox.exec(
            ["sh", "-c", 'kill -0 "$(cat "$1")" 2>/dev/null', "sh", self.pid_file], timeout=10
        )
        return result.returncode == 0

    async def stop(self) -> None:
        """TERM the process group, then KILL what is left after three seconds."""
        script = (
            'pid="$(cat "$1" 2>/dev/null)" || exit 0; kill -TERM "-$pid" 2>/dev/null; '
            'for i in 1 2 3 4 5 6; do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done; '
            'kill -KILL "-$pid" 2>/dev/null; exit 0'
        )
        await self.sandbox.exec(["sh", "-c", script, "sh", self.pid_file], timeout=15)

    async def tail(self, path: str | None = None, limit: int = 4000) -> str:
        result = await self.sandbox.exec(
            ["sh", "-c", 'tail -c "$1" "$2" 2>/dev/null', "sh", str(limit), path or self.log_file], timeout=10
        )
        return result.stdout

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        """An HTTP client whose requests reach the app inside the sandbox (Host: 127.0.0.1:<port>)."""
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_dir / APP_SOCKET))
        return httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{self.port}", timeout=timeout)


def gateway_env() -> dict[str, str]:
    """What the app is told about its LLM providers: the gateway, and keys that open nothing else."""
    base = f"http://127.0.0.1:{FORWARD_PORT}"
    return {
        "OPENAI_BASE_URL": f"{base}/v1",
        "OPENAI_API_BASE": f"{base}/v1",
        "OPENAI_API_KEY": "sk-viva-sandbox",
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": "sk-ant-viva-sandbox",
    }
