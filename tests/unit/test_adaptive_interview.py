"""Adaptive questioning: a belief per dimension, the next question where weight × uncertainty is largest, a stop
rule, and calibration against simulated candidates of known level who answer the question they are asked."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from grader.model import Evidence
from grader.profile import build_profile
from grader.report.render_markdown import escape_markdown
from interviewer.belief import SETTLE_AT, Belief, belief_of
from interviewer.factory import new_session
from interviewer.model import InterviewPlan, Topic
from interviewer.report import build_report, render_markdown
from interviewer.session import InterviewSession, SessionState
from interviewer.signals import evidence_points, measure, rating_from_points
from interviewer.steer import next_move
from llm.budget import BudgetBook
from rubrics.registry import resolve_rubric
from tests.fixtures import repos
from tests.fixtures.candidates import BANK, LEVELS, SimulatedCandidate

RUBRIC = resolve_rubric("ai-engineer-interview")
HERE = Evidence("app.py", 1, "")


def topic(topic_id: str, dimension: str) -> Topic:
    return Topic(topic_id, dimension, f"Question about {dimension}?", "why", [HERE], ["Another angle?"])


def plan_of(weights: dict[str, float], *, opening: int = 0, follow_ups: int = 3) -> InterviewPlan:
    topics = [topic(f"{dimension}-{n}", dimension) for dimension in weights for n in (1, 2)]
    return InterviewPlan(
        topics=topics,
        rubric_id="r",
        dimension_weights=weights,
        max_follow_ups=dict.fromkeys(weights, follow_ups),
        opening=opening,
    )


# --- the belief ----------------------------------------------------------------------------------------------------


def test_consistent_answers_settle_and_disagreeing_ones_do_not() -> None:
    assert not belief_of([1.0]).settled
    assert belief_of([1.0, 1.0]).settled and belief_of([1.0, 1.0]).level == "high"
    # medium sits between two neighbours, so two medium answers leave more doubt than two high ones
    assert not belief_of([0.6, 0.6]).settled and belief_of([0.6] * 3).settled
    assert belief_of([0.6] * 3).level == "medium"
    assert belief_of([0.2, 0.2]).level == "low"
    # a strong answer and a poor one: not a confident "medium", an open question
    assert belief_of([1.0, 0.2]).confidence < 0.5
    assert belief_of([1.0, 0.6]).confidence < belief_of([1.0, 1.0]).confidence


def test_more_agreeing_evidence_only_raises_confidence() -> None:
    confidences = [belief_of([0.6] * n).confidence for n in range(1, 6)]
    assert confidences == sorted(confidences) and confidences[0] > 1 / 3


# --- where the next question goes ----------------------------------------------------------------------------------


def test_the_next_question_targets_the_largest_weight_times_uncertainty() -> None:
    """Neither the heaviest dimension (already nearly sure) nor the most uncertain one (light) is next: the one
    whose weight × uncertainty is largest is."""
    plan = plan_of({"heavy": 3.5, "light": 0.5, "middle": 1.5})
    beliefs = {
        "heavy": Belief((0.02, 0.1, 0.88)),  # 3.5 × 0.12 = 0.42 (settled: also out)
        "light": Belief(),  # 0.5 × 0.67 = 0.33
        "middle": Belief((0.2, 0.5, 0.3)),  # 1.5 × 0.50 = 0.75
    }
    asked = {"heavy": 2, "middle": 1}
    used = {"heavy-1", "heavy-2", "middle-1"}
    move = next_move(plan, beliefs, asked, used, current=plan.topics[0], follow_up=None)
    assert move.kind == "ask" and move.topic is not None and move.topic.id == "middle-2"
    # less sure about the heavy dimension than its threshold: now it is where the most is to learn
    beliefs["heavy"] = Belief((0.1, 0.4, 0.5))  # 3.5 × 0.5 = 1.75
    move = next_move(plan, beliefs, asked, used, current=plan.topics[0], follow_up=None)
    assert move.kind == "revisit" and move.topic is not None and move.topic.dimension == "heavy"


def test_a_vague_answer_is_followed_up_while_its_dimension_is_open() -> None:
    plan = plan_of({"a": 1.0, "b": 3.0})
    current = plan.topics[0]
    open_move = next_move(plan, {"a": belief_of([0.2])}, {"a": 1}, {"a-1"}, current=current, follow_up="no_numbers")
    assert (open_move.kind, open_move.topic, open_move.reason) == ("follow_up", current, "no_numbers")
    settled = next_move(plan, {"a": belief_of([0.2] * 3)}, {"a": 3}, {"a-1"}, current=current, follow_up="no_numbers")
    assert settled.kind == "ask" and settled.topic is not None and settled.topic.dimension == "b"
    spent = next_move(plan, {"a": belief_of([1.0, 0.2])}, {"a": 4}, {"a-1"}, current=current, follow_up="hedged")
    assert spent.kind == "ask" and spent.topic is not None and spent.topic.dimension == "b"


def test_the_opening_is_asked_in_order_and_the_end_is_when_everything_is_settled() -> None:
    plan = plan_of({"a": 1.0, "b": 3.0}, opening=2)
    first = next_move(plan, {}, {}, set(), current=None, follow_up=None)
    assert first.topic is not None and first.topic.id == "a-1"
    second = next_move(plan, {"a": belief_of([1.0])}, {"a": 1}, {"a-1"}, current=first.topic, follow_up=None)
    assert second.topic is not None and second.topic.id == "a-2", "the opening goes on before b, though b is heavier"
    sure = {"a": belief_of([1.0] * 3), "b": belief_of([0.2] * 3)}
    done = next_move(plan, sure, {"a": 3, "b": 3}, {"a-1", "a-2", "b-1"}, current=plan.topics[2], follow_up=None)
    assert (done.kind, done.reason) == ("close", "settled")


def test_the_simulated_candidates_answers_are_rated_at_their_level() -> None:
    """The calibration below rests on the bank: each answer, read by the code that rates answers, is at the level
    it was written for (written from the rubric's level descriptions, not from the rating code)."""
    wrong = [
        (subject, level, answer[:50])
        for subject, levels in BANK.items()
        for level, answers in levels.items()
        for answer in answers
        if rating_from_points(evidence_points(measure(answer))) != level
    ]
    assert not wrong


# --- the session and its report ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def excellent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("excellent")
    repos.make_excellent_repo(root, git=False)
    return root


@pytest.fixture(scope="module")
def profile(excellent: Path):  # type: ignore[no-untyped-def]
    return build_profile(excellent)


def interview(root: Path, profile, answer, *, clock=None, limit=None) -> InterviewSession:  # type: ignore[no-untyped-def]
    session = new_session(root, profile, RUBRIC, book=BudgetBook(), budget_usd=None)
    if clock is not None:
        session.clock, session.time_limit_s = clock, limit

    async def go() -> None:
        question = await session.start()
        for number in range(60):
            if session.finished:
                break
            question = await session.answer(f"a{number}", answer(question))

    asyncio.run(go())
    return session


def test_an_answer_to_another_question_is_brought_back_to_the_question(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    session = new_session(excellent, profile, RUBRIC, book=BudgetBook(), budget_usd=None)

    async def go() -> tuple[str, str]:
        await session.start()
        assert session.topic is not None and session.topic.dimension == "problem_framing"
        question = session.topic.question
        reply = await session.answer(
            "a1", "We chunk the documents into 600-character windows, embed them and retrieve the top 4 chunks."
        )
        return question, reply

    question, reply = asyncio.run(go())
    assert "different question" in reply and question in reply


def test_consistent_candidates_settle_sooner_than_mixed_ones(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    def questions(noise: float, seed: int) -> int:
        rng = random.Random(seed)
        levels = {subject: rng.choice(LEVELS) for subject in BANK}
        session = interview(excellent, profile, SimulatedCandidate(levels, noise=noise, seed=seed))
        assert session.ended == "settled"
        return sum(turn.role == "interviewer" for turn in session.transcript) - 1  # the closing line is no question

    consistent = [questions(0.0, seed) for seed in range(6)]
    mixed = [questions(0.5, seed) for seed in range(6)]
    assert sum(consistent) / len(consistent) < sum(mixed) / len(mixed), (consistent, mixed)


def test_the_settled_rating_matches_the_candidates_true_level(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    """Simulated candidates of known level per dimension, one answer in five from a neighbouring level: the
    interview's settled rating is the true level in at least 90% of the dimensions it asked about."""
    right = total = 0
    misses = []
    for seed in range(24):
        rng = random.Random(1000 + seed)
        levels = {subject: rng.choice(LEVELS) for subject in BANK}
        session = interview(excellent, profile, SimulatedCandidate(levels, noise=0.2, seed=seed))
        report = build_report(session, RUBRIC, BudgetBook(), "interview:interview", "repo")
        assert report.ended == "settled"
        for dimension in report.dimensions:
            if dimension.id not in levels or dimension.rating is None:
                continue
            total += 1
            right += dimension.rating == levels[dimension.id]
            if dimension.rating != levels[dimension.id]:
                misses.append((seed, dimension.id, levels[dimension.id], dimension.rating, dimension.confidence))
    assert total >= 24 * 6
    assert right / total >= 0.9, (right, total, misses)


def test_the_report_shows_each_dimensions_confidence_and_why_it_stopped(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    levels = dict.fromkeys(BANK, "high")
    session = interview(excellent, profile, SimulatedCandidate(levels))
    report = build_report(session, RUBRIC, BudgetBook(), "interview:interview", "repo")
    asked = [d for d in report.dimensions if d.id in BANK]
    assert all(d.confidence is not None and d.confidence >= SETTLE_AT and d.settled == "confident" for d in asked)
    communication = next(d for d in report.dimensions if d.id == "communication")
    assert communication.settled == "rated from every answer"
    assert report.stop_reason.startswith("Every dimension the interview asks about was settled: 7 confident")
    markdown = render_markdown(report)
    assert (
        escape_markdown(report.stop_reason) in markdown and "| confidence |" in markdown and "confident |" in markdown
    )


def test_the_interview_stops_at_its_time_limit(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]

    def clock() -> float:
        now[0] += 60.0  # each reading of the clock is a minute later: ten readings make ten minutes
        return now[0]

    session = interview(excellent, profile, SimulatedCandidate({}, noise=0.5), clock=clock, limit=600.0)
    assert session.ended == "time_limit"
    report = build_report(session, RUBRIC, BudgetBook(), "interview:interview", "repo")
    assert report.stop_reason.startswith("The interview reached its time limit")
    assert any(d.settled == "open" for d in report.dimensions) or all(d.settled != "" for d in report.dimensions)


def test_an_interview_saved_before_adaptive_questioning_continues(excellent: Path, profile) -> None:  # type: ignore[no-untyped-def]
    """A state saved by the earlier, fixed-order interviewer (no current topic, only its place in the plan)."""
    session = new_session(excellent, profile, RUBRIC, book=BudgetBook(), budget_usd=None)
    asyncio.run(session.start())
    old = SessionState(transcript=list(session.transcript), topic_index=1)
    restored = new_session(excellent, profile, RUBRIC, book=BudgetBook(), budget_usd=None)
    restored.restore(old)
    assert restored.topic == restored.plan.topics[1]
    reply = asyncio.run(restored.answer("a1", BANK["failure_analysis"]["high"][0]))
    assert reply and not restored.finished
