"""Role interviews (issue 18, item 5): no repository, the bank's questions at a level, the same adaptive interview
and the same report; `viva interview --topic … --level …` runs one in the terminal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from interviewer.factory import new_role_session
from interviewer.model import InterviewReport
from interviewer.report import build_report
from interviewer.role import UnknownTopic, build_role_plan, role_topics
from interviewer.role_bank import BANK, LEVELS, TOPICS
from llm.budget import BudgetBook
from rubrics.registry import resolve_rubric

ROOT = Path(__file__).parents[2]
REQUIRED = {"rag_design", "evaluation", "agents", "cost_latency", "security", "scale", "models"}

STRONG = (
    "I would start with 800-token chunks and measure recall@5 on 50 labelled questions, because smaller chunks lost "
    "table headers; the cost is about 40 ms more per query and roughly $0.002 per 1,000 requests, and it fails when "
    "a document is scanned, which we would detect with an alert on empty retrievals."
)
SHALLOW = "I think it depends, basically you follow best practices and it should be robust and scalable."


def test_the_bank_covers_every_topic_at_every_level_with_follow_ups() -> None:
    assert set(TOPICS) == REQUIRED
    for topic in REQUIRED:
        for level in LEVELS:
            asked = [q for q in BANK if q.topic == topic and q.level == level]
            assert asked, (topic, level)
    assert len({q.id for q in BANK}) == len(BANK)
    assert all(len(q.follow_ups) >= 2 and len(q.covers) >= 3 for q in BANK)


@pytest.mark.parametrize("level", LEVELS)
def test_each_levels_rubric_asks_that_levels_questions(level: str) -> None:
    rubric = resolve_rubric(f"ai-engineer-role-{level}")
    assert set(role_topics(rubric)) == REQUIRED
    plan = build_role_plan(rubric)
    by_id = {q.id: q for q in BANK}
    assert {topic.dimension for topic in plan.topics} == REQUIRED
    assert all(by_id[topic.id].level == level for topic in plan.topics)
    assert all(topic.expected_follow_ups == by_id[topic.id].follow_ups for topic in plan.topics)


def test_the_levels_weigh_differently() -> None:
    junior, senior = (resolve_rubric(f"ai-engineer-role-{level}") for level in ("junior", "senior"))
    weight = {
        rubric.rubric.id: {leaf.id: leaf.weight for leaf in rubric.rubric.criteria} for rubric in (junior, senior)
    }
    assert weight["ai-engineer-role-senior"]["scale"] > weight["ai-engineer-role-junior"]["scale"]


def test_topics_narrow_the_interview_and_an_unknown_one_is_refused() -> None:
    rubric = resolve_rubric("ai-engineer-role-senior")
    plan = build_role_plan(rubric, ["security", "scale"])
    assert {topic.dimension for topic in plan.topics} == {"security", "scale"}
    assert "rag_design" not in plan.dimension_weights
    with pytest.raises(UnknownTopic, match="not a topic of ai-engineer-role-senior: chunking"):
        build_role_plan(rubric, ["chunking"])
    with pytest.raises(UnknownTopic, match="not a role interview rubric"):
        build_role_plan(resolve_rubric("ai-engineer-interview"))


def role_interview(answer: str, topics: list[str] | None = None, level: str = "intermediate") -> InterviewReport:
    rubric = resolve_rubric(f"ai-engineer-role-{level}")
    book = BudgetBook()
    session = new_role_session(rubric, topics, book=book, budget_usd=None)

    async def go() -> None:
        await session.start()
        for number in range(40):
            if session.finished:
                break
            await session.answer(f"a{number}", answer)

    asyncio.run(go())
    return build_report(session, rubric, book, "interview:interview", "role interview")


def test_a_strong_candidate_settles_high_and_a_shallow_one_low() -> None:
    strong = role_interview(STRONG, ["rag_design", "cost_latency"])
    shallow = role_interview(SHALLOW, ["rag_design", "cost_latency"])
    for report, level in ((strong, "high"), (shallow, "low")):
        assert report.ended == "settled"
        asked = {d.id: d for d in report.dimensions if d.id in {"rag_design", "cost_latency"}}
        assert all(d.rating == level and d.settled == "confident" for d in asked.values()), asked
        assert all(d.settled == "not asked" for d in report.dimensions if d.id not in asked and d.id != "communication")
    assert (strong.score or 0) > (shallow.score or 0) + 0.5


def test_a_vague_answer_gets_the_questions_own_follow_up() -> None:
    rubric = resolve_rubric("ai-engineer-role-senior")
    session = new_role_session(rubric, ["agents"], book=BudgetBook(), budget_usd=None)
    asyncio.run(session.start())
    assert session.topic is not None
    expected = session.topic.expected_follow_ups[0]
    reply = asyncio.run(session.answer("a1", "We would make the refund tool careful and check things before it runs."))
    assert expected in reply


def test_viva_interview_with_a_topic_needs_no_repository(tmp_path: Path) -> None:
    out = tmp_path / "out"
    answers = f"{STRONG}\n{STRONG}\n{STRONG}\n{STRONG}\n"
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "interview", "--topic", "models", "--level", "junior", "--out", str(out)],
        check=False,
        input=answers,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "API" in done.stdout or "open-weight" in done.stdout
    report = (out / "interview.json").read_text()
    assert '"ai-engineer-role-junior"' in report and '"ended": "settled"' in report
    refused = subprocess.run(
        [sys.executable, "-m", "server.cli", "interview", "--topic", "vibes"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert refused.returncode == 2 and "not a topic of ai-engineer-role-intermediate: vibes" in refused.stderr
