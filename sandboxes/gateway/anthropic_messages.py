"""Anthropic messages: JSON and streaming (message_start … content_block_delta … message_stop), required tool use
(a tool_use block, streamed as input_json_delta events, stop_reason "tool_use"), and proxy mode."""

from __future__ import annotations

import json
from typing import Any

from sandboxes.gateway import upstream
from sandboxes.gateway.faults import after_piece, answer_or_fail, hold_whole_answer, model_delay, stream_pieces
from sandboxes.gateway.ledger import Exchange, GatewayCall
from sandboxes.gateway.replies import end_stream, named_event, send_json, start_stream
from sandboxes.gateway.tools import Tool, arguments_for, call_text, forced_anthropic_tool, new_id

WIRE_API = "anthropic.messages"


async def messages(exchange: Exchange) -> None:
    body = exchange.body
    system = _system_text(body.get("system", ""))
    texts = [_content_text(message.get("content")) for message in body.get("messages", []) if isinstance(message, dict)]
    if exchange.config.proxy_anthropic_url:
        await _proxy_messages(exchange, system, texts)
        return
    forced = forced_anthropic_tool(body)
    if forced is not None:
        await _tool_use(exchange, system, texts, forced)
        return
    answered = await answer_or_fail(
        exchange, protocol="anthropic", wire_api=WIRE_API, endpoint="messages", system=system, messages=texts
    )
    if answered is None:
        return
    call, fault = answered
    if body.get("stream"):
        await _text_stream(exchange, call, fault)
        return
    await hold_whole_answer(exchange, fault)
    await send_json(exchange.send, 200, _message(call, [{"type": "text", "text": call.output}], "end_turn"))


def _system_text(system: Any) -> str:
    if isinstance(system, list):
        return " ".join(part.get("text", "") for part in system if isinstance(part, dict))
    return str(system)


def _content_text(content: Any) -> str:
    """A message's text, tool results included (their content is a string or text blocks of its own)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            parts.append(_content_text(block.get("content")))
        else:
            parts.append(str(block.get("text", "")))
    return " ".join(parts)


def _message(call: GatewayCall, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": call.input_tokens, "output_tokens": call.output_tokens},
    }


async def _open_stream(exchange: Exchange, call: GatewayCall, block: dict[str, Any]) -> None:
    await start_stream(exchange.send)
    opening = {**_message(call, [], None), "usage": {"input_tokens": call.input_tokens, "output_tokens": 1}}
    await named_event(exchange.send, "message_start", {"message": opening})
    await named_event(exchange.send, "content_block_start", {"index": 0, "content_block": block})


async def _close_stream(exchange: Exchange, call: GatewayCall, stop_reason: str) -> None:
    send = exchange.send
    await named_event(send, "content_block_stop", {"index": 0})
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    await named_event(send, "message_delta", {"delta": delta, "usage": {"output_tokens": call.output_tokens}})
    await named_event(send, "message_stop", {})


async def _text_stream(exchange: Exchange, call: GatewayCall, fault: str) -> None:
    """A `truncated_stream` fault stops after half the deltas, with no content_block_stop or message_stop."""
    await _open_stream(exchange, call, {"type": "text", "text": ""})
    for piece in stream_pieces(call.output, fault):
        delta = {"type": "text_delta", "text": piece}
        await named_event(exchange.send, "content_block_delta", {"index": 0, "delta": delta})
        await after_piece(exchange, fault)
    if fault != "truncated_stream":
        await _close_stream(exchange, call, "end_turn")
    await end_stream(exchange.send)


async def _tool_use(exchange: Exchange, system: str, texts: list[str], tool: Tool) -> None:
    name, arguments = tool[0], arguments_for(tool[1], texts[-1] if texts else "")
    encoded = json.dumps(arguments)
    call = exchange.record(
        protocol="anthropic",
        wire_api=WIRE_API,
        endpoint="messages",
        model=str(exchange.body.get("model", "")),
        system=system,
        messages=texts,
        output=call_text(name, encoded),
    )
    await model_delay(exchange, call)
    block = {"type": "tool_use", "id": new_id("toolu_", 24), "name": name, "input": arguments}
    if not exchange.body.get("stream"):
        await send_json(exchange.send, 200, _message(call, [block], "tool_use"))
        return
    await _open_stream(exchange, call, {**block, "input": {}})
    half = len(encoded) // 2  # two partial pieces, as the real API sends them, so a client must join them
    for piece in (encoded[:half], encoded[half:]):
        delta = {"type": "input_json_delta", "partial_json": piece}
        await named_event(exchange.send, "content_block_delta", {"index": 0, "delta": delta})
    await _close_stream(exchange, call, "tool_use")
    await end_stream(exchange.send)


async def _proxy_messages(exchange: Exchange, system: str, texts: list[str]) -> None:
    def read(payload: dict[str, Any]) -> tuple[str, int, int]:
        tokens = payload.get("usage") or {}
        text = " ".join(part.get("text", "") for part in payload.get("content") or [] if isinstance(part, dict))
        return text, int(tokens.get("input_tokens", 0)), int(tokens.get("output_tokens", 0))

    url = str(exchange.config.proxy_anthropic_url).rstrip("/") + "/v1/messages"
    headers = {"x-api-key": exchange.config.proxy_anthropic_key or "", "anthropic-version": "2023-06-01"}
    await upstream.forward(exchange, "anthropic", WIRE_API, "messages", url, headers, system, texts, read)
