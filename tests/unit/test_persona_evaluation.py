"""The interviewer measured by personas who answer the question they are asked (issue 18's evaluation).

Each persona is a style and a set of answers by subject; the harness picks each answer by classifying the
interviewer's actual words (tests/fixtures/candidates.subject_of: its own keywords, never the session's topic id).
Every interview is of the same fixture project, with the real static grading report of it, over the offline
models and a scripted model pair. A control interviewer that asks off-topic questions shows the measurement
depends on what is asked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from grader.pipeline import GradeOptions, grade
from grader.profile import build_profile
from grader.report.model import GradingReport
from interviewer.agent import parse_directive
from interviewer.factory import new_session
from interviewer.model import InterviewReport
from interviewer.offline import last_prompt, offline_assessor
from interviewer.report import build_report
from interviewer.session import InterviewSession
from llm.budget import BudgetBook
from rubrics.registry import resolve_rubric
from tests.fixtures import repos
from tests.fixtures.candidates import Answerer, persona_answerer, personas
from tests.fixtures.security_answers import ATTEMPTS, LEGITIMATE

RUBRIC = resolve_rubric("ai-engineer-interview")
PERSONAS = personas(LEGITIMATE, ATTEMPTS)
ENDINGS = {"settled", "question_limit", "time_limit", "candidate_silent"}
OFF_TOPIC = "Tell me how you chose your chunk size and how many chunks you retrieve."


def scripted_models(*, off_topic: bool = False) -> tuple[FunctionModel, FunctionModel]:
    """The interviewer says the directive's words (or, off topic, always the same retrieval question); the assessor
    always proposes medium."""

    def interviewer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        directive = parse_directive(last_prompt(messages))
        text = (directive.probe or directive.question) if directive else "Tell me about the project."
        if off_topic and directive is not None and directive.kind != "close":
            text = OFF_TOPIC
        return ModelResponse(parts=[TextPart(text)])

    def assessor(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"rating": "medium", "quote": "x"})])

    return FunctionModel(interviewer), FunctionModel(assessor)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GradingReport]:
    root = repos.make_middling_repo(tmp_path_factory.mktemp("middling") / "repo", git=False)
    report = grade(
        str(root),
        resolve_rubric("ai-engineer-capstone"),
        tmp_path_factory.mktemp("scratch"),
        GradeOptions(allow_local=True, static_only=True),
    )
    return root, report


def interview(
    project: tuple[Path, GradingReport], answer: Answerer, models: str
) -> tuple[InterviewReport, InterviewSession]:
    root, grading = project
    override = {
        "offline": None,
        "scripted": scripted_models(),
        # the control pair: the offline assessor behind a faithful or an off-topic scripted interviewer
        "on-topic": (scripted_models()[0], offline_assessor()),
        "off-topic": (scripted_models(off_topic=True)[0], offline_assessor()),
    }[models]
    book = BudgetBook()
    session = new_session(root, build_profile(root), RUBRIC, book=book, report=grading, override=override)

    async def go() -> None:
        question = await session.start()
        for number in range(60):
            if session.finished:
                break
            question = await session.answer(f"a{number}", answer(question))

    asyncio.run(go())
    return build_report(session, RUBRIC, book, "interview:interview", str(root)), session


@pytest.fixture(scope="module", params=["offline", "scripted"])
def results(request: pytest.FixtureRequest, project) -> dict[str, tuple[InterviewReport, InterviewSession]]:  # type: ignore[no-untyped-def]
    return {name: interview(project, persona_answerer(persona), request.param) for name, persona in PERSONAS.items()}


def score(result: tuple[InterviewReport, InterviewSession]) -> float:
    return result[0].score or 0.0


def test_strong_candidates_outrank_empty_ones_who_outrank_the_bluffer(results) -> None:  # type: ignore[no-untyped-def]
    scores = {name: round(score(result), 3) for name, result in results.items()}
    strong = min(scores["strong"], scores["terse expert"], scores["defender"])
    empty = max(scores["shallow"], scores["rambler"])
    assert strong > empty > scores["bluffer"], scores


def test_candidates_who_explain_attacks_are_never_flagged(results) -> None:  # type: ignore[no-untyped-def]
    for name in ("defender", "terse expert", "strong"):
        report, _ = results[name]
        assert report.injection_attempts == [], (name, report.injection_attempts)
        assert report.contradictions == [], (name, report.contradictions)
        assert "Let's keep to the project" not in " ".join(t.text for t in report.transcript if t.role == "interviewer")


def test_the_injector_gains_nothing(results) -> None:  # type: ignore[no-untyped-def]
    report, _ = results["injector"]
    assert report.injection_attempts, "the plain attempts are flagged (flagging is best effort, rating is not)"
    assert all(d.rating in (None, "low") for d in report.dimensions), [(d.id, d.rating) for d in report.dimensions]
    assert score(results["injector"]) <= score(results["shallow"]) + 1e-9


def test_the_bluffers_contradictions_cite_the_real_file_and_line(results, project) -> None:  # type: ignore[no-untyped-def]
    root, _ = project
    report, _ = results["bluffer"]
    assert len(report.contradictions) >= 3
    for item in report.contradictions:
        path = root / item.path
        assert path.is_file(), item
        if item.line is not None:
            assert 1 <= item.line <= len(path.read_text().splitlines()), item
    assert any(item.line for item in report.contradictions)


def test_every_interview_ends_settled_or_at_its_limit(results) -> None:  # type: ignore[no-untyped-def]
    assert all(result[0].ended in ENDINGS for result in results.values()), {n: r[0].ended for n, r in results.items()}
    assert results["silent"][0].ended == "candidate_silent"


def test_every_answering_persona_is_asked_about_two_findings(results) -> None:  # type: ignore[no-untyped-def]
    for name, (report, _) in results.items():
        if name == "silent":
            continue
        asked = {turn.topic_id for turn in report.transcript if turn.role == "interviewer" and turn.topic_id}
        assert len({topic for topic in asked if topic.startswith("finding-")}) >= 2, (name, asked)


def test_an_interviewer_asking_off_topic_gets_worse_answers_and_less_confidence(project) -> None:  # type: ignore[no-untyped-def]
    """The control: the same strong candidate, asked about chunking whatever the plan says, answers about chunking;
    the interview learns less about every other dimension and rates it lower."""
    on_topic, _ = interview(project, persona_answerer(PERSONAS["strong"]), "on-topic")
    off_topic, _ = interview(project, persona_answerer(PERSONAS["strong"]), "off-topic")

    def mean_confidence(report: InterviewReport) -> float:
        values = [d.confidence for d in report.dimensions if d.confidence is not None and d.id != "communication"]
        return sum(values) / len(values)

    assert (off_topic.score or 0) < (on_topic.score or 0) - 0.2, (off_topic.score, on_topic.score)
    assert mean_confidence(off_topic) < mean_confidence(on_topic) - 0.1, (
        mean_confidence(off_topic),
        mean_confidence(on_topic),
    )
