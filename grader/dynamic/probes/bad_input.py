"""Bad input: an empty, a blank and an oversized question, sent to the query route the way a real one is.

A service in front of a paid model should say no to a question that is not one: a clean 4xx, at once, without
spending a model call on it. Answering as if it were valid (a 200) is half of that: nothing broke, but the app
let it through, often paying for it. A 5xx, no answer within the limit, or an app that is not running afterwards
is the failure a user would meet.
"""

from __future__ import annotations

from grader.dynamic.client import ask
from grader.dynamic.model import DynamicRun, Exchange, ProbeRun
from grader.dynamic.probes import PROBES, ProbeTarget
from grader.dynamic.scores import SCORERS, probe_result, unmet
from grader.model import Evidence, Score
from rubrics.catalogue import BadInputParams

NAME = "bad_input_rejected"
FILLER = "Could you summarise every document you know about, in full detail? "
"""The oversized question is ordinary words repeated: it tests a length limit, not a tokenizer's corner."""


def bad_questions(oversized_chars: int) -> list[tuple[str, str, str]]:
    """(case, what was sent in words, the question) for each bad input."""
    oversized = (FILLER * (oversized_chars // len(FILLER) + 1))[:oversized_chars]
    return [
        ("empty", "an empty question", ""),
        ("blank", "a question of spaces, a tab and a newline", "   \t \n  "),
        ("oversized", f"a question of {oversized_chars:,} characters", oversized),
    ]


def case_value(exchange: Exchange) -> float:
    """1 for a clean 4xx, 0.5 for an answer as if the input were valid, 0 for a 5xx, no answer or a dead app."""
    if not exchange.alive_after or exchange.status == 0 or exchange.status >= 500:
        return 0.0
    return 1.0 if 400 <= exchange.status < 500 else 0.5


@PROBES.register(NAME)
async def send_bad_questions(params: BadInputParams, target: ProbeTarget) -> ProbeRun:
    """Each bad question once, in order; once the app has stopped, the rest are not sent (and count as failed)."""
    result = ProbeRun(check=NAME)
    for case, sent, question in bad_questions(params.oversized_chars):
        if result.exchanges and not result.exchanges[-1].alive_after:
            result.notes.append(f"{sent} was not sent: the app had stopped")
            skipped = Exchange(case=case, sent=sent, status=0, seconds=0.0, alive_after=False)
            skipped.verdict = "not sent: the app had stopped"
            result.exchanges.append(skipped)
            continue
        reply = await ask(target.http, target.found, target.gateway, question, params.timeout_seconds)
        exchange = Exchange(
            case=case,
            sent=sent,
            status=reply.status,
            seconds=round(reply.seconds, 3),
            body=reply.text[:400],
            error=reply.error,
            alive_after=await target.alive(),
        )
        exchange.verdict = _verdict(exchange, model_calls=len(reply.calls))
        result.exchanges.append(exchange)
    return result


def _verdict(exchange: Exchange, *, model_calls: int) -> str:
    spent = f", after {model_calls} model call(s)" if model_calls else ""
    if not exchange.alive_after:
        return "the app stopped running"
    if exchange.status == 0:
        return f"no answer ({exchange.error or 'none'})"
    if exchange.status >= 500:
        return f"a server error{spent}"
    if exchange.status >= 400:
        return "a clean 4xx" + (f" (but {model_calls} model call(s) were spent first)" if model_calls else "")
    return f"answered as if it were a valid question{spent}"


@SCORERS.register(NAME)
def bad_input_rejected(params: BadInputParams, run: DynamicRun) -> Score:
    failed = unmet(run, "query")
    if failed:
        return failed
    result = probe_result(run, NAME)
    if isinstance(result, Score):
        return result
    if not result.exchanges:
        return Score.scored(0.0, "No bad question could be sent.", basis="dynamic")
    value = sum(case_value(exchange) for exchange in result.exchanges) / len(result.exchanges)
    said = "; ".join(f"{item.sent}: {item.status or 'no status'}, {item.verdict}" for item in result.exchanges)
    evidence = [
        Evidence(f"(probe) {NAME} {item.case}", None, item.body[:300] or item.error, item.verdict)
        for item in result.exchanges
        if case_value(item) == 0.0 and (item.body or item.error)
    ]
    return Score.scored(
        value, f"{said}. A clean 4xx scores 1, an answer 0.5, a 5xx or no answer 0.", evidence, basis="dynamic"
    )
