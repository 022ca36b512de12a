"""Running judge leaves: ask each voting model for cited claims, verify every citation, keep an aspect when a
majority of votes verified it, and compute the score by code from the verified aspects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.checks.registry import guarded_async
from grader.judge.agent import JudgeOutput, documentation, judge_agent, judge_prompt
from grader.judge.aspects import ASPECTS
from grader.judge.offline import OfflineJudge
from grader.judge.verify import verify_citation
from grader.model import Evidence, Score
from llm.errors import BudgetExceeded, NoModelAvailable
from llm.metered import MeteredCaller
from rubrics.catalogue import JudgeParams

if TYPE_CHECKING:
    from pydantic_ai.models import Model


async def run_judge_check(
    check: str, params: JudgeParams, root: Path, voters: list[MeteredCaller], payers: list[str]
) -> Score:
    """Run one judge leaf. A crash inside the judge is Viva's bug: it becomes status "error", never a 0."""
    return await guarded_async(check, "judge", lambda: judge_leaf(check, params, root, voters, payers))


async def judge_leaf(
    check: str, params: JudgeParams, root: Path, voters: list[MeteredCaller], payers: list[str]
) -> Score:
    aspects = ASPECTS.get(check)
    if not aspects:
        return Score.not_run(f"The judge has no aspects for {check!r} in this version.", basis="judge")
    docs = documentation(root)
    if not docs:
        return Score.scored(0.0, "No README or design documents to judge.", basis="judge")
    prompt = judge_prompt(check, aspects, docs)
    by_id = {aspect.id: aspect for aspect in aspects}
    votes: Counter[str] = Counter()
    evidence: dict[str, Evidence] = {}
    dropped: list[str] = []
    for number in range(params.votes):
        caller = voters[number % len(voters)]

        async def call(model: Model, limit: int = caller.max_output_tokens) -> Any:
            if isinstance(model, OfflineJudge):
                return _answered_offline(model, prompt)
            from pydantic_ai.usage import UsageLimits  # noqa: PLC0415 - loads with the first real model call

            return await judge_agent().run(
                prompt, model=model, usage_limits=UsageLimits(request_limit=3), model_settings={"max_tokens": limit}
            )

        try:
            result = await caller.run("judge_leaf", payers, len(prompt), call)
        except (BudgetExceeded, NoModelAvailable) as error:
            return Score.not_run(f"The judge could not run: {error}", basis="judge")
        output: JudgeOutput = result.output
        verified_now: set[str] = set()
        for claim in output.claims:
            aspect = by_id.get(claim.aspect)
            if aspect is None or claim.aspect in verified_now:
                continue
            cited, why = verify_citation(root, claim.path, claim.line, claim.quote, aspect)
            if cited is None:
                dropped.append(f"{claim.aspect} at {claim.path}:{claim.line}: {why}")
                continue
            verified_now.add(claim.aspect)
            evidence.setdefault(claim.aspect, Evidence(claim.path, claim.line, cited, f"judge: {claim.aspect}"))
        votes.update(verified_now)
    kept = [aspect.id for aspect in aspects if votes[aspect.id] * 2 > params.votes]
    missing = [aspect.id for aspect in aspects if aspect.id not in kept]
    value = len(kept) / len(aspects)
    if len(kept) < min(params.min_citations, len(aspects)):
        value = 0.0
    text = f"Verified {len(kept)} of {len(aspects)} aspects ({', '.join(kept) or 'none'})"
    text += f"; not shown: {', '.join(missing)}" if missing else ""
    if dropped:
        text += f"; {len(dropped)} claim(s) dropped because their citation did not hold (e.g. {dropped[0]})"
    if params.votes > 1:
        text += f"; majority of {params.votes} votes"
    return Score.scored(value, text + ".", [evidence[a] for a in kept if a in evidence], basis="judge")


@dataclass(frozen=True)
class _Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class _OfflineResult:
    """What an agent run returns, as much of it as the judge and the meter read."""

    output: JudgeOutput
    usage: _Usage


def _answered_offline(judge: OfflineJudge, prompt: str) -> _OfflineResult:
    """The offline judge's answer, validated as a model's would be; tokens estimated at four characters each."""
    output = JudgeOutput.model_validate({"claims": judge.claims(prompt)})
    return _OfflineResult(output, _Usage(len(prompt) // 4 + 50, len(output.model_dump_json()) // 4))
