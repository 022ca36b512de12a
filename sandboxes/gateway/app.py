"""The gateway's HTTP surface, as a plain ASGI app: OpenAI chat completions (JSON and streaming), the Responses
API, embeddings and /v1/models; Anthropic messages (JSON and streaming). Each call is recorded and priced."""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import httpx
import msgspec

from llm.pricing import price_usd
from sandboxes.gateway import responder

Fault = Literal["rate_limit", "server_error", "timeout", "slow_stream", "truncated_stream", "malformed_json"]
Send = Callable[[dict[str, Any]], Any]


class GatewayConfig(msgspec.Struct, kw_only=True):
    """How the gateway behaves; tests and the grader change it between probes."""

    gullible: bool = False
    faults: list[Fault] = msgspec.field(default_factory=list)
    """Consumed one per generation call, first in first out."""
    faults_for: dict[str, Fault] = msgspec.field(default_factory=dict)
    """A fault for the next generation call whose messages contain the key (a question): requests in flight at once
    each get their own fault. Consumed once; checked before `faults`."""
    time_to_first_token_s: float = 0.4
    tokens_per_second: float = 80.0
    time_scale: float = 1.0
    """Multiplies every modelled delay: 0 in tests, 1 to feel like a real provider."""
    retry_after_s: float = 2.0
    timeout_s: float = 120.0
    fault_time_scale: float | None = None
    """Scale for the delays of `timeout` and `slow_stream` faults; None follows `time_scale`. The grader sets 1:
    a played timeout must outlast the app's own timeout, or it tests nothing."""
    slow_response_s: float = 6.0
    """A `slow_stream` fault on a non-streaming call holds the whole answer back this long (before scaling)."""
    proxy_openai_url: str | None = None
    """When set, chat completions are forwarded to this OpenAI-compatible base URL with `proxy_openai_key`, which
    stays on the host: the sandbox only ever sees the gateway."""
    proxy_openai_key: str | None = None
    proxy_anthropic_url: str | None = None
    """The same for Anthropic messages, with `proxy_anthropic_key` sent as x-api-key from the host."""
    proxy_anthropic_key: str | None = None


class GatewayCall(msgspec.Struct):
    protocol: Literal["openai", "anthropic"]
    endpoint: str
    model: str
    system: str
    messages: list[str]
    input_tokens: int
    output_tokens: int
    modelled_latency_s: float
    price_usd: float
    fault: str = ""
    output: str = ""
    started_at: float = 0.0
    """time.monotonic() when the HTTP request reached the gateway; `ended_at` when the reply was sent. The grader
    attributes calls to the app's requests by these spans."""
    ended_at: float = 0.0


GENERATION_ENDPOINTS = ("chat.completions", "responses", "messages")
_request_calls: contextvars.ContextVar[list[GatewayCall] | None] = contextvars.ContextVar("calls", default=None)
_request_started: contextvars.ContextVar[float] = contextvars.ContextVar("started", default=0.0)
_request_receive: contextvars.ContextVar[Callable[..., Any]] = contextvars.ContextVar("receive")


