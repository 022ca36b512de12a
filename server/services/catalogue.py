"""Rubric versions and positions: what a manager grades against, and the invite links candidates follow."""

from __future__ import annotations

import difflib
from typing import Any

import msgspec
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rubrics.catalogue import spec_for
from rubrics.errors import RubricError, RubricInvalid, RubricSyntaxError
from rubrics.loader import LoadedRubric, leaf_paths, load_rubric_text
from rubrics.registry import BUILTIN_DIR
from server.db.models import Candidacy, Position, RubricVersion, User
from server.errors import Forbidden, InvalidInput, NotFound
from server.security import new_token


async def seed_builtin_rubrics(db: AsyncSession) -> None:
    """Store each built-in rubric as an organisation-less version, once per content."""
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        loaded = load_rubric_text(text, source=path.name)
        existing = (
            await db.exec(
                select(RubricVersion).where(
                    col(RubricVersion.organisation_id).is_(None),
                    RubricVersion.key == loaded.rubric.id,
                    RubricVersion.content_hash == loaded.content_hash,
                )
            )
        ).first()
        if existing is None:
            latest = await _latest_version(db, None, loaded.rubric.id)
            db.add(_version_row(loaded, text, None, None, (latest or 0) + 1))
    await db.flush()


async def rubric_version(db: AsyncSession, user: User, version_id: int) -> RubricVersion:
    """A version the user may use: a built-in, or one of their organisation's."""
    row = await db.get(RubricVersion, version_id)
    if row is None or (row.organisation_id is not None and row.organisation_id != user.organisation_id):
        raise NotFound("no such rubric version")
    return row


async def default_rubric(db: AsyncSession, key: str) -> RubricVersion:
    row = (
        await db.exec(
            select(RubricVersion)
            .where(col(RubricVersion.organisation_id).is_(None), RubricVersion.key == key)
            .order_by(col(RubricVersion.version).desc())
        )
    ).first()
    if row is None:
        raise NotFound(f"no built-in rubric {key!r}")
    return row


def loaded(row: RubricVersion) -> LoadedRubric:
    return load_rubric_text(row.source, source=f"{row.key} v{row.version}")


async def save_rubric(db: AsyncSession, manager: User, text: str) -> RubricVersion:
    """Validate and store a rubric as the next version of its id in the manager's organisation. A version is never
    edited in place: saving always makes a new one, so every grading keeps the rubric it was graded with."""
    if manager.organisation_id is None:
        raise Forbidden("only a member of an organisation can save rubrics")
    try:
        parsed = load_rubric_text(text, source="rubric")
    except RubricError as error:
        raise InvalidInput("the rubric is not valid", {"problems": problems_of(error)}) from None
    latest = await _latest_version(db, manager.organisation_id, parsed.rubric.id)
    row = _version_row(parsed, text, manager.organisation_id, manager.id, (latest or 0) + 1)
    db.add(row)
    await db.flush()
    return row


def is_interview_rubric(row: RubricVersion) -> bool:
    """Every dimension is an interview check (a rubric is all interview or all grading: rubrics.validate)."""
    return all(node.check is not None and node.check.kind == "interview" for _, node in leaf_paths(loaded(row).rubric))


async def interview_rubric_version(db: AsyncSession, manager: User, version_id: int) -> RubricVersion:
    """A version the manager may interview with: theirs or built-in, and an interview rubric."""
    row = await rubric_version(db, manager, version_id)
    if not is_interview_rubric(row):
        raise InvalidInput(
            f"rubric {row.key} v{row.version} grades repositories; an interview needs an interview rubric",
            {"field": "interview_rubric_version_id"},
        )
    return row


async def set_interview_rubric(db: AsyncSession, manager: User, position_id: int, version_id: int | None) -> Position:
    """Choose the interview rubric and version a position's candidates are interviewed with (None: the default).
    Interviews already started keep the rubric they started with only if they are finished; a live one picks the
    new choice up when it is next rebuilt, so change it between interviews."""
    position = await managed_position(db, manager, position_id)
    if version_id is not None:
        await interview_rubric_version(db, manager, version_id)
    position.interview_rubric_version_id = version_id
    db.add(position)
    await db.flush()
    return position


async def create_position(
    db: AsyncSession, manager: User, title: str, rubric_version_id: int, interview_rubric_version_id: int | None = None
) -> Position:
    if manager.organisation_id is None:
        raise Forbidden("only a member of an organisation can open positions")
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidInput("a position needs a title of at most 200 characters", {"field": "title"})
    await rubric_version(db, manager, rubric_version_id)
    if interview_rubric_version_id is not None:
        await interview_rubric_version(db, manager, interview_rubric_version_id)
    position = Position(
        organisation_id=manager.organisation_id,
        title=title,
        rubric_version_id=rubric_version_id,
        interview_rubric_version_id=interview_rubric_version_id,
        invite_code=new_token(),
    )
    db.add(position)
    await db.flush()
    return position


async def managed_position(db: AsyncSession, manager: User, position_id: int) -> Position:
    position = await db.get(Position, position_id)
    if position is None or (manager.role != "admin" and position.organisation_id != manager.organisation_id):
        raise NotFound("no such position")
    return position


