"""A candidate's pages: home (their work, and what the AI does with it) and submitting a repository."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from interviewer.role_bank import TOPICS
from server.api.accounts import AI_NOTICE
from server.db.models import Candidacy, Interview, Position, Submission, User
from server.pages.render import page_opt, render
from server.services.paging import paged
from server.web import state_of

CANDIDATE = page_opt("candidate")
LISTED = 50


@get("/home", opt=CANDIDATE, include_in_schema=False)
async def home_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    submissions, submitted = await paged(
        db,
        select(Submission).where(Submission.candidate_id == user.id),
        col(Submission.id).desc(),
        limit=LISTED,
        offset=0,
    )
    interviews, _ = await paged(
        db, select(Interview).where(Interview.candidate_id == user.id), col(Interview.id).desc(), limit=LISTED, offset=0
    )
    positions = (
        await db.exec(
            select(Position)
            .join(Candidacy, col(Candidacy.position_id) == col(Position.id))
            .where(Candidacy.candidate_id == user.id)
            .order_by(col(Position.id))
        )
    ).all()
    retention = state_of(request).settings.retention
    return render(
        request,
        "candidate/home.html.j2",
        submissions=submissions,
        submitted=submitted,
        interviews=interviews,
        positions=positions,
        notice=AI_NOTICE,
        retention=retention,
        role_topics=list(TOPICS.items()),
    )


@get("/submit", opt=CANDIDATE, include_in_schema=False)
async def submit_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    positions = (
        await db.exec(
            select(Position)
            .join(Candidacy, col(Candidacy.position_id) == col(Position.id))
            .where(Candidacy.candidate_id == user.id)
            .order_by(col(Position.id))
        )
    ).all()
    settings = state_of(request).settings.submissions
    return render(
        request,
        "candidate/submit.html.j2",
        positions=positions,
        hosts=settings.hosts,
        max_archive_mb=settings.max_archive_mb,
        notice=AI_NOTICE,
    )


ROUTES = [home_page, submit_page]
