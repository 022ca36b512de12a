"""Managers compare candidates, override scores with a reason and export CSV; candidates ask for a human review
and delete their data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Submission, User
from server.schemas import Limit, Offset, Page, PathId
from server.services import retention, reviews, submissions
from server.web import state_of

USER, CANDIDATE, MANAGER = ({"access": level} for level in ("user", "candidate", "manager"))


class NewOverride(msgspec.Struct, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(max_length=200)]
    score: float
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class OverrideOut(msgspec.Struct):
    id: int
    path: str
    original: float | None
    score: float
    reason: str
    by_user: int
    created_at: datetime


class ReviewRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


@get("/api/positions/{position_id:int}/candidates", opt=MANAGER)
async def candidates(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    position_id: PathId,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[dict[str, Any]]:
    """The position's candidates side by side, in the order they joined: scores per criterion (overrides applied),
    coverage, interview."""
    rows, total = await reviews.position_candidates(db, user, position_id, limit=limit, offset=offset)
    return Page(rows, total, limit, offset)


@get("/api/positions/{position_id:int}/candidates.csv", opt=MANAGER)
async def candidates_csv(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], position_id: PathId
) -> Response[str]:
    rows, _ = await reviews.position_candidates(db, user, position_id)
    text = reviews.candidates_csv(rows)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="position-{position_id}.csv"'},
    )


@post("/api/submissions/{submission_id:int}/overrides", opt=MANAGER, status_code=201)
async def add_override(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
    data: JSONBody[NewOverride],
) -> OverrideOut:
    row = await reviews.override(db, user, submission_id, path=data.path, score=data.score, reason=data.reason)
    return OverrideOut(row.id or 0, row.path, row.original, row.score, row.reason, row.by_user, row.created_at)


@get("/api/submissions/{submission_id:int}/overrides", opt=USER)
async def list_overrides(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[OverrideOut]:
    """Every change a manager made to this result, oldest first; the candidate sees them too."""
    rows, total = await reviews.history(db, user, submission_id, limit=limit, offset=offset)
    items = [
        OverrideOut(row.id or 0, row.path, row.original, row.score, row.reason, row.by_user, row.created_at)
        for row in rows
    ]
    return Page(items, total, limit, offset)


@get("/api/submissions/{submission_id:int}/scores", opt=USER)
async def effective_scores(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], submission_id: PathId
) -> dict[str, Any]:
    """The score tree with overrides applied (the report keeps the original)."""
    submission = await submissions.visible_submission(db, user, submission_id)
    scored = await reviews.effective_scores(db, submission)
    return msgspec.to_builtins(scored)  # type: ignore[no-any-return]


@post("/api/submissions/{submission_id:int}/review-request", opt=CANDIDATE, status_code=201)
async def review_request(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
    data: JSONBody[ReviewRequestIn],
) -> dict[str, Any]:
    """Ask for a human to review this result; the organisation's managers are mailed. One open request per result
    (asking again is a 409), and a few an hour per candidate (VIVA_REVIEWS_PER_CANDIDATE_PER_HOUR; then 429)."""
    state = state_of(request)
    row = await reviews.request_review(db, state.mailer, state.settings, user, submission_id, message=data.message)
    return {"id": row.id, "submission_id": row.submission_id, "created_at": row.created_at}


@delete("/api/me/data", opt=USER, status_code=204)
async def delete_my_data(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> None:
    """A candidate deletes everything Viva holds from their work: submissions, reports, interviews and their
    transcripts, the kept code. The account stays (delete it by asking an admin)."""
    settings = state_of(request).settings
    mine = (await db.exec(select(Submission).where(Submission.candidate_id == user.id))).all()
    for submission in mine:
        interview_ids = await submissions.delete(db, user, submission.id or 0)
        retention.forget_files(settings, submission.id or 0, interview_ids)


ROUTES = [candidates, candidates_csv, add_override, list_overrides, effective_scores, review_request, delete_my_data]
