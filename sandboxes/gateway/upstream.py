"""Proxy mode: a call forwarded to a real provider with the host's key (it never enters the sandbox), and recorded
with the usage the provider reported. (Not the provider proxy in proxy.py, which brings hard-coded provider hosts
to the gateway: this is the gateway passing a call on.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from llm.pricing import price_usd
from sandboxes.gateway.ledger import Exchange, GatewayCall, Protocol
from sandboxes.gateway.replies import send_raw

Reader = Callable[[dict[str, Any]], tuple[str, int, int]]
"""(answer text, input tokens, output tokens) from the provider's JSON reply."""


async def forward(  # noqa: PLR0917 - one call shape for both providers
    exchange: Exchange,
    protocol: Protocol,
    wire_api: str,
    endpoint: str,
    url: str,
    headers: dict[str, str],
    system: str,
    messages: list[str],
    read: Reader,
) -> None:
    """Forward the request and record what came back. Streaming requests are answered whole."""
    body = exchange.body
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=exchange.config.timeout_s) as client:
        upstream = await client.post(url, json={**body, "stream": False}, headers=headers)
    json_reply = upstream.headers.get("content-type", "").startswith("application/json")
    text, tokens_in, tokens_out = read(upstream.json() if json_reply else {})
    model = str(body.get("model", ""))
    call = GatewayCall(
        protocol,
        endpoint,
        model,
        system,
        messages,
        tokens_in,
        tokens_out,
        time.perf_counter() - started,
        price_usd(protocol, model, tokens_in, tokens_out),
        "" if upstream.status_code == 200 else f"upstream {upstream.status_code}",
        text,
    )
    call.wire_api = wire_api
    exchange.remember(call)
    passed = {key: value for key, value in upstream.headers.items() if key.lower() == "retry-after"}
    await send_raw(exchange.send, upstream.status_code, upstream.content, "application/json", passed)
