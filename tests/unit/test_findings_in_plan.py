"""Grading findings in every plan (issue 18, item 2): a real grading report of a fixture app (static-only, so no
Docker) feeds the interview, and the interview asks about at least two of its findings, citing the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from grader.pipeline import GradeOptions, grade
from grader.profile import build_profile
from grader.report.model import GradingReport
from grader.scoring import walk
from interviewer.factory import new_session
from interviewer.plan import FINDING_SLOTS, build_plan
from llm.budget import BudgetBook
from rubrics.loader import load_rubric_text
from rubrics.registry import resolve_rubric
from tests.fixtures import repos
from tests.fixtures.personas import PERSONAS

INTERVIEW = resolve_rubric("ai-engineer-interview")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GradingReport]:
    root = repos.make_middling_repo(tmp_path_factory.mktemp("middling") / "repo", git=False)
    report = grade(
        str(root),
        resolve_rubric("ai-engineer-capstone"),
        tmp_path_factory.mktemp("scratch"),
        GradeOptions(allow_local=True, static_only=True),
    )
    return root, report


def weak_leaves(report: GradingReport) -> list:
    return [
        node
        for node, _ in walk(report.criteria)
        if not node.children and node.status == "scored" and node.score is not None and node.score < 0.5
    ]


def test_the_plan_keeps_slots_for_the_heaviest_findings(graded: tuple[Path, GradingReport]) -> None:
    root, report = graded
    weak = weak_leaves(report)
    assert len(weak) >= 2, "the middling fixture has weak leaves to ask about"
    plan = build_plan(build_profile(root), INTERVIEW, report)
    assert len(plan.topics) <= 14  # build_plan's pool: the interview picks from it as it goes (interviewer.steer)
    findings = [topic for topic in plan.topics if topic.id.startswith("finding-")]
    assert len(findings) >= FINDING_SLOTS
    heaviest = sorted(weak, key=lambda node: (-node.share, node.score))[:FINDING_SLOTS]
    assert [topic.id for topic in findings[:FINDING_SLOTS]] == [f"finding-{node.path}" for node in heaviest]
    for topic, node in zip(findings, heaviest, strict=False):
        assert topic.evidence == (node.evidence[:2] or topic.evidence)
        assert node.explanation.rstrip(".")[:40] in topic.question


def test_without_a_report_no_finding_is_invented(graded: tuple[Path, GradingReport]) -> None:
    root, _ = graded
    plan = build_plan(build_profile(root), INTERVIEW)
    assert not [topic for topic in plan.topics if topic.id.startswith("finding-")]


def test_the_interview_asks_about_at_least_two_findings(graded: tuple[Path, GradingReport]) -> None:
    root, report = graded
    session = new_session(root, build_profile(root), INTERVIEW, book=BudgetBook(), report=report)
    answers = PERSONAS["strong"]

    async def go() -> None:
        await session.start()
        for number in range(30):
            if session.finished:
                break
            await session.answer(f"a{number}", answers[number % len(answers)])

    asyncio.run(go())
    asked = {turn.topic_id for turn in session.transcript if turn.role == "interviewer" and turn.topic_id}
    findings = {topic_id for topic_id in asked if topic_id.startswith("finding-")}
    assert len(findings) >= 2, asked


def rubric_with_follow_ups(framing: int, failures: int):  # type: ignore[no-untyped-def]
    """The built-in interview rubric with its own `max_follow_ups` for two dimensions, as a manager edits it."""
    text = (Path(__file__).parents[2] / "rubrics" / "builtin" / "ai-engineer-interview.yaml").read_text()
    text = text.replace(
        '"what success is measured by"]}', f'"what success is measured by"], max_follow_ups: {framing}}}'
    ).replace('"hallucination reports"], max_follow_ups: 3}', f'"hallucination reports"], max_follow_ups: {failures}}}')
    return load_rubric_text(text)


STRONG = (  # specific, with numbers, a cost and a failure mode, and no claim about the code to contradict
    "Our users are 40 on-call engineers; success is a golden-set pass rate above 85%, today 78% against a 60% "
    "baseline. The cost is about 2 s of extra latency per answer, and it fails when the notes are stale."
)
VAGUE = "It works well for our users, it is basically best practice stuff and it scales."


@pytest.mark.parametrize(("framing", "failures"), [(0, 1), (2, 0)])
def test_each_dimension_gets_the_follow_ups_its_rubric_allows(
    graded: tuple[Path, GradingReport], framing: int, failures: int
) -> None:
    """A candidate who answers each dimension well, then vaguely, then well again never lets its belief settle:
    the rubric's `max_follow_ups` is what ends each dimension, after exactly 1 + max_follow_ups questions."""
    root, _ = graded
    rubric = rubric_with_follow_ups(framing, failures)
    session = new_session(root, build_profile(root), rubric, book=BudgetBook())
    answered: dict[str, int] = {}

    async def go() -> None:
        await session.start()
        for number in range(60):
            if session.finished:
                break
            assert session.topic is not None
            dimension = session.topic.dimension
            answered[dimension] = answered.get(dimension, 0) + 1
            await session.answer(f"a{number}", STRONG if answered[dimension] % 2 else VAGUE)

    asyncio.run(go())
    dimension = {topic.id: topic.dimension for topic in session.plan.topics}
    asked: dict[str, int] = {}
    for turn in session.transcript:
        if turn.role == "interviewer" and turn.topic_id:
            asked[dimension[turn.topic_id]] = asked.get(dimension[turn.topic_id], 0) + 1
    assert asked["problem_framing"] == 1 + framing, asked
    assert asked["failure_analysis"] == 1 + failures, asked
    assert session.settlement()["failure_analysis"] == "follow-ups spent"
    assert session.ended == "settled"
