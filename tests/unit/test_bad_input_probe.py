"""The bad-input probe (grader/dynamic/probes/bad_input.py) against small apps written the ways candidates write
them, served in-process over ASGI: one that validates, one that answers anything, one that crashes on what it did
not expect; and the small-probe wiring (a probe's crash is an error score, the others still run)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody

from grader.dynamic.model import (
    AppInterface,
    DynamicRun,
    Exchange,
    GatewaySettings,
    ProbeRun,
    SandboxInfo,
    ServiceResult,
)
from grader.dynamic.probes import PROBES, ProbeTarget, run_probes
from grader.dynamic.scores import score_dynamic_leaves
from grader.report.render_markdown import _dynamic_lines
from rubrics.catalogue import BadInputParams
from sandboxes.gateway.app import Gateway

NAME = "bad_input_rejected"


class Question(msgspec.Struct):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]


class LooseQuestion(msgspec.Struct):
    question: str


@post("/ask", status_code=200)
async def validating(data: JSONBody[Question]) -> dict[str, str]:
    return {"answer": f"You asked about {data.question[:20]}"}


@post("/ask", status_code=200)
async def answers_anything(data: JSONBody[LooseQuestion]) -> dict[str, str]:
    return {"answer": "Here is what the notes say."}


@post("/ask", status_code=200)
async def trusting(data: JSONBody[LooseQuestion]) -> dict[str, str]:
    topic = data.question.split()[0]  # the first word is the topic
    assert len(data.question) < 20_000, "too long for the context window"
    return {"answer": f"About {topic}: see the notes."}


def _found() -> AppInterface:
    return AppInterface(query_path="/ask", answer_pointer="/answer", golden_queries=["What is a golden set?"])


def _probe(handler: Any, *, alive: Callable[[], Awaitable[bool]] | None = None) -> ProbeRun:
    async def always() -> bool:
        return True

    async def go() -> ProbeRun:
        app = Litestar([handler], debug=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            target = ProbeTarget(http=http, found=_found(), gateway=Gateway(), alive=alive or always)
            (result,) = await run_probes({NAME: BadInputParams(oversized_chars=30_000)}, target)
            return result

    return asyncio.run(go())


def _run(*probes: ProbeRun, started: bool = True) -> DynamicRun:
    return DynamicRun(
        sandbox=SandboxInfo(base_image="test"),
        gateway=GatewaySettings(
            model="m", time_to_first_token_s=0, tokens_per_second=1, time_scale=0, fault_time_scale=1
        ),
        interface=_found(),
        service=ServiceResult(started=started, ready_seconds=0.1, first_query_status=200),
        probes=list(probes),
    )


def _score(run: DynamicRun) -> Any:
    leaves = [("robustness.bad_input", NAME, BadInputParams())]
    return score_dynamic_leaves(leaves, run)["robustness.bad_input"]


def test_an_app_that_validates_its_input_scores_full_marks() -> None:
    result = _probe(validating)
    assert [(item.case, item.status) for item in result.exchanges] == [
        ("empty", 400),
        ("blank", 400),
        ("oversized", 400),
    ]
    score = _score(_run(result))
    assert score.status == "scored" and score.value == 1.0
    assert "a clean 4xx" in score.explanation


def test_an_app_that_answers_anything_gets_half() -> None:
    result = _probe(answers_anything)
    assert {item.status for item in result.exchanges} == {200}
    assert all("answered as if it were a valid question" in item.verdict for item in result.exchanges)
    assert _score(_run(result)).value == 0.5


def test_an_app_that_crashes_on_unexpected_input_scores_0_with_the_500_as_evidence() -> None:
    result = _probe(trusting)
    assert {item.status for item in result.exchanges} == {500}
    score = _score(_run(result))
    assert score.value == 0.0
    assert {evidence.path for evidence in score.evidence} == {
        f"(probe) {NAME} {case}" for case in ("empty", "blank", "oversized")
    }


def test_once_the_app_has_stopped_the_rest_are_not_sent_and_count_as_failed() -> None:
    answered = 0

    async def dies_after_first() -> bool:
        nonlocal answered
        answered += 1
        return answered < 1

    result = _probe(answers_anything, alive=dies_after_first)
    assert [item.verdict for item in result.exchanges] == [
        "the app stopped running",
        "not sent: the app had stopped",
        "not sent: the app had stopped",
    ]
    assert _score(_run(result)).value == 0.0
    assert len(result.notes) == 2


def test_a_mixed_app_scores_the_mean_of_its_cases() -> None:
    exchanges = [
        Exchange(case="empty", sent="an empty question", status=422, seconds=0.01),
        Exchange(case="blank", sent="a blank question", status=200, seconds=0.4),
        Exchange(case="oversized", sent="a long question", status=0, seconds=15, error="no answer within 15 s"),
    ]
    assert _score(_run(ProbeRun(check=NAME, exchanges=exchanges))).value == pytest.approx(0.5)


def test_an_app_that_never_started_scores_0_and_a_probe_that_never_ran_scores_0() -> None:
    assert _score(_run(started=False)).value == 0.0
    missing = _score(_run())
    assert missing.value == 0.0 and "could not be sent" in missing.explanation


def test_a_probe_that_crashes_inside_viva_is_an_error_and_the_other_probes_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(params: Any, target: ProbeTarget) -> ProbeRun:
        raise RuntimeError("probe bug")

    async def fine(params: Any, target: ProbeTarget) -> ProbeRun:
        return ProbeRun(check="ignored", notes=["ran"])

    monkeypatch.setitem(PROBES, NAME, broken)
    monkeypatch.setitem(PROBES, "second_probe", fine)

    async def go() -> list[ProbeRun]:
        async def alive() -> bool:
            return True

        async with httpx.AsyncClient(base_url="http://unused") as http:
            target = ProbeTarget(http=http, found=_found(), gateway=Gateway(), alive=alive)
            return await run_probes({NAME: BadInputParams(), "second_probe": None}, target)

    first, second = asyncio.run(go())
    assert first.check == NAME and first.error == "RuntimeError: probe bug"
    assert second.check == "second_probe" and second.notes == ["ran"]  # named after its registry key
    score = _score(_run(first))
    assert score.status == "error" and "probe bug" in score.explanation


def test_the_markdown_report_lists_each_exchange() -> None:
    result = _probe(trusting)
    lines = "\n".join(line for line in _dynamic_lines(_run(result)) if NAME in line)
    assert "empty → 500 (a server error)" in lines and "oversized → 500" in lines
