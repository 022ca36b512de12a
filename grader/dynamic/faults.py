"""Provider faults: the gateway plays one fault on the app's next model call and Viva watches what the app does.

Good: it retries or falls back and answers (recovered), or fails with a clean error of its own within the time
limit. Bad: it hangs past the limit, returns a traceback, or dies."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx

from grader.dynamic.client import Reply, ask, calls_between
from grader.dynamic.model import AppInterface, FaultOutcome, FaultResult
from sandboxes.gateway.app import GENERATION_ENDPOINTS, Fault, Gateway, GatewayCall

TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b\w+(Error|Exception): .*\n?\s+at |"
    r"openai\.\w+Error|anthropic\.\w+Error|httpx\.\w+Error|json\.decoder\.JSONDecodeError",
)
SCORES = {"recovered": 1.0, "clean_error": 0.7, "wrong_answer": 0.3, "hang": 0.0, "traceback": 0.0, "crash": 0.0}


SLOW_FAULTS = ("timeout", "slow_stream")
"""Faults whose cost is the app's own waiting: played at once (each keyed to its own question) so a grading waits
for the slowest, not the sum. The quick ones go first, one at a time."""


async def inject_faults(
    client: httpx.AsyncClient,
    found: AppInterface,
    gateway: Gateway,
    *,
    faults: list[Fault],
    timeout: float,
    alive: Callable[[], Awaitable[bool]],
    restart: Callable[[], Awaitable[None]],
    quiet: Callable[[], Awaitable[None]] | None = None,
) -> list[FaultResult]:
    """Play each fault on a model call carrying its own question, so other callers of the gateway (the eval suite,
    run meanwhile) are never hit. A fault whose question did not reach the model verbatim is played again on
    "the next model call", after `quiet` has returned (nobody else is calling the gateway by then)."""
    questions = fault_questions(found.golden_queries, len(faults))
    planned = list(zip(faults, questions, strict=True))
    results: dict[str, FaultResult] = {}
    unplayed: list[tuple[Fault, str]] = []

    async def play_keyed(batch: list[tuple[Fault, str]]) -> None:
        """Ask the batch's questions at once, each with its fault keyed to it; classify what was played."""
        gateway.config.faults_for = {question: fault for fault, question in batch}
        replies = await asyncio.gather(*(ask(client, found, gateway, question, timeout) for _, question in batch))
        left = set(gateway.config.faults_for)
        gateway.config.faults_for = {}
        for (fault, question), reply in zip(batch, replies, strict=True):
            if question in left:
                unplayed.append((fault, question))
            else:
                calls = calls_between(gateway, reply.started, reply.ended, question)
                results[fault] = await _classify(fault, reply, calls, alive)

    async def restart_if_dead() -> None:
        if any(result.outcome in ("crash", "hang") for result in results.values()) and not await alive():
            await restart()

    for item in [item for item in planned if item[0] not in SLOW_FAULTS]:
        await play_keyed([item])
        await restart_if_dead()
    slow = [item for item in planned if item[0] in SLOW_FAULTS]
    if slow:
        await play_keyed(slow)
        await restart_if_dead()
    if unplayed and quiet is not None:
        await quiet()
    for fault, question in unplayed:
        # The app's model call did not carry the question as asked: play this fault on its next call, alone.
        results[fault] = await _one(client, found, gateway, fault, question, timeout, alive)
        await restart_if_dead()
    return [results[fault] for fault in faults]


async def _one(  # noqa: PLR0917 - internal, called from one place with the loop's variables
    client: httpx.AsyncClient,
    found: AppInterface,
    gateway: Gateway,
    fault: Fault,
    question: str,
    timeout: float,
    alive: Callable[[], Awaitable[bool]],
) -> FaultResult:
    gateway.config.faults = [fault]
    try:
        reply = await ask(client, found, gateway, question, timeout)
    finally:
        gateway.config.faults = []
    return await _classify(fault, reply, reply.calls, alive)


async def _classify(
    fault: str, reply: Reply, calls: list[GatewayCall], alive: Callable[[], Awaitable[bool]]
) -> FaultResult:
    generation = sorted((call for call in calls if call.endpoint in GENERATION_ENDPOINTS), key=lambda c: c.started_at)
    model_calls = len(generation)
    gap = generation[1].started_at - generation[0].ended_at if model_calls >= 2 else None
    outcome: FaultOutcome
    if reply.status == 0 and "no answer within" in reply.error:
        outcome = "hang"
    elif reply.status == 0 or not await alive():
        outcome = "crash"
    elif TRACEBACK.search(reply.text):
        outcome = "traceback"
    elif reply.status == 200 and reply.answer.strip() and (model_calls >= 2 or fault == "slow_stream"):
        outcome = "recovered"  # a retry or a fallback answered; a slow answer that arrived in time needs neither
    elif reply.status == 200:
        outcome = "wrong_answer"  # an error passed off as an answer, or an empty one
    else:
        outcome = "clean_error"
    return FaultResult(
        fault=fault,
        outcome=outcome,
        status=reply.status or None,
        seconds=round(reply.seconds, 3),
        model_calls=model_calls,
        retry_gap_s=round(max(gap, 0.0), 3) if gap is not None else None,
        body=(reply.text or reply.error)[:500],
    )


def fault_questions(golden: list[str], count: int) -> list[str]:
    """One question per fault, each marked so that no other caller (the eval suite asks the same golden questions)
    carries it: the gateway plays a fault only on a model call whose messages hold the marked question."""
    unique = list(dict.fromkeys(golden)) or ["What does this service do?"]
    return [f"{unique[n % len(unique)]} (check {n + 1})" for n in range(count)]


def fault_score(results: list[FaultResult]) -> float:
    return sum(SCORES[result.outcome] for result in results) / len(results) if results else 0.0
