"""The interview report: per-dimension ratings with quotes, strengths, gaps, what to study, contradictions,
the transcript and the cost. JSON (versioned, docs/INTERVIEW.md) and Markdown (everything escaped)."""

from __future__ import annotations

import math

import msgspec

from grader.report.render_markdown import escape_markdown
from interviewer.model import (
    INTERVIEW_REPORT_VERSION,
    DimensionResult,
    InterviewCost,
    InterviewReport,
    StageLatency,
    Turn,
    VoiceSummary,
)
from interviewer.session import InterviewSession
from llm.budget import BudgetBook
from rubrics.loader import LoadedRubric, leaf_paths

STUDY = {
    "failure_analysis": "failure handling: timeouts, retries with backoff, fallbacks, and detecting each failure",
    "tradeoffs": "naming the cost of every choice: latency, money, complexity, quality — with numbers",
    "evaluation_design": "building and checking an eval suite: golden sets, judging non-exact answers, judge agreement",
    "cost_latency": "cost per request and per 1,000 requests, where the time goes, caching and routing",
    "security": "prompt injection (direct and via retrieved documents), leak detection, least privilege for tools",
    "retrieval_design": "chunking, embedding choice, hybrid search and reranking, measuring recall@k",
    "problem_framing": "stating who the users are, what success means, and why an LLM is needed at all",
    "communication": "answering the question asked, concretely, with what you did yourself",
}


def build_report(
    session: InterviewSession,
    rubric: LoadedRubric,
    book: BudgetBook,
    account: str,
    repo: str,
    *,
    low_confidence: float = 0.6,
) -> InterviewReport:
    dimensions = []
    beliefs, settlement = session.beliefs(), session.settlement()
    for path, node in leaf_paths(rubric.rubric):
        found = [a for a in session.assessments if a.dimension == path]
        quotes = list(dict.fromkeys(a.quote for a in found if a.quote))[:3]
        belief = beliefs.get(path)
        # The rating is the belief's most likely level; the score is what the answers earned on average, so a claim
        # the code contradicts (scored 0) still counts for less than a vague answer (interviewer.assess).
        score = sum(a.score for a in found) / len(found) if found else None
        if path not in settlement:
            settled = "rated from every answer" if found else "not asked"
        else:
            settled = settlement[path] or ("open" if found else "not asked")
        dimensions.append(
            DimensionResult(
                path,
                node.title,
                node.weight,
                belief.level if belief is not None else None,
                score,
                quotes,
                len(found),
                confidence=round(belief.confidence, 3) if belief is not None else None,
                settled=settled,
            )
        )
    rated = [d for d in dimensions if d.score is not None]
    total_weight = sum(d.weight for d in rated)
    overall = sum((d.score or 0) * d.weight for d in rated) / total_weight if total_weight else None
    records = book.records_for(account)
    cost = InterviewCost(
        usd=round(sum(r.cost_usd for r in records), 6),
        calls=len(records),
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        models=sorted({r.model for r in records}),
    )
    return InterviewReport(
        schema_version=INTERVIEW_REPORT_VERSION,
        repo=repo,
        rubric={"id": rubric.rubric.id, "version": rubric.rubric.version, "hash": rubric.content_hash},
        score=overall,
        dimensions=dimensions,
        contradictions=session.contradictions,
        transcript=session.transcript,
        cost=cost,
        strengths=[f"{d.title}: {d.quotes[0]}" if d.quotes else d.title for d in rated if d.rating == "high"],
        gaps=[d.title for d in rated if d.rating == "low"]
        + [f"claim not supported by the code: {c.claim}" for c in session.contradictions],
        study=[STUDY.get(d.id, d.title) for d in rated if d.rating != "high"][:5],
        injection_attempts=session.injection_attempts,
        ended=session.ended or "in_progress",
        voice=voice_summary(session.transcript, low_confidence),
        stop_reason=stop_reason(session.ended or "in_progress", dimensions),
    )


STOPS = {
    "settled": "every dimension the interview asks about was settled",
    "time_limit": "the interview reached its time limit",
    "question_limit": "the interview reached its question limit",
    "budget": "the interview reached its spending limit",
    "candidate_silent": "the candidate stopped answering",
    "candidate_left": "the candidate left",
    "model_unavailable": "the interviewing model could not be reached",
    "in_progress": "the interview has not ended",
}


