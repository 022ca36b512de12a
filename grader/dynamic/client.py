"""Asking the app a question over HTTP and pairing its answer with the model calls the gateway saw for it."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import msgspec

from grader.dynamic.interface import resolve_pointer
from grader.dynamic.model import AppInterface
from sandboxes.gateway.app import Gateway, GatewayCall

MAX_BODY = 256 * 1024


class Reply(msgspec.Struct, kw_only=True):
    question: str
    status: int
    """0 when no HTTP answer came at all (timeout, reset)."""
    seconds: float
    text: str = ""
    data: Any = None
    answer: str = ""
    citations: list[Any] = msgspec.field(default_factory=list)
    cost: float | None = None
    error: str = ""
    started: float = 0.0
    ended: float = 0.0
    calls: list[GatewayCall] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


def build_request(found: AppInterface, question: str) -> dict[str, Any]:
    """httpx keyword arguments for one question: the template filled with the question, JSON-escaped."""
    assert found.query_path is not None
    if found.query_method == "GET":
        return {"method": "GET", "url": found.query_path, "params": {found.request_template: question}}
    escaped = json.dumps(question)[1:-1]
    body = found.request_template.replace("{question}", escaped)
    return {"method": "POST", "url": found.query_path, "content": body, "headers": {"content-type": "application/json"}}


async def ask(client: httpx.AsyncClient, found: AppInterface, gateway: Gateway, question: str, timeout: float) -> Reply:
    started = time.monotonic()
    try:
        response = await client.request(**build_request(found, question), timeout=timeout)
        raw = response.content[:MAX_BODY]
        status, error = response.status_code, ""
    except httpx.TimeoutException:
        raw, status, error = b"", 0, f"no answer within {timeout:g} s"
    except httpx.HTTPError as failure:
        raw, status, error = b"", 0, f"{type(failure).__name__}: {failure}"[:300]
    ended = time.monotonic()
    text = raw.decode(errors="replace")
    reply = Reply(
        question=question, status=status, seconds=ended - started, text=text, error=error, started=started, ended=ended
    )
    reply.calls = calls_between(gateway, started, ended)
    try:
        reply.data = json.loads(text) if text else None
    except json.JSONDecodeError:
        reply.data = text
    answer = resolve_pointer(reply.data, found.answer_pointer) if found.answer_pointer is not None else reply.data
    reply.answer = answer if isinstance(answer, str) else (json.dumps(answer) if answer is not None else "")
    cited = resolve_pointer(reply.data, found.citations_pointer)
    reply.citations = cited if isinstance(cited, list) else []
    cost = resolve_pointer(reply.data, found.cost_pointer)
    reply.cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    return reply


class Breaker:
    """Stops a series of requests once the app has left several in a row unanswered (no status at all): a hung or
    dead app is measured in seconds, not in `requests x timeout`."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.in_a_row = 0

    def record(self, reply: Reply) -> bool:
        """True while it is worth sending the next request."""
        self.in_a_row = self.in_a_row + 1 if reply.status == 0 else 0
        return self.in_a_row < self.limit

    @property
    def tripped(self) -> bool:
        return self.in_a_row >= self.limit


def calls_between(gateway: Gateway, started: float, ended: float, question: str | None = None) -> list[GatewayCall]:
    """The model calls that began while a request was in flight (and, under concurrency, carried its question)."""
    found = [call for call in list(gateway.calls) if started <= call.started_at <= ended]
    if question is not None:
        found = [call for call in found if any(question in message for message in call.messages)]
    return found


def busy_seconds(calls: list[GatewayCall], started: float, ended: float) -> float:
    """How long, within [started, ended], at least one of `calls` was being served: the model's share of a request."""
    spans = sorted((max(call.started_at, started), min(call.ended_at or ended, ended)) for call in calls)
    total, cursor = 0.0, started
    for begin, finish in spans:
        start = max(begin, cursor)
        if finish > start:
            total += finish - start
            cursor = finish
    return total


def flatten_text(data: Any) -> str:
    """Every string in a JSON value, joined: what a leak detector reads of an HTTP answer."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        return "\n".join(flatten_text(value) for value in data.values())
    if isinstance(data, list):
        return "\n".join(flatten_text(value) for value in data)
    return ""
