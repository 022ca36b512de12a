"""What managers do with results: compare a position's candidates, override a score with a reason (history kept,
the original visible), export CSV; and what candidates ask for: a human review."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import func
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.model import Score
from grader.report.model import GradingReport
from grader.scoring import ScoredRubric, score_rubric, walk
from server.db.models import (
    Candidacy,
    Interview,
    ReviewRequest,
    RubricVersion,
    ScoreOverride,
    Submission,
    User,
    utcnow,
)
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, TooMany
from server.mail import Mailer
from server.schemas import ID_MAX
from server.services.catalogue import loaded, managed_position
from server.services.paging import paged
from server.services.submissions import hold_limits, visible_submission
from server.settings import Settings

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_AFTER_SEPARATOR = re.compile(r"[,;\t\r\n](?=[ ]*[=+\-@\t\r])")
"""A field or line separator before a formula: a spreadsheet that splits on `;` or tabs (or ignores the quotes)
would start a cell there."""


async def override(
    db: AsyncSession, manager: User, submission_id: int, *, path: str, score: float, reason: str
) -> ScoreOverride:
    if manager.role not in ("manager", "admin"):
        raise Forbidden("only managers override scores")
    submission = await visible_submission(db, manager, submission_id)
    if not 0.0 <= score <= 1.0:
        raise InvalidInput("a score is between 0 and 1", {"field": "score"})
    if len(reason.strip()) < 5:
        raise InvalidInput("say why (at least a few words)", {"field": "reason"})
    report = _report(submission)
    leaf = next((node for node, _ in walk(report.criteria) if node.path == path), None)
    if leaf is None or leaf.children:
        raise InvalidInput(f"{path!r} is not a leaf criterion of this report", {"field": "path"})
    row = ScoreOverride(
        submission_id=submission_id,
        path=path,
        original=leaf.score,
        score=score,
        reason=reason.strip(),
        by_user=manager.id or 0,
    )
    db.add(row)
    await db.flush()
    effective = await effective_scores(db, submission)
    submission.score = effective.score
    return row


async def history(
    db: AsyncSession, user: User, submission_id: int, *, limit: int, offset: int
) -> tuple[list[ScoreOverride], int]:
    await visible_submission(db, user, submission_id)
    query = select(ScoreOverride).where(ScoreOverride.submission_id == submission_id)
    return await paged(db, query, col(ScoreOverride.id), limit=limit, offset=offset)


async def effective_scores(db: AsyncSession, submission: Submission) -> ScoredRubric:
    """The report's scores with the latest override of each leaf applied, parents recomputed."""
    report = _report(submission)
    rubric_row = await db.get(RubricVersion, submission.rubric_version_id)
    if rubric_row is None:
        raise NotFound("the rubric version is gone")
    overrides = {
        row.path: row
        for row in (
            await db.exec(
                select(ScoreOverride)
                .where(ScoreOverride.submission_id == submission.id)
                .order_by(col(ScoreOverride.id))
            )
        ).all()
    }
    leaves: dict[str, Score] = {}
    for node, _ in walk(report.criteria):
        if node.children:
            continue
        basis = node.basis[0] if node.basis else "static"
        changed = overrides.get(node.path)
        if changed is not None:
            was = "not scored" if changed.original is None else f"{changed.original:.2f}"
            leaves[node.path] = Score.scored(
                changed.score, f"Set by a manager: {changed.reason} (was {was})", basis=basis
            )
        elif node.status == "scored" and node.score is not None:
            leaves[node.path] = Score.scored(node.score, node.explanation, list(node.evidence), basis=basis)
        else:
            leaves[node.path] = Score(status=node.status, explanation=node.explanation, basis=basis)
    return score_rubric(loaded(rubric_row).rubric, leaves)