def stop_reason(ended: str, dimensions: list[DimensionResult]) -> str:
    """Why the interview stopped, and how sure it was of each dimension it had asked about."""
    said = STOPS.get(ended, ended)
    confident = [d for d in dimensions if d.settled == "confident"]
    spent = [d for d in dimensions if d.settled == "follow-ups spent"]
    still = [d for d in dimensions if d.settled == "open"]
    parts = [f"{len(confident)} confident"] if confident else []
    if spent:
        parts.append(f"{len(spent)} at their follow-up limit ({', '.join(d.title for d in spent)})")
    if still:
        parts.append(f"{len(still)} still open ({', '.join(d.title for d in still)})")
    return said[0].upper() + said[1:] + (f": {'; '.join(parts)}." if parts else ".")


VOICE_STAGES = ("transcript", "first_token", "first_audio", "end_to_first_audio")


def voice_summary(transcript: list[Turn], low_confidence: float = 0.6) -> VoiceSummary | None:
    spoken = [turn.voice for turn in transcript if turn.role == "candidate" and turn.voice is not None]
    if not spoken:
        return None
    stages = []
    for stage in VOICE_STAGES:
        values = sorted(voice.stages_ms[stage] for voice in spoken if stage in voice.stages_ms)
        if values:
            stages.append(StageLatency(stage, len(values), _percentile(values, 0.5), _percentile(values, 0.95)))
    low = sum(voice.confidence < low_confidence for voice in spoken)
    note = (
        f"{low} of {len(spoken)} spoken answers were recognised with low confidence; the candidate saw each "
        "transcript and could correct it before it was assessed, and ratings rest on the confirmed text."
        if low
        else ""
    )
    return VoiceSummary(
        spoken_answers=len(spoken),
        stages=stages,
        mean_confidence=round(sum(voice.confidence for voice in spoken) / len(spoken), 3),
        low_confidence_answers=low,
        corrected_answers=sum(bool(voice.heard) for voice in spoken),
        note=note,
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 1)


def _confidence_bar(confidence: float | None) -> str:
    """`▰▰▰▰▱ 0.82`: how sure the interview is of a rating, at a glance."""
    if confidence is None:
        return "—"
    filled = round(confidence * 5)
    return "▰" * filled + "▱" * (5 - filled) + f" {confidence:.2f}"


def render_json(report: InterviewReport) -> str:
    return msgspec.json.format(msgspec.json.encode(report).decode(), indent=2) + "\n"


def render_markdown(report: InterviewReport) -> str:
    score = "n/a" if report.score is None else f"{report.score * 100:.0f}%"
    lines = [
        f"# Viva interview — {escape_markdown(report.repo)}",
        "",
        f"**Overall: {score}** · ended: {report.ended} · cost ${report.cost.usd:.4f} ({report.cost.calls} model calls)",
        "",
        escape_markdown(report.stop_reason),
        "",
        "## Dimensions",
        "",
        "| dimension | rating | confidence | answers | settled |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {escape_markdown(d.title)} | {d.rating or 'not assessed'} | {_confidence_bar(d.confidence)} | "
        f"{d.answers} | {d.settled} |"
        for d in report.dimensions
    ]
    for d in report.dimensions:
        if d.quotes:
            lines += ["", f"### {escape_markdown(d.title)}", ""] + [f"> {escape_markdown(q)}" for q in d.quotes]
    if report.contradictions:
        lines += ["", "## Claims the code does not support", ""]
        lines += [
            f'- "{escape_markdown(c.claim)}" — {escape_markdown(c.path)}:{c.line or ""}: '
            f"{escape_markdown(c.explanation)}"
            for c in report.contradictions
        ]
    for title, items in (
        ("Strengths", report.strengths),
        ("Gaps", report.gaps),
        ("Study next", report.study),
        ("Attempts to instruct the interviewer (recorded, not obeyed)", report.injection_attempts),
    ):
        if items:
            lines += ["", f"## {title}", ""] + [f"- {escape_markdown(item)}" for item in items]
    if report.voice is not None:
        voice = report.voice
        lines += [
            "",
            "## Voice",
            "",
            f"{voice.spoken_answers} spoken answers, mean recognition confidence "
            f"{voice.mean_confidence:.2f}, {voice.corrected_answers} corrected by the candidate.",
            "",
        ]
        lines += ["| stage | turns | p50 ms | p95 ms |", "| --- | --- | --- | --- |"]
        lines += [f"| {s.stage} | {s.turns} | {s.p50_ms:.0f} | {s.p95_ms:.0f} |" for s in voice.stages]
        if voice.note:
            lines += ["", voice.note]
    lines += ["", "## Transcript", ""]
    lines += [f"**{turn.role}**: {escape_markdown(turn.text)}" + "\n" for turn in report.transcript]
    return "\n".join(lines).rstrip() + "\n"
