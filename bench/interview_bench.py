"""Interview turn overhead with the offline model: Viva's own work per turn (signals, claim checks, the gate,
budgets, the leak guard, bookkeeping) at 1, 50 and 200 concurrent in-process sessions, each answering after a
random think time of 1–5 s, beside the offline model called alone in the same run. Also memory per session.

Overhead per turn = the turn's wall time minus the time spent inside its model calls (from the budget ledger),
so the model's own cost never hides in the figure. Goal (issue 3): overhead p95 under 15 ms at 200 sessions.
Smoke mode scales think time by 0.01 and runs fewer turns; full mode sleeps for real.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import tracemalloc
from pathlib import Path

from pydantic_ai import Agent

from grader.profile import build_profile
from grader.repo_index import RepoIndex
from interviewer.factory import new_session
from interviewer.offline import offline_interviewer
from llm.budget import BudgetBook
from rubrics.registry import resolve_rubric
from tests.fixtures.personas import STRONG

GOAL_P95_MS = 15.0
REPO = Path(__file__).parents[1] / "examples" / "rag-assistant"


def p(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _session_loop(
    session, turns: int, time_scale: float, rng: random.Random, overheads: list[float], walls: list[float]
) -> None:
    await session.start()
    book = session.interviewer.book
    for number in range(turns):
        if session.finished:
            return
        await asyncio.sleep(rng.uniform(1.0, 5.0) * time_scale)
        before = len(book.ledger)
        started = time.perf_counter()
        await session.answer(f"a{number}", STRONG[number % len(STRONG)])
        wall = time.perf_counter() - started
        in_models = sum(record.latency_s for record in book.ledger[before:])
        walls.append(wall * 1000)
        overheads.append((wall - in_models) * 1000)


async def _model_alone(calls: int, concurrency: int, time_scale: float, rng: random.Random) -> list[float]:
    """The offline model called alone, twice per turn (an interview turn makes two calls), with the same think
    times between turns as the sessions have: the same load, without Viva's work around the calls."""
    agent: Agent[None, str] = Agent(offline_interviewer())
    prompt = (
        '<directive>\n{"kind":"ask","question":"Why?"}\n</directive>\n<candidate_answer>\nbecause\n</candidate_answer>'
    )
    timings: list[float] = []

    async def one() -> None:
        for _ in range(calls):
            await asyncio.sleep(rng.uniform(1.0, 5.0) * time_scale)
            started = time.perf_counter()
            await agent.run(prompt)
            await agent.run(prompt)
            timings.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return timings


def run(mode: str) -> bool:
    smoke = mode == "smoke"
    time_scale = 0.01 if smoke else 1.0
    turns = 2 if smoke else 5
    levels = [1, 20] if smoke else [1, 50, 200]
    profile = build_profile(REPO)
    rubric = resolve_rubric("ai-engineer-interview")
    index = RepoIndex.build(REPO)
    met = True
    print(f"think time 1-5 s x {time_scale}, {turns} answered turns per session")
    for sessions in levels:
        # one book per session, so a turn's ledger holds only its own model calls
        batch = [
            new_session(REPO, profile, rubric, book=BudgetBook(), index=index, interview_id=f"s{i}", budget_usd=None)
            for i in range(sessions)
        ]
        overheads: list[float] = []
        walls: list[float] = []
        rng = random.Random(sessions)
        started = time.perf_counter()

        async def everyone(batch=batch, overheads=overheads, walls=walls, rng=rng) -> None:
            await asyncio.gather(*(_session_loop(s, turns, time_scale, rng, overheads, walls) for s in batch))

        asyncio.run(everyone())
        elapsed = time.perf_counter() - started
        alone = asyncio.run(_model_alone(turns, sessions, time_scale, random.Random(sessions)))
        print(
            f"{sessions:>4} sessions: turn p50 {p(walls, 50):6.2f} ms p95 {p(walls, 95):6.2f} ms | "
            f"overhead p50 {p(overheads, 50):6.2f} ms p95 {p(overheads, 95):6.2f} ms | "
            f"model alone p50 {p(alone, 50):5.2f} ms p95 {p(alone, 95):5.2f} ms | {elapsed:5.1f} s wall"
        )
        if sessions == max(levels) and not smoke:
            met = p(overheads, 95) < GOAL_P95_MS
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = [new_session(REPO, profile, rubric, book=BudgetBook(), index=index, interview_id=f"m{i}") for i in range(50)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"memory per session (before any turn, index shared): {grown / len(kept) / 1024:.1f} KiB")
    if not smoke:
        print("goal met" if met else "GOAL MISSED")
    return met
