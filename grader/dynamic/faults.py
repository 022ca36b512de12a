"""Provider faults: the gateway plays one fault on the app's next model call and Viva watches what the app does.

Good: it retries or falls back and answers (recovered), or fails with a clean error of its own within the time
limit. Bad: it hangs past the limit, returns a traceback, or dies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx

from grader.dynamic.client import ask
from grader.dynamic.model import AppInterface, FaultResult
from sandboxes.gateway.app import GENERATION_ENDPOINTS, Fault, Gateway

TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b\w+(Error|Exception): .*\n?\s+at |"
    r"openai\.\w+Error|anthropic\.\w+Error|httpx\.\w+Error|json\.decoder\.JSONDecodeError",
)
SCORES = {"recovered": 1.0, "clean_error": 0.7, "wrong_answer": 0.3, "hang": 0.0, "traceback": 0.0, "crash": 0.0}


async def inject_faults(
    client: httpx.AsyncClient,
    found: AppInterface,
    gateway: Gateway,
    *,
    faults: list[Fault],
    timeout: float,
    alive: Callable[[], Awaitable[bool]],
    restart: Callable[[], Awaitable[None]],
) -> list[FaultResult]:
    results = []
    question = found.golden_queries[0]
    for fault in faults:
        gateway.config.faults = [fault]
        reply = await ask(client, found, gateway, question, timeout)
        gateway.config.faults = []
        model_calls = sum(1 for call in reply.calls if call.endpoint in GENERATION_ENDPOINTS)
        if reply.status == 0 and "no answer within" in reply.error:
            outcome = "hang"
        elif reply.status == 0 or not await alive():
            outcome = "crash"
        elif TRACEBACK.search(reply.text):
            outcome = "traceback"
        elif reply.status == 200 and reply.answer.strip() and model_calls >= 2:
            outcome = "recovered"
        elif reply.status == 200 and fault in ("slow_stream",) and reply.answer.strip():
            outcome = "recovered"  # a slow answer that still arrived in time needs no retry
        elif reply.status == 200:
            outcome = "wrong_answer"  # an error passed off as an answer, or an empty one
        else:
            outcome = "clean_error"
        results.append(
            FaultResult(
                fault=fault,
                outcome=outcome,  # type: ignore[arg-type]
                status=reply.status or None,
                seconds=round(reply.seconds, 3),
                model_calls=model_calls,
                body=(reply.text or reply.error)[:500],
            )
        )
        if outcome in ("crash", "hang") and not await alive():
            await restart()
    return results


def fault_score(results: list[FaultResult]) -> float:
    return sum(SCORES[result.outcome] for result in results) / len(results) if results else 0.0