async def join_position(db: AsyncSession, candidate: User, invite_code: str) -> Position:
    if candidate.role != "candidate":
        raise Forbidden("only candidates join positions")
    position = (await db.exec(select(Position).where(Position.invite_code == invite_code))).first()
    if position is None or not position.open:
        raise NotFound("this invite link is not valid")
    already = (
        await db.exec(
            select(Candidacy).where(Candidacy.position_id == position.id, Candidacy.candidate_id == candidate.id)
        )
    ).first()
    if already is None:
        assert position.id is not None and candidate.id is not None
        db.add(Candidacy(position_id=position.id, candidate_id=candidate.id))
        await db.flush()
    return position


def diff(before: RubricVersion, after: RubricVersion) -> dict[str, Any]:
    old_tree, new_tree = _leaves(before), _leaves(after)
    lines = difflib.unified_diff(
        before.source.splitlines(),
        after.source.splitlines(),
        f"{before.key} v{before.version}",
        f"{after.key} v{after.version}",
        lineterm="",
    )
    return {
        "old": {"id": before.id, "key": before.key, "version": before.version},
        "new": {"id": after.id, "key": after.key, "version": after.version},
        "added": sorted(set(new_tree) - set(old_tree)),
        "removed": sorted(set(old_tree) - set(new_tree)),
        "changed": sorted(path for path in set(old_tree) & set(new_tree) if old_tree[path] != new_tree[path]),
        "unified": "\n".join(lines),
    }


def _leaves(row: RubricVersion) -> dict[str, tuple[float, str]]:
    """Every criterion by path: its weight and its check (what a change to grading would be about)."""
    found: dict[str, tuple[float, str]] = {}

    def visit(criteria: list[Any], prefix: str) -> None:
        for criterion in criteria:
            path = f"{prefix}{criterion.id}"
            check = f"{criterion.check.kind}:{criterion.check.name}" if criterion.check else ""
            found[path] = (criterion.weight, check)
            visit(criterion.children, f"{path}.")

    visit(loaded(row).rubric.criteria, "")
    return found


async def _latest_version(db: AsyncSession, organisation_id: int | None, key: str) -> int | None:
    owner = (
        col(RubricVersion.organisation_id).is_(None)
        if organisation_id is None
        else RubricVersion.organisation_id == organisation_id
    )
    row = (
        await db.exec(
            select(RubricVersion).where(owner, RubricVersion.key == key).order_by(col(RubricVersion.version).desc())
        )
    ).first()
    return row.version if row else None


def _version_row(
    parsed: LoadedRubric, text: str, organisation_id: int | None, author: int | None, version: int
) -> RubricVersion:
    return RubricVersion(
        organisation_id=organisation_id,
        key=parsed.rubric.id,
        version=version,
        title=parsed.rubric.title,
        source=text,
        content_hash=parsed.content_hash,
        created_by=author,
    )


def problems_of(error: RubricError) -> list[dict[str, Any]]:
    """Every problem with its field path and source line, for an editor to mark."""
    if isinstance(error, RubricInvalid):
        return [{"path": problem.path, "message": problem.message, "line": problem.line} for problem in error.problems]
    if isinstance(error, RubricSyntaxError):
        return [{"path": "", "message": error.reason, "line": error.line}]
    return [{"path": "", "message": str(error), "line": None}]


def preview(rubric: LoadedRubric) -> list[dict[str, Any]]:
    """The criteria tree as the editor previews it: each node's weight and its share of the whole score, and for a
    leaf its check with the catalogue's summary and the parameters it will run with (defaults filled in)."""

    def nodes(criteria: list[Any], prefix: str, share: float) -> list[dict[str, Any]]:
        total = sum(criterion.weight for criterion in criteria) or 1.0
        built = []
        for criterion in criteria:
            path = f"{prefix}{criterion.id}"
            mine = share * criterion.weight / total
            node: dict[str, Any] = {
                "path": path,
                "title": criterion.title,
                "weight": criterion.weight,
                "share": round(mine, 4),
                "children": nodes(criterion.children, f"{path}.", mine),
            }
            if criterion.check is not None:
                spec = spec_for(criterion.check.name)
                params = rubric.params.get(path)
                node["check"] = {
                    "kind": criterion.check.kind,
                    "name": criterion.check.name,
                    "summary": spec.summary if spec else "",
                    "params": msgspec.to_builtins(params) if params is not None else {},
                }
            built.append(node)
        return built

    return nodes(rubric.rubric.criteria, "", 1.0)


async def joined_position(db: AsyncSession, candidate: User, position_id: int) -> Position:
    """The position, if the candidate joined it through its invite link."""
    joined = (
        await db.exec(
            select(Candidacy).where(Candidacy.position_id == position_id, Candidacy.candidate_id == candidate.id)
        )
    ).first()
    position = await db.get(Position, position_id)
    if joined is None or position is None:
        raise NotFound("you have not joined that position (follow its invite link)")
    return position
