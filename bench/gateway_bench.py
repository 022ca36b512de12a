"""Gateway overhead per call vs a bare HTTP echo on the same kind of Unix socket, same client, same run
(issue 4's third benchmark). The gateway's modelled latency is off (time scale 0), so what is left is its own
work: parsing, the offline answer, recording and pricing."""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from sandboxes.gateway.app import GatewayConfig, read_body
from sandboxes.gateway.serve import SOCKET_NAME, serve_gateway

BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Answer from the context. Cite chunk ids."},
        {
            "role": "user",
            "content": "Context:\n[a-0] A deploy takes about eight minutes.\n[b-1] Pages are acknowledged "
            "within five minutes.\n\nQuestion: How long does a deploy take?",
        },
    ],
}


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _time(socket: Path, calls: int) -> list[float]:
    timings = []
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://local") as client:
        for _ in range(calls):
            started = time.perf_counter()
            response = client.post("/v1/chat/completions", content=json.dumps(BODY))
            response.raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def run(mode: str) -> bool:
    calls = 50 if mode == "smoke" else 1000
    with tempfile.TemporaryDirectory(prefix="viva-gw-bench-") as scratch:
        echo_socket = Path(scratch) / "echo.sock"
        server = uvicorn.Server(uvicorn.Config(_echo, uds=str(echo_socket), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        bare = _time(echo_socket, calls)
        server.should_exit = True
        thread.join(timeout=5)
        with serve_gateway(Path(scratch) / "gw", GatewayConfig(time_scale=0)):
            gateway = _time(Path(scratch) / "gw" / SOCKET_NAME, calls)
    b50, g50 = statistics.median(bare), statistics.median(gateway)
    b95, g95 = (statistics.quantiles(values, n=100)[94] for values in (bare, gateway))
    print(
        f"{calls} sequential calls each: bare echo p50 {b50:.2f} ms p95 {b95:.2f} ms; gateway p50 {g50:.2f} ms "
        f"p95 {g95:.2f} ms; overhead p50 {g50 - b50:.2f} ms ({g50 / b50:.2f}x)"
    )
    return True
