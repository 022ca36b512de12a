"""Serving the gateway on a Unix socket (for a sandbox) and the forwarder that runs inside the container."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandboxes import programs
from sandboxes.errors import SandboxError
from sandboxes.gateway.app import Gateway, GatewayConfig

SOCKET_NAME = "gateway.sock"
FORWARD_PORT = 18080
UNIX_PATH_MAX = 107
"""The longest path a Unix socket can be bound to (sun_path holds 108 bytes with the terminating NUL)."""


def socket_path_fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= UNIX_PATH_MAX


def check_socket_path(path: Path) -> None:
    """Refuse, with the reason, a socket path the kernel would refuse (the bind fails deep in a server thread)."""
    if not socket_path_fits(path):
        length = len(os.fsencode(path))
        raise SandboxError(f"socket path too long for a Unix socket ({length} > {UNIX_PATH_MAX} bytes): {path}")


FORWARDER = programs.source("forwarder")
"""Runs inside the network-less container: 127.0.0.1:18080 → /sock/gateway.sock (sandboxes/programs/forwarder.py)."""


@contextmanager
def serve_gateway(socket_dir: Path, config: GatewayConfig | None = None) -> Iterator[Gateway]:
    """Serve a gateway on socket_dir/gateway.sock for the duration of the block (a background thread)."""
    path = socket_dir / SOCKET_NAME
    check_socket_path(path)
    socket_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(socket_dir, 0o755)  # noqa: S103 - the sandbox user must reach the socket inside
    import uvicorn  # noqa: PLC0415 - loaded when a gateway is served, not when a grading merely imports this module

    gateway = Gateway(config)
    server = uvicorn.Server(uvicorn.Config(gateway, uds=str(path), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and path.exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.chmod(path, 0o666)  # noqa: S103 - the sandbox user (uid 1000) connects through it
    try:
        yield gateway
    finally:
        server.should_exit = True
        thread.join(timeout=5)