class Gateway:
    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()
        self.calls: list[GatewayCall] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await _json(send, 200, {"object": "list", "data": [{"id": "viva-offline", "object": "model"}]})
            return
        recorded: list[GatewayCall] = []
        _request_calls.set(recorded)
        _request_started.set(time.monotonic())
        _request_receive.set(receive)
        try:
            await self._route(path, receive, send)
        finally:
            ended = time.monotonic()
            for call in recorded:
                call.ended_at = ended

    async def _route(self, path: str, receive: Callable[..., Any], send: Send) -> None:
        raw = await read_body(receive)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            await _json(send, 400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        if path.endswith("/chat/completions"):
            await self._chat(body, send)
        elif path.endswith("/responses"):
            await self._responses(body, send)
        elif path.endswith("/embeddings"):
            await self._embeddings(body, send)
        elif path.endswith("/messages"):
            await self._messages(body, send)
        else:
            await _json(send, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    # --- behaviour shared by every endpoint ---------------------------------------------------------------

    def _next_fault(self, messages: list[str]) -> str:
        """Faults are played on generation calls only (chat, responses, messages): embeddings pass through, so a
        fault lands on the model call whose handling the grader wants to see."""
        for key in list(self.config.faults_for):
            if any(key in message for message in messages):
                return self.config.faults_for.pop(key)
        return self.config.faults.pop(0) if self.config.faults else ""

    def _fault_scale(self) -> float:
        scale = self.config.fault_time_scale
        return self.config.time_scale if scale is None else scale

    async def _fail(self, fault: str, send: Send, protocol: str) -> bool:
        """Play a fault that ends the call before any answer; True when one was played."""
        if fault == "rate_limit":
            await _json(
                send,
                429,
                _error(protocol, "rate_limit_error", "rate limited by the gateway"),
                {"retry-after": f"{self.config.retry_after_s:g}"},
            )
            return True
        if fault == "server_error":
            await _json(send, 500, _error(protocol, "api_error", "the gateway played a server error"))
            return True
        if fault == "timeout":
            if await _sleep_unless_disconnected(self.config.timeout_s * self._fault_scale(), _request_receive.get()):
                await _json(send, 504, _error(protocol, "timeout", "the gateway played a timeout"))
            return True
        if fault == "malformed_json":
            await _raw(send, 200, b'{"id": "x", "choices": [ {"message": ', "application/json")
            return True
        return False

    def _record(  # noqa: PLR0917 - one internal call shape for every endpoint
        self,
        protocol: Literal["openai", "anthropic"],
        endpoint: str,
        model: str,
        system: str,
        messages: list[str],
        output: str,
        fault: str,
    ) -> GatewayCall:
        input_tokens = responder.count_tokens(system + " ".join(messages))
        output_tokens = responder.count_tokens(output) if output else 0
        latency = self.config.time_to_first_token_s + output_tokens / max(self.config.tokens_per_second, 1e-6)
        call = GatewayCall(
            protocol,
            endpoint,
            model,
            system,
            messages,
            input_tokens,
            output_tokens,
            latency,
            price_usd("anthropic" if protocol == "anthropic" else "openai", model, input_tokens, output_tokens),
            fault,
            output,
        )
        self._remember(call)
        return call

    def _remember(self, call: GatewayCall) -> None:
        call.started_at = _request_started.get() or time.monotonic()
        self.calls.append(call)
        recorded = _request_calls.get()
        if recorded is not None:
            recorded.append(call)

    async def _slow_whole_answer(self, fault: str) -> None:
        if fault == "slow_stream":
            await _sleep_unless_disconnected(self.config.slow_response_s * self._fault_scale(), _request_receive.get())

    async def _model_delay(self, call: GatewayCall) -> None:
        if self.config.time_scale > 0:
            await asyncio.sleep(call.modelled_latency_s * self.config.time_scale)

    # --- OpenAI ---------------------------------------------------------------------------------------------

    async def _chat(self, body: dict[str, Any], send: Send) -> None:
        system, messages = _openai_messages(body.get("messages", []))
        if self.config.proxy_openai_url:
            await self._proxy_chat(body, system, messages, send)
            return
        forced = _forced_tool(body)
        if forced is not None:
            await self._chat_tool_call(body, system, messages, forced, send)
            return
        fault = self._next_fault(messages)
        text = (
            ""
            if fault in ("rate_limit", "server_error", "timeout", "malformed_json")
            else responder.answer(system, messages[-1] if messages else "", self.config.gullible)
        )
        call = self._record("openai", "chat.completions", str(body.get("model", "")), system, messages, text, fault)
        if await self._fail(fault, send, "openai"):
            return
        await self._model_delay(call)
        if body.get("stream"):
            await self._chat_stream(body, call, fault, send)
            return
        await self._slow_whole_answer(fault)
        await _json(
            send,
            200,
            {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": call.input_tokens,
                    "completion_tokens": call.output_tokens,
                    "total_tokens": call.input_tokens + call.output_tokens,
                },
            },
        )

    async def _chat_tool_call(
        self, body: dict[str, Any], system: str, messages: list[str], tool: tuple[str, dict[str, Any]], send: Send
    ) -> None:
        """The app required a tool call: call it, with arguments made from its JSON schema and the question."""
        name, schema = tool
        arguments = json.dumps(_arguments_for(schema, messages[-1] if messages else ""))
        call = self._record(
            "openai", "chat.completions", str(body.get("model", "")), system, messages, f"{name}({arguments})", ""
        )
        await self._model_delay(call)
        tool_call = {
            "id": "call_" + uuid.uuid4().hex[:12],
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        usage = {
            "prompt_tokens": call.input_tokens,
            "completion_tokens": call.output_tokens,
            "total_tokens": call.input_tokens + call.output_tokens,
        }
        if not body.get("stream"):
            await _json(
                send,
                200,
                {
                    "id": "chatcmpl-" + uuid.uuid4().hex,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": call.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": None, "tool_calls": [tool_call]},
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        base = {
            "id": "chatcmpl-" + uuid.uuid4().hex,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model,
        }
        await _start_stream(send)
        first = {**tool_call, "index": 0, "function": {"name": name, "arguments": ""}}
        await _event(
            send,
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}, "finish_reason": None}],
            },
        )
        await _event(
            send,
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]},
                        "finish_reason": None,
                    }
                ],
            },
        )
        await _event(send, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await _event(send, {**base, "choices": [], "usage": usage})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _proxy_chat(self, body: dict[str, Any], system: str, messages: list[str], send: Send) -> None:
        def read(payload: dict[str, Any]) -> tuple[str, int, int]:
            usage = payload.get("usage") or {}
            text = ((payload.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
            return text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))

        url = str(self.config.proxy_openai_url).rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {self.config.proxy_openai_key or ''}"}
        await self._proxy("openai", "chat.completions", url, headers, body, system, messages, read, send)

    async def _proxy(  # noqa: PLR0917 - one internal call shape for both providers
        self,
        protocol: Literal["openai", "anthropic"],
        endpoint: str,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any],
        system: str,
        messages: list[str],
        read: Callable[[dict[str, Any]], tuple[str, int, int]],
        send: Send,
    ) -> None:
        """Forward to a real provider with the host's key (it never enters the sandbox) and record what came back.
        Streaming requests are answered whole."""
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=self.config.timeout_s) as client:
            upstream = await client.post(url, json={**body, "stream": False}, headers=headers)
        json_reply = upstream.headers.get("content-type", "").startswith("application/json")
        text, tokens_in, tokens_out = read(upstream.json() if json_reply else {})
        model = str(body.get("model", ""))
        self._remember(
            GatewayCall(
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
        )
        passed = {key: value for key, value in upstream.headers.items() if key.lower() == "retry-after"}
        await _raw(send, upstream.status_code, upstream.content, "application/json", passed)

    async def _chat_stream(self, body: dict[str, Any], call: GatewayCall, fault: str, send: Send) -> None:
        base = {
            "id": "chatcmpl-" + uuid.uuid4().hex,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model,
        }
        await _start_stream(send)
        pieces = call.output.split(" ")
        if fault == "truncated_stream":
            pieces = pieces[: max(1, len(pieces) // 2)]
        for number, piece in enumerate(pieces):
            delta = {"content": piece + (" " if number < len(pieces) - 1 else "")}
            await _event(send, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            if fault == "slow_stream":
                await asyncio.sleep(2.0 * self._fault_scale())
        if fault == "truncated_stream":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await _event(send, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await _event(
                send,
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": call.input_tokens,
                        "completion_tokens": call.output_tokens,
                        "total_tokens": call.input_tokens + call.output_tokens,
                    },
                },
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _responses(self, body: dict[str, Any], send: Send) -> None:
        raw_input = body.get("input", "")
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input
        system, messages = _openai_messages(items)
        system = "\n".join(filter(None, [str(body.get("instructions") or ""), system]))
        fault = self._next_fault(messages)
        text = "" if fault else responder.answer(system, messages[-1] if messages else "", self.config.gullible)
        call = self._record("openai", "responses", str(body.get("model", "")), system, messages, text, fault)
        if await self._fail(fault, send, "openai"):
            return
        await self._model_delay(call)
        await _json(
            send,
            200,
            {
                "id": "resp_" + uuid.uuid4().hex,
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": call.model,
                "output": [
                    {
                        "type": "message",
                        "id": "msg_" + uuid.uuid4().hex,
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                ],
                "usage": {
                    "input_tokens": call.input_tokens,
                    "output_tokens": call.output_tokens,
                    "total_tokens": call.input_tokens + call.output_tokens,
                },
            },
        )

    async def _embeddings(self, body: dict[str, Any], send: Send) -> None:
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else [str(text) for text in texts]
        call = self._record("openai", "embeddings", str(body.get("model", "")), "", texts, "", "")
        await _json(
            send,
            200,
            {
                "object": "list",
                "model": call.model,
                "data": [
                    {"object": "embedding", "index": i, "embedding": responder.embed(text)}
                    for i, text in enumerate(texts)
                ],
                "usage": {"prompt_tokens": call.input_tokens, "total_tokens": call.input_tokens},
            },
        )

    # --- Anthropic --------------------------------------------------------------------------------------------

    async def _messages(self, body: dict[str, Any], send: Send) -> None:
        system = body.get("system", "")
        if isinstance(system, list):
            system = " ".join(part.get("text", "") for part in system if isinstance(part, dict))
        messages = [_text_of(message.get("content")) for message in body.get("messages", [])]
        if self.config.proxy_anthropic_url:
            await self._proxy_messages(body, str(system), messages, send)
            return
        fault = self._next_fault(messages)
        text = (
            ""
            if fault in ("rate_limit", "server_error", "timeout", "malformed_json")
            else responder.answer(str(system), messages[-1] if messages else "", self.config.gullible)
        )
        call = self._record("anthropic", "messages", str(body.get("model", "")), str(system), messages, text, fault)
        if await self._fail(fault, send, "anthropic"):
            return
        await self._model_delay(call)
        if body.get("stream"):
            await self._messages_stream(call, fault, send)
            return
        await self._slow_whole_answer(fault)
        await _json(
            send,
            200,
            {
                "id": "msg_" + uuid.uuid4().hex,
                "type": "message",
                "role": "assistant",
                "model": call.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": call.input_tokens, "output_tokens": call.output_tokens},
            },
        )

    async def _proxy_messages(self, body: dict[str, Any], system: str, messages: list[str], send: Send) -> None:
        def read(payload: dict[str, Any]) -> tuple[str, int, int]:
            usage = payload.get("usage") or {}
            text = " ".join(part.get("text", "") for part in payload.get("content") or [] if isinstance(part, dict))
            return text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))

        url = str(self.config.proxy_anthropic_url).rstrip("/") + "/v1/messages"
        headers = {"x-api-key": self.config.proxy_anthropic_key or "", "anthropic-version": "2023-06-01"}
        await self._proxy("anthropic", "messages", url, headers, body, system, messages, read, send)

    async def _messages_stream(self, call: GatewayCall, fault: str, send: Send) -> None:
        async def event(name: str, data: dict[str, Any]) -> None:
            payload = f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
            await send({"type": "http.response.body", "body": payload, "more_body": True})

        await _start_stream(send)
        await event(
            "message_start",
            {
                "message": {
                    "id": "msg_" + uuid.uuid4().hex,
                    "type": "message",
                    "role": "assistant",
                    "model": call.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": call.input_tokens, "output_tokens": 1},
                }
            },
        )
        await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        pieces = call.output.split(" ")
        if fault == "truncated_stream":
            pieces = pieces[: max(1, len(pieces) // 2)]
        for number, piece in enumerate(pieces):
            await event(
                "content_block_delta",
                {
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece + (" " if number < len(pieces) - 1 else "")},
                },
            )
            if fault == "slow_stream":
                await asyncio.sleep(2.0 * self._fault_scale())
        if fault != "truncated_stream":
            await event("content_block_stop", {"index": 0})
            await event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": call.output_tokens},
                },
            )
            await event("message_stop", {})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _sleep_unless_disconnected(seconds: float, receive: Callable[..., Any]) -> bool:
    """Sleep, but stop early when the client hangs up (its own timeout fired). True when the full time passed."""
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    listener = asyncio.ensure_future(_wait_for_disconnect(receive))
    done, pending = await asyncio.wait({sleeper, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return sleeper in done


async def _wait_for_disconnect(receive: Callable[..., Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def read_body(receive: Callable[..., Any]) -> bytes:
    """The whole body of an ASGI HTTP request."""
    raw = b""
    while True:
        message = await receive()
        raw += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return raw


def _forced_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The tool the request requires ("required" or a named function), with its parameter schema."""
    tools = [tool.get("function", {}) for tool in body.get("tools") or [] if isinstance(tool, dict)]
    choice = body.get("tool_choice")
    if not tools or choice in (None, "auto", "none"):
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [tool for tool in tools if tool.get("name") == wanted] or tools
    return str(tools[0].get("name", "tool")), dict(tools[0].get("parameters") or {})


def _arguments_for(schema: dict[str, Any], question: str) -> dict[str, Any]:
    """Required arguments of a tool, filled deterministically: strings get the question, numbers 1, flags true."""
    filled: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name not in (schema.get("required") or []):
            continue
        kind = prop.get("type")
        filled[name] = (
            prop["enum"][0]
            if "enum" in prop
            else 1
            if kind == "integer"
            else 1.0
            if kind == "number"
            else True
            if kind == "boolean"
            else []
            if kind == "array"
            else {}
            if kind == "object"
            else question[:200]
        )
    return filled


def _openai_messages(items: list[Any]) -> tuple[str, list[str]]:
    system = " ".join(
        _text_of(m.get("content")) for m in items if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )
    others = [
        _text_of(m.get("content"))
        for m in items
        if isinstance(m, dict) and m.get("role") not in ("system", "developer")
    ]
    return system, others


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _error(protocol: str, kind: str, message: str) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "code": kind}}


async def _json(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    await _raw(send, status, json.dumps(payload).encode(), "application/json", headers)


async def _raw(send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
    extra = [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode()), *extra]}
    )
    await send({"type": "http.response.body", "body": body})


async def _start_stream(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )


async def _event(send: Send, payload: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": f"data: {json.dumps(payload)}\n\n".encode(), "more_body": True})
