"""A local server speaking the OpenAI chat-completions and Anthropic messages protocols (JSON and streaming,
text and tool calls, errors with Retry-After), so the REAL openai/anthropic SDKs — and pydantic-ai's providers
on top of them — can be tested without a vendor. A plain ASGI app served by uvicorn on 127.0.0.1 only.

What it answers is a `script(protocol, body) -> FakeReply`. When the request offers tools and the script gives
no text, it calls the first tool with arguments made from the tool's JSON schema (that is how pydantic-ai asks
for structured output).
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

from sandboxes.gateway.app import read_body

Protocol = Literal["openai", "anthropic"]


@dataclass
class FakeReply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 120
    output_tokens: int = 30


Script = Callable[[Protocol, dict[str, Any]], FakeReply]


def echo_script(protocol: Protocol, body: dict[str, Any]) -> FakeReply:
    return FakeReply(text="echo: " + _last_user_text(protocol, body))


def failing_script(status: int, retry_after: float | None = None) -> Script:
    def script(protocol: Protocol, body: dict[str, Any]) -> FakeReply:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return FakeReply(status=status, headers=headers)

    return script


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments that satisfy a tool's JSON schema well enough: required fields get a plain value of their type."""
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name not in schema.get("required", []):
            continue
        kind = prop.get("type")
        if "enum" in prop:
            out[name] = prop["enum"][0]
        elif kind == "integer":
            out[name] = 1
        elif kind == "number":
            out[name] = 1.0
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = "x"
    return out


