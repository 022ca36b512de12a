"""The gateway's HTTP surface, as a plain ASGI app: a router over one module per wire API — OpenAI chat and legacy
completions (`openai_chat`), the Responses API (`openai_responses`), embeddings (`embeddings`), Azure OpenAI's
layout (`azure_openai`), Anthropic messages (`anthropic_messages`) and Ollama (`ollama`). Every call lands in one
ledger (`ledger`), priced and tagged with its wire API and client; faults are chosen and played by `faults`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from sandboxes.gateway import anthropic_messages, azure_openai, embeddings, ollama, openai_chat, openai_responses
from sandboxes.gateway.clients import identify_client
from sandboxes.gateway.config import Fault, GatewayConfig
from sandboxes.gateway.ledger import GENERATION_ENDPOINTS, Exchange, GatewayCall, Send
from sandboxes.gateway.replies import read_body, send_json, send_raw

__all__ = ["GENERATION_ENDPOINTS", "Fault", "Gateway", "GatewayCall", "GatewayConfig", "read_body"]

_BY_SUFFIX = (
    ("/chat/completions", openai_chat.chat),
    ("/completions", openai_chat.completions),
    ("/responses", openai_responses.responses),
    ("/embeddings", embeddings.embeddings),
    ("/messages", anthropic_messages.messages),
)
"""OpenAI-style paths under any prefix (`/v1/...`, a proxy's `/api/v1/...`), first match wins."""


class Gateway:
    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()
        self.calls: list[GatewayCall] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        client, user_agent = identify_client(headers)
        query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))
        exchange = Exchange(scope["path"], query, headers, receive, send, self.config, self.calls, client, user_agent)
        if scope["method"] == "GET" and await _listing(exchange):
            return
        try:
            await _route(exchange)
        finally:
            exchange.finish()


async def _listing(exchange: Exchange) -> bool:
    """GET requests that ask what is there, not for a model: answered without reading a body or recording."""
    path = exchange.path.rstrip("/")
    if path.endswith("/models"):
        await send_json(exchange.send, 200, {"object": "list", "data": [{"id": "viva-offline", "object": "model"}]})
        return True
    if path == "":  # Ollama clients check the server is up this way
        await send_raw(exchange.send, 200, b"Ollama is running", "text/plain")
        return True
    if ollama.is_ollama(path):
        await ollama.handle(exchange)
        return True
    return False


async def _route(exchange: Exchange) -> None:
    raw = await read_body(exchange.receive)
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        await _refuse(exchange, 400, "request body is not a JSON object", "invalid_request_error")
        return
    exchange.body = body
    if ollama.is_ollama(exchange.path):
        await ollama.handle(exchange)
        return
    if azure_openai.is_azure(exchange.path) and await azure_openai.handle(exchange):
        return
    for suffix, handler in _BY_SUFFIX:
        if exchange.path.endswith(suffix):
            await handler(exchange)
            return
    await _refuse(exchange, 404, f"no route {exchange.path}", "not_found")


async def _refuse(exchange: Exchange, status: int, message: str, kind: str) -> None:
    await send_json(exchange.send, status, {"error": {"message": message, "type": kind}})
