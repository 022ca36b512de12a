"""Serving a gateway on a free loopback TCP port for a test, so real clients reach it by URL, as a sandboxed app
reaches it through the forwarder (the Unix-socket path is tests/integration/test_gateway.py's)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from sandboxes.gateway.app import Gateway, GatewayConfig


@contextmanager
def gateway_on_loopback(config: GatewayConfig | None = None) -> Iterator[tuple[str, Gateway]]:
    """(the gateway's base URL — scheme, host and port —, the gateway) for the duration of the block."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = Gateway(config or GatewayConfig(time_scale=0))
    server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", gateway
    finally:
        server.should_exit = True
        thread.join(timeout=5)