def _last_user_text(protocol: Protocol, body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            texts = [part.get("text", "") for part in content or [] if isinstance(part, dict)]
            if any(texts):
                return " ".join(texts)
    return ""


def _tools(protocol: Protocol, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if protocol == "openai":
        return [(t["function"]["name"], t["function"].get("parameters", {})) for t in body.get("tools", [])]
    return [(t["name"], t.get("input_schema", {})) for t in body.get("tools", [])]


def _answered_tool(protocol: Protocol, body: dict[str, Any]) -> bool:
    for message in body.get("messages", []):
        if protocol == "openai" and message.get("role") == "tool":
            return True
        content = message.get("content")
        if (
            protocol == "anthropic"
            and isinstance(content, list)
            and any(part.get("type") == "tool_result" for part in content if isinstance(part, dict))
        ):
            return True
    return False


class FakeProvider:
    transcript = "we check the cost of every request"
    """What the transcription endpoint hears, whatever the audio."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        path = scope["path"]
        if path.endswith("/audio/transcriptions"):
            await self._transcribe(send, raw, dict(scope["headers"]))
            return
        body = json.loads(raw or b"{}")
        if path.endswith("/audio/speech"):
            self.requests.append({"path": path, "protocol": "openai", "body": body})
            # A 440 Hz tone, 50 ms per character of the input: enough to tell speech happened and how much.
            count = 24_000 * 50 * len(body.get("input", "")) // 1000
            tone = b"".join(
                int(8000 * math.sin(2 * math.pi * 440 * i / 24_000)).to_bytes(2, "little", signed=True)
                for i in range(count)
            )
            await _respond(send, 200, tone, "audio/pcm", {})
            return
        protocol: Protocol = "anthropic" if path.endswith("/messages") else "openai"
        self.requests.append({"path": path, "protocol": protocol, "body": body})
        reply = self.script(protocol, body)
        if reply.status != 200:
            await self._error(send, protocol, reply)
            return
        if not reply.text and not reply.tool_calls and not _answered_tool(protocol, body):
            tools = _tools(protocol, body)
            if tools:
                reply.tool_calls = [(tools[0][0], example_arguments(tools[0][1]))]
        if not reply.text and not reply.tool_calls:
            reply.text = "ok"
        if body.get("stream"):
            await self._stream(send, protocol, body, reply)
        else:
            await self._json(send, protocol, body, reply)

    async def _transcribe(self, send: Callable[..., Any], raw: bytes, headers: dict[bytes, bytes]) -> None:
        """OpenAI's transcription endpoint: a multipart upload with the audio file and the model; verbose JSON back."""
        boundary = headers.get(b"content-type", b"").split(b"boundary=")[-1].strip(b'"')
        parts = {}
        for part in raw.split(b"--" + boundary):
            head, _, content = part.partition(b"\r\n\r\n")
            found = re.search(rb'(?<![A-Za-z])name="([^"]*)"', head)  # not the `filename="…"` beside it
            if found:
                parts[found.group(1).decode()] = content.removesuffix(b"\r\n")
        audio = parts.get("file", b"")
        self.requests.append(
            {
                "path": "/v1/audio/transcriptions",
                "protocol": "openai",
                "body": {
                    "model": parts.get("model", b"").decode(),
                    "audio_bytes": len(audio),
                    "riff": audio[:4] == b"RIFF",
                    "format": parts.get("response_format", b"").decode(),
                },
            }
        )
        body = {
            "text": self.transcript,
            "language": "english",
            "duration": 2.0,
            "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": self.transcript, "avg_logprob": -0.105}],
        }
        await _respond(send, 200, json.dumps(body).encode(), "application/json", {})

    async def _error(self, send: Callable[..., Any], protocol: Protocol, reply: FakeReply) -> None:
        kind = "rate_limit_error" if reply.status == 429 else "api_error"
        if protocol == "openai":
            payload = {"error": {"message": f"fake {reply.status}", "type": kind, "code": kind}}
        else:
            payload = {"type": "error", "error": {"type": kind, "message": f"fake {reply.status}"}}
        await _respond(send, reply.status, json.dumps(payload).encode(), "application/json", reply.headers)

    async def _json(self, send: Callable[..., Any], protocol: Protocol, body: dict[str, Any], reply: FakeReply) -> None:
        model = body.get("model", "fake")
        if protocol == "openai":
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if reply.tool_calls:
                message["tool_calls"] = [
                    {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                    for i, (name, args) in enumerate(reply.tool_calls)
                ]
            payload = {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
                ],
                "usage": {
                    "prompt_tokens": reply.input_tokens,
                    "completion_tokens": reply.output_tokens,
                    "total_tokens": reply.input_tokens + reply.output_tokens,
                },
            }
        else:
            content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
            content += [
                {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
            payload = {
                "id": "msg_" + uuid.uuid4().hex,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
            }
        await _respond(send, 200, json.dumps(payload).encode(), "application/json", {})

    async def _stream(
        self, send: Callable[..., Any], protocol: Protocol, body: dict[str, Any], reply: FakeReply
    ) -> None:
        events = _openai_events(body, reply) if protocol == "openai" else _anthropic_events(body, reply)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        for event in events:
            await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _openai_events(body: dict[str, Any], reply: FakeReply) -> list[str]:
    base = {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
    }
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    ]
    for word in reply.text.split(" ") if reply.text else []:
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]})
    for i, (name, args) in enumerate(reply.tool_calls):
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": i,
                                    "id": f"call_{i}",
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            ]
                        },
                        "finish_reason": None,
                    }
                ],
            }
        )
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": i, "function": {"arguments": json.dumps(args)}}]},
                        "finish_reason": None,
                    }
                ],
            }
        )
    chunks.append(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}]}
    )
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": reply.input_tokens,
                    "completion_tokens": reply.output_tokens,
                    "total_tokens": reply.input_tokens + reply.output_tokens,
                },
            }
        )
    return [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]


def _anthropic_events(body: dict[str, Any], reply: FakeReply) -> list[str]:
    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    out = [
        event(
            "message_start",
            {
                "message": {
                    "id": "msg_" + uuid.uuid4().hex,
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "fake"),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
                }
            },
        )
    ]
    index = 0
    if reply.text:
        out.append(event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
        for word in reply.text.split(" "):
            out.append(
                event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": word + " "}})
            )
        out.append(event("content_block_stop", {"index": index}))
        index += 1
    for i, (name, args) in enumerate(reply.tool_calls):
        out.append(
            event(
                "content_block_start",
                {"index": index, "content_block": {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}},
            )
        )
        out.append(
            event(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": json.dumps(args)}},
            )
        )
        out.append(event("content_block_stop", {"index": index}))
        index += 1
    out.append(
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use" if reply.tool_calls else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    out.append(event("message_stop", {}))
    return out


async def _respond(
    send: Callable[..., Any], status: int, payload: bytes, content_type: str, headers: dict[str, str]
) -> None:
    raw_headers = [(b"content-type", content_type.encode())] + [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


@dataclass
class RunningServer:
    base_url: str
    app: FakeProvider

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app.requests


@contextmanager
def serve_fake_provider(script: Script = echo_script) -> Iterator[RunningServer]:
    """Serve on 127.0.0.1 (only) on a free port, in a background thread, for the duration of the block."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = FakeProvider(script)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