async def position_candidates(
    db: AsyncSession, manager: User, position_id: int, *, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One row per candidate who joined (a page of them, or all): their latest submission's scores (overrides
    applied) and interview; and how many joined."""
    position = await managed_position(db, manager, position_id)
    rows = []
    query = select(Candidacy).where(Candidacy.position_id == position.id)
    joined, total = await paged(db, query, col(Candidacy.id), limit=limit or ID_MAX, offset=offset)
    labels: dict[int, str] = {}
    for candidacy in joined:
        candidate = await db.get(User, candidacy.candidate_id)
        if candidate is None:
            continue
        theirs = (
            await db.exec(
                select(Submission)
                .where(Submission.position_id == position.id, Submission.candidate_id == candidate.id)
                .options(defer(Submission.report))  # type: ignore[arg-type]
                .order_by(col(Submission.id).desc())
            )
        ).all()
        latest_by_version: dict[int, Submission] = {}
        for submission in theirs:
            latest_by_version.setdefault(submission.rubric_version_id, submission)
        results = [await _result(db, submission, labels) for submission in latest_by_version.values()]
        results.sort(key=lambda result: result["rubric_version_id"])
        latest = next((result for result in results if theirs and result["submission_id"] == theirs[0].id), None)
        rows.append(
            {
                "candidate_id": candidate.id,
                "name": candidate.name,
                "email": candidate.email,
                **(latest or _NOT_SUBMITTED),
                "results": results,
            }
        )
    return rows, total


_NOT_SUBMITTED: dict[str, Any] = {
    "submission_id": None,
    "status": "not submitted",
    "score": None,
    "coverage": None,
    "criteria": {},
    "overridden": False,
    "interview_score": None,
    "rubric_version_id": None,
    "rubric": "",
}


async def _result(db: AsyncSession, submission: Submission, labels: dict[int, str]) -> dict[str, Any]:
    """One submission's standing: scores with overrides applied, coverage, the interview's score."""
    version_id = submission.rubric_version_id
    if version_id not in labels:
        rubric = await db.get(RubricVersion, version_id)
        labels[version_id] = f"{rubric.key} v{rubric.version}" if rubric else f"version {version_id}"
    result: dict[str, Any] = {
        **_NOT_SUBMITTED,
        "submission_id": submission.id,
        "status": submission.status,
        "rubric_version_id": version_id,
        "rubric": labels[version_id],
    }
    # The list deferred the report; load it for every status (a failed or cancelled grading may keep one), since a
    # deferred attribute read without loading would be implicit I/O, which async sessions refuse.
    await db.refresh(submission, ["report"])
    if submission.report is not None:
        effective = await effective_scores(db, submission)
        result["score"], result["coverage"] = effective.score, effective.coverage
        result["criteria"] = {node.path: node.score for node in effective.criteria}
        result["overridden"] = bool(
            (await db.exec(select(ScoreOverride).where(ScoreOverride.submission_id == submission.id))).first()
        )
        result["interview_score"] = await _interview_score(db, submission.id or 0)
    return result


def candidates_csv(rows: list[dict[str, Any]]) -> str:
    """CSV for a spreadsheet, one line per candidate and rubric version: every cell that a spreadsheet would read as a
    formula is made plain text."""
    lines = [(row, result) for row in rows for result in (row.get("results") or [row])]
    criteria = sorted({path for _, result in lines for path in result["criteria"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)  # a `;` or tab inside a cell stays inside it
    header = ["name", "email", "rubric", "status", "score", "coverage", *criteria, "interview", "overridden"]
    writer.writerow([_cell(name) for name in header])  # criterion paths come from a manager's rubric
    for row, result in lines:  # one line per candidate and rubric version, as the comparison page shows them
        values = [row["name"], row["email"], result["rubric"], result["status"], result["score"], result["coverage"]]
        values += [result["criteria"].get(path) for path in criteria]
        values += [result["interview_score"], "yes" if result["overridden"] else "no"]
        writer.writerow([_cell(value) for value in values])
    return buffer.getvalue()


async def request_review(
    db: AsyncSession, mailer: Mailer, settings: Settings, candidate: User, submission_id: int, *, message: str
) -> ReviewRequest:
    """A candidate asks for a human review; the organisation's managers are mailed. A submission has one open request
    at a time (asking again is a 409 and mails nobody), and a candidate makes `per_candidate_per_hour` at most."""
    submission = await visible_submission(db, candidate, submission_id)
    if submission.candidate_id != candidate.id:
        raise Forbidden("only the candidate asks for a review of their result")
    await hold_limits(db, submission.candidate_id)
    await _check_review_limits(db, settings, submission)
    request = ReviewRequest(
        submission_id=submission_id, candidate_id=submission.candidate_id, message=message.strip()[:4000]
    )
    db.add(request)
    await db.flush()
    if submission.organisation_id is not None:
        managers = (
            await db.exec(
                select(User).where(User.organisation_id == submission.organisation_id, User.role == "manager")
            )
        ).all()
        for manager in managers:
            await mailer.send(
                db,
                manager.email,
                "A candidate asks for a human review",
                f"{candidate.name or candidate.email} asks for a review of submission {submission_id}:\n\n"
                f"{request.message}\n",
            )
    return request


async def _check_review_limits(db: AsyncSession, settings: Settings, submission: Submission) -> None:
    pending = (
        await db.exec(
            select(ReviewRequest).where(
                ReviewRequest.submission_id == submission.id, col(ReviewRequest.resolved_at).is_(None)
            )
        )
    ).first()
    if pending is not None:
        raise Conflict(
            f"you asked for a review of this result on {pending.created_at:%Y-%m-%d %H:%M} UTC and it is still open; "
            "the managers were told then",
            {"review_request_id": pending.id},
        )
    recent = (
        select(func.count())
        .select_from(ReviewRequest)
        .where(
            ReviewRequest.candidate_id == submission.candidate_id,
            col(ReviewRequest.created_at) > utcnow() - timedelta(hours=1),
        )
    )
    limit = settings.reviews.per_candidate_per_hour
    if (await db.exec(recent)).one() >= limit:
        raise TooMany(f"you have asked for {limit} review(s) in the last hour (the limit); try again later")


def _cell(value: Any) -> str:
    """Plain text for any spreadsheet: a cell that starts like a formula, or holds a separator before one, gets a
    `'` in front, and so does every such piece after a separator (`a;=1+1` becomes `'a;'=1+1`)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if not text.lstrip(" ").startswith(FORMULA_START) and not FORMULA_AFTER_SEPARATOR.search(text):
        return text
    return "'" + FORMULA_AFTER_SEPARATOR.sub(lambda found: found.group() + "'", text)


def _report(submission: Submission) -> GradingReport:
    if submission.report is None:
        raise InvalidInput(f"the grading is {submission.status}: there is no report yet")
    return msgspec.json.decode(submission.report, type=GradingReport)


async def _interview_score(db: AsyncSession, submission_id: int) -> float | None:
    finished = (
        await db.exec(
            select(Interview)
            .where(Interview.submission_id == submission_id, Interview.status == "finished")
            .order_by(col(Interview.id).desc())
        )
    ).first()
    if finished is None or finished.report is None:
        return None
    score = json.loads(finished.report).get("score")
    return float(score) if isinstance(score, (int, float)) else None
