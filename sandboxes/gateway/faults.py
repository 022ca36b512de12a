"""Choosing and playing faults, the same way on every wire API: each protocol only says how its errors look.

Faults are played on generation calls only (chat, completions, responses, messages, Ollama chat and generate):
embeddings pass through, so a fault lands on the model call whose handling the grader wants to see."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sandboxes.gateway import responder
from sandboxes.gateway.config import GatewayConfig
from sandboxes.gateway.ledger import Exchange, GatewayCall, Protocol
from sandboxes.gateway.replies import send_json, send_raw

FAILS_BEFORE_ANSWER = ("rate_limit", "server_error", "timeout", "malformed_json")
"""Faults that end a call before any answer is made: the offline model is not even asked."""
SLOW_PIECE_S = 2.0
"""A `slow_stream` fault's pause after each streamed piece (before scaling)."""
MALFORMED_BODY = b'{"id": "x", "choices": [ {"message": '


def next_fault(config: GatewayConfig, messages: list[str]) -> str:
    """The fault for this generation call ("" for none): a keyed one when a message holds its key, else the queue's."""
    for key in list(config.faults_for):
        if any(key in message for message in messages):
            return config.faults_for.pop(key)
    return config.faults.pop(0) if config.faults else ""


def fault_scale(config: GatewayConfig) -> float:
    scale = config.fault_time_scale
    return config.time_scale if scale is None else scale


def error_body(protocol: Protocol, kind: str, message: str) -> dict[str, Any]:
    """An error as the provider would send it, so the client raises its own error type for the status."""
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    if protocol == "ollama":
        return {"error": message}
    return {"error": {"message": message, "type": kind, "code": kind}}


async def fail(exchange: Exchange, fault: str, protocol: Protocol) -> bool:
    """Play a fault that ends the call before any answer; True when one was played."""
    send, config = exchange.send, exchange.config
    if fault == "rate_limit":
        body = error_body(protocol, "rate_limit_error", "rate limited by the gateway")
        await send_json(send, 429, body, {"retry-after": f"{config.retry_after_s:g}"})
        return True
    if fault == "server_error":
        await send_json(send, 500, error_body(protocol, "api_error", "the gateway played a server error"))
        return True
    if fault == "timeout":
        if await sleep_unless_disconnected(config.timeout_s * fault_scale(config), exchange.receive):
            await send_json(send, 504, error_body(protocol, "timeout", "the gateway played a timeout"))
        return True
    if fault == "malformed_json":
        await send_raw(send, 200, MALFORMED_BODY, "application/json")
        return True
    return False


async def model_delay(exchange: Exchange, call: GatewayCall) -> None:
    """The modelled time the stand-in model takes to answer, on the time scale."""
    if exchange.config.time_scale > 0:
        await asyncio.sleep(call.modelled_latency_s * exchange.config.time_scale)


async def hold_whole_answer(exchange: Exchange, fault: str) -> None:
    """A `slow_stream` fault on a call that does not stream: the whole answer comes late."""
    if fault == "slow_stream":
        seconds = exchange.config.slow_response_s * fault_scale(exchange.config)
        await sleep_unless_disconnected(seconds, exchange.receive)


def stream_pieces(text: str, fault: str) -> list[str]:
    """The deltas a streamed answer is sent in, word by word; a `truncated_stream` fault keeps the first half."""
    words = text.split(" ")
    if fault == "truncated_stream":
        words = words[: max(1, len(words) // 2)]
    return [word + (" " if number < len(words) - 1 else "") for number, word in enumerate(words)]


async def after_piece(exchange: Exchange, fault: str) -> None:
    if fault == "slow_stream":
        await asyncio.sleep(SLOW_PIECE_S * fault_scale(exchange.config))


async def sleep_unless_disconnected(seconds: float, receive: Callable[..., Any]) -> bool:
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


async def answer_or_fail(
    exchange: Exchange,
    *,
    protocol: Protocol,
    wire_api: str,
    endpoint: str,
    system: str,
    messages: list[str],
    shape: Callable[[str], str] | None = None,
) -> tuple[GatewayCall, str] | None:
    """The shared start of every generation call: pick the fault, let the offline model answer the last message
    (unless the fault ends the call first), record the call, play a failing fault, wait the modelled latency.
    `shape` rewrites the answer first (into the JSON a request asked for). Returns (the recorded call, the fault still
    to play while answering), or None when the fault already ended the call."""
    config = exchange.config
    fault = next_fault(config, messages)
    question = messages[-1] if messages else ""
    text = "" if fault in FAILS_BEFORE_ANSWER else responder.answer(system, question, config.gullible)
    if text and shape is not None:
        text = shape(text)
    model = str(exchange.body.get("model", ""))
    call = exchange.record(
        protocol=protocol,
        wire_api=wire_api,
        endpoint=endpoint,
        model=model,
        system=system,
        messages=messages,
        output=text,
        fault=fault,
    )
    if await fail(exchange, fault, protocol):
        return None
    await model_delay(exchange, call)
    return call, fault
