"""A hiring manager's pages: positions, a position's candidates side by side, rubrics (editor, versions, diff), and
the admin's outbox."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy import or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Candidacy, Job, OutboxMail, Position, RubricVersion, User
from server.errors import Forbidden
from server.jobs.engine import living_hosts
from server.pages.render import page_opt, render
from server.schemas import ID_MAX, PathId
from server.services import batches, catalogue, reviews
from server.web import state_of

MANAGER, ADMIN = page_opt("manager"), page_opt("admin")

NEW_RUBRIC = """id: my-rubric
version: 1
title: My rubric
criteria:
  - id: evals
    title: Has an eval suite that runs
    weight: 2
    check: {kind: static, name: eval_case_count, params: {min_cases: 20}}
  - id: docs
    title: Documents its trade-offs
    weight: 1
    check: {kind: judge, name: tradeoffs_documented}
"""


@get("/manage", opt=MANAGER, include_in_schema=False)
async def dashboard_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    query = (
        select(Position)
        if user.role == "admin"
        else select(Position).where(Position.organisation_id == user.organisation_id)
    )
    positions = (await db.exec(query.order_by(col(Position.id).desc()))).all()
    counts: dict[int, int] = {}
    for position in positions:
        joined = await db.exec(select(func.count()).select_from(Candidacy).where(Candidacy.position_id == position.id))
        counts[position.id or 0] = int(joined.one())
    rubrics = await _rubrics(db, user)
    return render(request, "manager/dashboard.html.j2", positions=positions, counts=counts, rubrics=rubrics)


@get("/positions/{position_id:int}", opt=MANAGER, include_in_schema=False)
async def position_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User], position_id: PathId
) -> Response[str]:
    position = await catalogue.managed_position(db, user, position_id)
    rows, _ = await reviews.position_candidates(db, user, position_id)
    criteria = sorted({path for row in rows for result in row["results"] for path in result["criteria"]})
    rubric = await db.get(RubricVersion, position.rubric_version_id)
    return render(
        request,
        "manager/position.html.j2",
        position=position,
        rows=rows,
        criteria=criteria,
        rubric=rubric,
        request_base=state_of(request).settings.server.public_url.rstrip("/"),
        batches=(await batches.batch_progress(db, position_id))[0],
        attestation=batches.ATTESTATION,
    )


@get("/rubrics", opt=MANAGER, include_in_schema=False)
async def rubrics_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    grouped: dict[str, list[RubricVersion]] = {}
    for row in await _rubrics(db, user):
        grouped.setdefault(row.key, []).append(row)
    return render(request, "manager/rubrics.html.j2", grouped=grouped)


@get("/rubrics/new", opt=MANAGER, include_in_schema=False)
async def new_rubric_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "manager/rubric_editor.html.j2", base=None, source=NEW_RUBRIC, versions=[])


@get("/rubrics/{version_id:int}", opt=MANAGER, include_in_schema=False)
async def rubric_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User], version_id: PathId
) -> Response[str]:
    """A version in the editor. Saving never changes it: it makes the next version."""
    row = await catalogue.rubric_version(db, user, version_id)
    versions = [other for other in await _rubrics(db, user) if other.key == row.key]
    return render(request, "manager/rubric_editor.html.j2", base=row, source=row.source, versions=versions)


@get("/rubrics/diff", opt=MANAGER, include_in_schema=False)
async def rubric_diff_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    before: Annotated[int, QueryParameter(name="a", ge=1, le=ID_MAX)],
    after: Annotated[int, QueryParameter(name="b", ge=1, le=ID_MAX)],
) -> Response[str]:
    old = await catalogue.rubric_version(db, user, before)
    new = await catalogue.rubric_version(db, user, after)
    difference = catalogue.diff(old, new)
    versions = [other for other in await _rubrics(db, user) if other.key in (old.key, new.key)]
    lines = [(_line_kind(line), line) for line in difference["unified"].splitlines()]
    return render(
        request, "manager/rubric_diff.html.j2", old=old, new=new, diff=difference, lines=lines, versions=versions
    )


@get("/admin/outbox", opt=ADMIN, include_in_schema=False)
async def outbox_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    if user.role != "admin":
        raise Forbidden("admins only")
    mails = (await db.exec(select(OutboxMail).order_by(col(OutboxMail.id).desc()).limit(100))).all()
    return render(request, "manager/outbox.html.j2", mails=mails)


@get("/admin/workers", opt=ADMIN, include_in_schema=False)
async def workers_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], user: NamedDependency[User]
) -> Response[str]:
    """The worker hosts (server/jobs/engine.py): which machines grade, on which engine, how busy, alive or not."""
    if user.role != "admin":
        raise Forbidden("admins only")
    state = state_of(request)
    stalled = state.settings.server.worker_stalled_seconds
    counts = dict(
        (
            await db.exec(
                select(Job.state, func.count())
                .where(col(Job.state).in_(("queued", "running")))
                .group_by(col(Job.state))
            )
        ).all()
    )
    return render(
        request,
        "manager/workers.html.j2",
        hosts=await living_hosts(db, stalled),
        stalled=stalled,
        queued=counts.get("queued", 0),
        running=counts.get("running", 0),
        engine=state.queue.name,
    )


async def _rubrics(db: AsyncSession, user: User) -> list[RubricVersion]:
    owner = or_(
        col(RubricVersion.organisation_id).is_(None), col(RubricVersion.organisation_id) == user.organisation_id
    )
    rows = await db.exec(
        select(RubricVersion).where(owner).order_by(col(RubricVersion.key), col(RubricVersion.version))
    )
    return list(rows.all())


def _line_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "added", "-": "removed"}.get(line[:1], "same")


ROUTES = [
    dashboard_page,
    position_page,
    rubrics_page,
    new_rubric_page,
    rubric_page,
    rubric_diff_page,
    outbox_page,
    workers_page,
]
