"""The OpenAI Responses API: JSON, and streaming as the event sequence the openai SDK's `responses.stream()` and
`responses.create(stream=True)` parse (response.created … response.output_text.delta … response.completed), with
required function calls in both. Azure's `/openai/responses` reaches the same handler."""

from __future__ import annotations

import time
from typing import Any

from sandboxes.gateway.faults import after_piece, answer_or_fail, hold_whole_answer, model_delay, stream_pieces
from sandboxes.gateway.ledger import Exchange, GatewayCall, Send
from sandboxes.gateway.openai_chat import openai_messages
from sandboxes.gateway.replies import end_stream, named_event, send_json, start_stream
from sandboxes.gateway.tools import Tool, arguments_json, call_text, forced_responses_tool, new_id


async def responses(exchange: Exchange, wire_api: str = "openai.responses") -> None:
    system, messages = _input_messages(exchange.body)
    forced = forced_responses_tool(exchange.body)
    if forced is not None:
        await _function_call(exchange, wire_api, system, messages, forced)
        return
    answered = await answer_or_fail(
        exchange, protocol="openai", wire_api=wire_api, endpoint="responses", system=system, messages=messages
    )
    if answered is None:
        return
    call, fault = answered
    message_id = new_id("msg_")
    if exchange.body.get("stream"):
        await _text_stream(exchange, call, fault, message_id)
        return
    await hold_whole_answer(exchange, fault)
    item = _message(message_id, "completed", call.output)
    await send_json(exchange.send, 200, _response(new_id("resp_"), call, "completed", [item], exchange.body))


def _input_messages(body: dict[str, Any]) -> tuple[str, list[str]]:
    raw = body.get("input", "")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    # A tool's result comes back as an input item of its own, with no role.
    items = [
        {"role": "tool", "content": str(item.get("output", ""))}
        if isinstance(item, dict) and item.get("type") == "function_call_output"
        else item
        for item in items
    ]
    system, messages = openai_messages(items)
    return "\n".join(filter(None, [str(body.get("instructions") or ""), system])), messages


def _message(message_id: str, status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"type": "message", "id": message_id, "role": "assistant", "status": status, "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _response(
    response_id: str, call: GatewayCall, status: str, output: list[dict[str, Any]], body: dict[str, Any]
) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": call.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "text": {"format": {"type": "text"}},
        "usage": _usage(call) if done else None,
    }


def _usage(call: GatewayCall) -> dict[str, Any]:
    return {
        "input_tokens": call.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": call.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": call.input_tokens + call.output_tokens,
    }


class _Events:
    """Named events with the running `sequence_number` every Responses event carries."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.number = 0

    async def __call__(self, name: str, payload: dict[str, Any]) -> None:
        await named_event(self.send, name, {**payload, "sequence_number": self.number})
        self.number += 1

    async def opening(self, response: dict[str, Any], item: dict[str, Any]) -> None:
        await self("response.created", {"response": response})
        await self("response.in_progress", {"response": response})
        await self("response.output_item.added", {"output_index": 0, "item": item})


async def _text_stream(exchange: Exchange, call: GatewayCall, fault: str, message_id: str) -> None:
    """A `truncated_stream` fault stops after half the deltas: no output_text.done, no response.completed."""
    response_id, body = new_id("resp_"), exchange.body
    emit = _Events(exchange.send)
    await start_stream(exchange.send)
    await emit.opening(_response(response_id, call, "in_progress", [], body), _message(message_id, "in_progress", None))
    where = {"item_id": message_id, "output_index": 0, "content_index": 0}
    await emit("response.content_part.added", {**where, "part": _text_part("")})
    for piece in stream_pieces(call.output, fault):
        await emit("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
        await after_piece(exchange, fault)
    if fault == "truncated_stream":
        await end_stream(exchange.send)
        return
    await emit("response.output_text.done", {**where, "text": call.output, "logprobs": []})
    await emit("response.content_part.done", {**where, "part": _text_part(call.output)})
    item = _message(message_id, "completed", call.output)
    await emit("response.output_item.done", {"output_index": 0, "item": item})
    await emit("response.completed", {"response": _response(response_id, call, "completed", [item], body)})
    await end_stream(exchange.send)


async def _function_call(exchange: Exchange, wire_api: str, system: str, messages: list[str], tool: Tool) -> None:
    """The app required a function call: made like chat's, with arguments from the schema and the question."""
    name, arguments = tool[0], arguments_json(tool, messages[-1] if messages else "")
    call = exchange.record(
        protocol="openai",
        wire_api=wire_api,
        endpoint="responses",
        model=str(exchange.body.get("model", "")),
        system=system,
        messages=messages,
        output=call_text(name, arguments),
    )
    await model_delay(exchange, call)
    response_id, body = new_id("resp_"), exchange.body
    item = {
        "type": "function_call",
        "id": new_id("fc_"),
        "call_id": new_id("call_", 24),
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }
    if not body.get("stream"):
        await send_json(exchange.send, 200, _response(response_id, call, "completed", [item], body))
        return
    emit = _Events(exchange.send)
    await start_stream(exchange.send)
    opened = {**item, "arguments": "", "status": "in_progress"}
    await emit.opening(_response(response_id, call, "in_progress", [], body), opened)
    where = {"item_id": item["id"], "output_index": 0}
    await emit("response.function_call_arguments.delta", {**where, "delta": arguments})
    await emit("response.function_call_arguments.done", {**where, "name": name, "arguments": arguments})
    await emit("response.output_item.done", {"output_index": 0, "item": item})
    await emit("response.completed", {"response": _response(response_id, call, "completed", [item], body)})
    await end_stream(exchange.send)
