"""OpenAI chat completions (JSON and streaming, required tool calls, proxy mode) and the legacy text completions.
Azure OpenAI's deployments reach the same handlers with their own wire-API name."""

from __future__ import annotations

import time
from typing import Any

from sandboxes.gateway import upstream
from sandboxes.gateway.faults import after_piece, answer_or_fail, hold_whole_answer, model_delay, stream_pieces
from sandboxes.gateway.ledger import Exchange, GatewayCall
from sandboxes.gateway.replies import data_event, end_stream, send_json, start_stream
from sandboxes.gateway.tools import Tool, arguments_json, call_text, forced_chat_tool, new_id

DONE = b"data: [DONE]\n\n"


async def chat(exchange: Exchange, wire_api: str = "openai.chat") -> None:
    body = exchange.body
    system, messages = openai_messages(body.get("messages", []))
    if exchange.config.proxy_openai_url:
        await _proxy_chat(exchange, wire_api, system, messages)
        return
    forced = forced_chat_tool(body)
    if forced is not None:
        await _tool_call(exchange, wire_api, system, messages, forced)
        return
    answered = await answer_or_fail(
        exchange, protocol="openai", wire_api=wire_api, endpoint="chat.completions", system=system, messages=messages
    )
    if answered is None:
        return
    call, fault = answered
    if body.get("stream"):
        await _chat_stream(exchange, call, fault)
        return
    await hold_whole_answer(exchange, fault)
    message = {"role": "assistant", "content": call.output}
    await send_json(
        exchange.send,
        200,
        {
            **_head(call, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage(call),
        },
    )


def usage(call: GatewayCall) -> dict[str, int]:
    return {
        "prompt_tokens": call.input_tokens,
        "completion_tokens": call.output_tokens,
        "total_tokens": call.input_tokens + call.output_tokens,
    }


def _head(call: GatewayCall, kind: str, prefix: str = "chatcmpl-") -> dict[str, Any]:
    return {"id": prefix + new_id(""), "object": kind, "created": int(time.time()), "model": call.model}


async def _chat_stream(exchange: Exchange, call: GatewayCall, fault: str) -> None:
    send, head = exchange.send, _head(call, "chat.completion.chunk")
    await start_stream(send)
    for piece in stream_pieces(call.output, fault):
        await data_event(send, {**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        await after_piece(exchange, fault)
    if fault == "truncated_stream":
        await end_stream(send)
        return
    await data_event(send, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if (exchange.body.get("stream_options") or {}).get("include_usage"):
        await data_event(send, {**head, "choices": [], "usage": usage(call)})
    await end_stream(send, DONE)


async def _tool_call(exchange: Exchange, wire_api: str, system: str, messages: list[str], tool: Tool) -> None:
    """The app required a tool call: call it, with arguments made from its JSON schema and the question."""
    name, arguments = tool[0], arguments_json(tool, messages[-1] if messages else "")
    call = exchange.record(
        protocol="openai",
        wire_api=wire_api,
        endpoint="chat.completions",
        model=str(exchange.body.get("model", "")),
        system=system,
        messages=messages,
        output=call_text(name, arguments),
    )
    await model_delay(exchange, call)
    tool_call = {"id": new_id("call_", 12), "type": "function", "function": {"name": name, "arguments": arguments}}
    send = exchange.send
    if not exchange.body.get("stream"):
        message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        await send_json(send, 200, {**_head(call, "chat.completion"), "choices": [choice], "usage": usage(call)})
        return
    head = _head(call, "chat.completion.chunk")
    await start_stream(send)
    first = {**tool_call, "index": 0, "function": {"name": name, "arguments": ""}}
    delta: dict[str, Any] = {"role": "assistant", "tool_calls": [first]}
    await data_event(send, {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    delta = {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}
    await data_event(send, {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    await data_event(send, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    if (exchange.body.get("stream_options") or {}).get("include_usage"):
        await data_event(send, {**head, "choices": [], "usage": usage(call)})
    await end_stream(send, DONE)


async def _proxy_chat(exchange: Exchange, wire_api: str, system: str, messages: list[str]) -> None:
    def read(payload: dict[str, Any]) -> tuple[str, int, int]:
        tokens = payload.get("usage") or {}
        text = ((payload.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        return text, int(tokens.get("prompt_tokens", 0)), int(tokens.get("completion_tokens", 0))

    url = str(exchange.config.proxy_openai_url).rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {exchange.config.proxy_openai_key or ''}"}
    await upstream.forward(exchange, "openai", wire_api, "chat.completions", url, headers, system, messages, read)


async def completions(exchange: Exchange, wire_api: str = "openai.completions") -> None:
    """The legacy text completions (`/v1/completions`, `prompt` in, `choices[].text` out), still used by older
    LangChain and LlamaIndex code."""
    prompt = exchange.body.get("prompt", "")
    prompts = [str(part) for part in prompt] if isinstance(prompt, list) else [str(prompt)]
    answered = await answer_or_fail(
        exchange, protocol="openai", wire_api=wire_api, endpoint="completions", system="", messages=prompts
    )
    if answered is None:
        return
    call, fault = answered
    send, head = exchange.send, _head(call, "text_completion", "cmpl-")
    if not exchange.body.get("stream"):
        await hold_whole_answer(exchange, fault)
        await send_json(send, 200, {**head, "choices": [_text_choice(call.output, "stop")], "usage": usage(call)})
        return
    await start_stream(send)
    for piece in stream_pieces(call.output, fault):
        await data_event(send, {**head, "choices": [_text_choice(piece, None)]})
        await after_piece(exchange, fault)
    if fault == "truncated_stream":
        await end_stream(send)
        return
    await data_event(send, {**head, "choices": [_text_choice("", "stop")]})
    if (exchange.body.get("stream_options") or {}).get("include_usage"):
        await data_event(send, {**head, "choices": [], "usage": usage(call)})
    await end_stream(send, DONE)


def _text_choice(text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}


def openai_messages(items: list[Any]) -> tuple[str, list[str]]:
    """(the system and developer text, every other message's text) of an OpenAI message list."""
    system = " ".join(
        text_of(m.get("content")) for m in items if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )
    others = [
        text_of(m.get("content")) for m in items if isinstance(m, dict) and m.get("role") not in ("system", "developer")
    ]
    return system, others


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
