"""Rubric versions and positions."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rubrics.errors import RubricError
from rubrics.loader import load_rubric_text
from server.db.models import Candidacy, Position, RubricVersion, User
from server.schemas import (
    InterviewRubricChoice,
    JoinPosition,
    Limit,
    NewPosition,
    NewRubric,
    Offset,
    Page,
    PathId,
    PositionOut,
    QueryId,
    RubricOut,
)
from server.services import catalogue
from server.services.paging import paged

USER, CANDIDATE, MANAGER = ({"access": level} for level in ("user", "candidate", "manager"))


@get("/api/rubrics", opt=MANAGER)
async def list_rubrics(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], limit: Limit = 100, offset: Offset = 0
) -> Page[RubricOut]:
    """Built-in rubrics and the organisation's own, every version."""
    owner = or_(
        col(RubricVersion.organisation_id).is_(None), col(RubricVersion.organisation_id) == user.organisation_id
    )
    query = select(RubricVersion).where(owner)
    order = (col(RubricVersion.key), col(RubricVersion.version))
    rows, total = await paged(db, query, *order, limit=limit, offset=offset)
    return Page([RubricOut.of(row) for row in rows], total, limit, offset)


@get("/api/rubrics/{version_id:int}", opt=MANAGER)
async def get_rubric(db: NamedDependency[AsyncSession], user: NamedDependency[User], version_id: PathId) -> RubricOut:
    return RubricOut.of(await catalogue.rubric_version(db, user, version_id), with_source=True)


@post("/api/rubrics/validate", opt=MANAGER, status_code=200)
async def validate_rubric(data: JSONBody[NewRubric]) -> dict[str, object]:
    """Without saving anything: every problem with its field path and line, or the criteria tree as it would grade
    (weights, each criterion's share of the score, each check with its parameters)."""
    try:
        loaded = load_rubric_text(data.source, source="rubric")
    except RubricError as error:
        return {"valid": False, "problems": catalogue.problems_of(error)}
    rubric = loaded.rubric
    return {
        "valid": True,
        "id": rubric.id,
        "version": rubric.version,
        "title": rubric.title,
        "hash": loaded.content_hash,
        "problems": [],
        "tree": catalogue.preview(loaded),
    }


@post("/api/rubrics", opt=MANAGER, status_code=201)
async def save_rubric(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], data: JSONBody[NewRubric]
) -> RubricOut:
    """Save as the next version of the rubric's id: versions are never edited in place."""
    return RubricOut.of(await catalogue.save_rubric(db, user, data.source), with_source=True)


@post("/api/positions", opt=MANAGER, status_code=201)
async def create_position(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], data: JSONBody[NewPosition]
) -> PositionOut:
    position = await catalogue.create_position(
        db, user, data.title, data.rubric_version_id, data.interview_rubric_version_id
    )
    return PositionOut.of(position, manager=True)


@put("/api/positions/{position_id:int}/interview-rubric", opt=MANAGER)
async def choose_interview_rubric(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    position_id: PathId,
    data: JSONBody[InterviewRubricChoice],
) -> PositionOut:
    """The interview rubric and version the position's candidates are interviewed with (null: the default)."""
    position = await catalogue.set_interview_rubric(db, user, position_id, data.interview_rubric_version_id)
    return PositionOut.of(position, manager=True)


@get("/api/positions", opt=USER)
async def list_positions(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], limit: Limit = 100, offset: Offset = 0
) -> Page[PositionOut]:
    """Managers: their organisation's positions. Candidates: the positions they joined."""
    if user.role == "candidate":
        query = (
            select(Position)
            .join(Candidacy, col(Candidacy.position_id) == col(Position.id))
            .where(Candidacy.candidate_id == user.id)
        )
    elif user.role == "manager":
        query = select(Position).where(Position.organisation_id == user.organisation_id)
    else:
        query = select(Position)
    rows, total = await paged(db, query, col(Position.id), limit=limit, offset=offset)
    return Page([PositionOut.of(row, manager=user.role != "candidate") for row in rows], total, limit, offset)


@get("/api/positions/{position_id:int}", opt=MANAGER)
async def get_position(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], position_id: PathId
) -> PositionOut:
    return PositionOut.of(await catalogue.managed_position(db, user, position_id), manager=True)


@post("/api/positions/join", opt=CANDIDATE, status_code=200)
async def join(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], data: JSONBody[JoinPosition]
) -> PositionOut:
    return PositionOut.of(await catalogue.join_position(db, user, data.invite_code), manager=False)


@get("/api/rubrics/{version_id:int}/export", opt=MANAGER)
async def export_rubric(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], version_id: PathId
) -> Response[str]:
    """The version's YAML exactly as saved (import it elsewhere with POST /api/rubrics)."""
    row = await catalogue.rubric_version(db, user, version_id)
    return Response(
        row.source,
        media_type="application/yaml",
        headers={"content-disposition": f'attachment; filename="{row.key}-v{row.version}.yaml"'},
    )


@get("/api/rubrics/diff", opt=MANAGER)
async def diff_rubrics(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], old: QueryId, new: QueryId
) -> dict[str, Any]:
    """What changed between two versions: a unified diff of the YAML and the criteria added, removed or re-weighted."""
    before = await catalogue.rubric_version(db, user, old)
    after = await catalogue.rubric_version(db, user, new)
    return catalogue.diff(before, after)


ROUTES = [
    export_rubric,
    diff_rubrics,
    list_rubrics,
    get_rubric,
    validate_rubric,
    save_rubric,
    create_position,
    choose_interview_rubric,
    list_positions,
    get_position,
    join,
]
