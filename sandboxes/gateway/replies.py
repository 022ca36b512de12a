"""Writing ASGI replies: whole JSON bodies, server-sent events (OpenAI's data-only and Anthropic's named events)
and Ollama's newline-delimited JSON; and reading a request body."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Send = Callable[[dict[str, Any]], Any]


async def read_body(receive: Callable[..., Any]) -> bytes:
    """The whole body of an ASGI HTTP request."""
    raw = b""
    while True:
        message = await receive()
        raw += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return raw


async def send_json(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    await send_raw(send, status, json.dumps(payload).encode(), "application/json", headers)


async def send_raw(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    extra = [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode()), *extra]}
    )
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, content_type: str = "text/event-stream") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache")],
        }
    )


async def send_chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def end_stream(send: Send, body: bytes = b"") -> None:
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def data_event(send: Send, payload: dict[str, Any]) -> None:
    """An OpenAI chat-completions event: `data: {...}` alone."""
    await send_chunk(send, f"data: {json.dumps(payload)}\n\n".encode())


async def named_event(send: Send, name: str, payload: dict[str, Any]) -> None:
    """An event with its name on an `event:` line and again as the payload's `type` (Anthropic, Responses API)."""
    await send_chunk(send, f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n".encode())


async def ndjson_line(send: Send, payload: dict[str, Any]) -> None:
    await send_chunk(send, json.dumps(payload).encode() + b"\n")
