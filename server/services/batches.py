"""Batch grading: a manager hands in a list of repositories for a position, attesting that the candidates agreed to
automated grading; each becomes a submission of its own, queued behind candidates' own gradings.

The list is a CSV (a header naming `repository`/`url`, `email` and `name` columns, in any order) or pasted lines of
`URL [email] [name]`. Every line is checked before anything is written: one bad line refuses the batch with every
problem listed by line, and nothing is half-made. A candidate named by email is that candidate's account (made, with
no password, if the address is new: they set one through the password-reset link when they want to sign in); a
line with no email grades the repository under an account named after its owner, at an address that can receive
no mail (`.invalid`). Every batch candidate joins the position, so the side-by-side table shows them.

Admission is per batch: a batch holds at most `VIVA_SUBMISSIONS_BATCH_MAX` repositories and its gradings do not count
against the organisation's limit of gradings in flight (which is for candidates' own submissions, and would refuse
any real batch); how many run at once is the running limit's business (VIVA_SUBMISSIONS_RUNNING_PER_ORGANISATION).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Batch, Candidacy, Submission, User, utcnow
from server.errors import Forbidden, InvalidInput
from server.jobs.engine import PRIORITIES, JobEngine
from server.services.accounts import EMAIL, normalise_email
from server.services.catalogue import managed_position
from server.services.paging import paged
from server.services.submissions import check_target
from server.settings import Settings

ATTESTATION = (
    "I confirm that every candidate in this list agreed to have the repository named here graded automatically by "
    "Viva (which runs it in a sandbox and has a language model read it) and to be contacted about the result."
)
MAX_TEXT = 1_000_000
"""Bytes of pasted or uploaded list accepted at once (about 10,000 lines)."""
_URL_COLUMNS = ("repository", "repo", "url", "repository_url", "github")
NO_PASSWORD_HASH = "!batch: no password set; sign in by resetting it"  # noqa: S105 - never a valid hash
"""Stored as the hash of a batch candidate's new account: no password verifies against it."""


@dataclass(frozen=True)
class BatchLine:
    line: int
    target: str
    email: str | None
    name: str


def parse_batch(text: str, settings: Settings) -> list[BatchLine]:
    """The list's lines, each checked; InvalidInput listing every bad line (`details.problems`) otherwise."""
    if len(text.encode()) > MAX_TEXT:
        raise InvalidInput(f"the list is over {MAX_TEXT // 1000} kB; split it into several batches")
    try:
        rows = _rows(text)
    except csv.Error as error:  # a NUL byte, an unclosed quote across a field over the size limit
        raise InvalidInput(f"the CSV could not be read: {error}") from None
    problems: list[dict[str, Any]] = []
    lines: list[BatchLine] = []
    seen: dict[str, int] = {}
    for number, url, email, name in rows:
        try:
            target = check_target(url, settings)
        except InvalidInput as error:
            problems.append({"line": number, "message": f"{url[:200]!r}: {error}"})
            continue
        address = None
        if email:
            if not EMAIL.match(email.strip()):
                problems.append({"line": number, "message": f"{email[:200]!r} is not an email address"})
                continue
            address = normalise_email(email)
        key = f"{target} {address or ''}"
        if key in seen:
            problems.append({"line": number, "message": f"the same repository and candidate as line {seen[key]}"})
            continue
        seen[key] = number
        lines.append(BatchLine(number, target, address, name.strip()[:200]))
    if not rows:
        problems.append({"message": "the list names no repository"})
    limit = settings.submissions.batch_max
    if len(lines) > limit:
        problems.append({"message": f"{len(lines)} repositories; a batch holds at most {limit}"})
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the list; nothing was queued", {"problems": problems})
    return lines


def _rows(text: str) -> list[tuple[int, str, str, str]]:
    """(line number, url, email, name) for each non-empty line, from a CSV with a header or from plain lines."""
    stripped = text.lstrip("\ufeff")
    first = next((line for line in stripped.splitlines() if line.strip()), "")
    header = [cell.strip().lower() for cell in next(csv.reader([first]), [])]
    if any(cell in _URL_COLUMNS for cell in header):
        reader = csv.reader(io.StringIO(stripped))
        found: list[tuple[int, str, str, str]] = []
        columns: dict[str, int] = {}
        for row in reader:
            number = reader.line_num
            if not columns:
                if not any(cell.strip() for cell in row):
                    continue
                columns = {cell.strip().lower(): index for index, cell in enumerate(row)}
                continue
            if not any(cell.strip() for cell in row):
                continue

            found.append(
                (
                    number,
                    _cell(row, columns, _URL_COLUMNS),
                    _cell(row, columns, ("email", "e-mail")),
                    _cell(row, columns, ("name", "candidate")),
                )
            )
        return found
    found = []
    for number, line in enumerate(stripped.splitlines(), start=1):
        parts = re.split(r"[\s,;]+", line.strip(), maxsplit=2)
        if not parts or not parts[0] or line.lstrip().startswith("#"):
            continue
        email = parts[1] if len(parts) > 1 and "@" in parts[1] else ""
        name = " ".join(parts[2:] if email else parts[1:])  # `URL Ada Lovelace` names Ada Lovelace, no email
        found.append((number, parts[0], email, name))
    return found


def _cell(row: list[str], columns: dict[str, int], names: tuple[str, ...]) -> str:
    for name in names:
        index = columns.get(name)
        if index is not None and index < len(row):
            return row[index].strip()
    return ""


async def create_batch(
    db: AsyncSession,
    engine: JobEngine,
    settings: Settings,
    manager: User,
    position_id: int,
    *,
    text: str,
    attested: bool,
) -> Batch:
    """The batch and a queued submission per line, in one transaction (the caller commits)."""
    if manager.role not in ("manager", "admin"):
        raise Forbidden("only managers hand in batches")
    position = await managed_position(db, manager, position_id)  # another organisation's position: 404, first
    if not attested:
        raise InvalidInput("confirm that the candidates agreed to automated grading", {"field": "attest"})
    lines = parse_batch(text, settings)
    batch = Batch(
        position_id=position.id or 0,
        organisation_id=position.organisation_id,
        created_by=manager.id or 0,
        attestation=f"{ATTESTATION} — {manager.name or manager.email} <{manager.email}>",
        total=len(lines),
    )
    db.add(batch)
    await db.flush()
    for line in lines:
        candidate = await _candidate(db, line)
        await _join(db, position.id or 0, candidate.id or 0)
        submission = Submission(
            candidate_id=candidate.id or 0,
            position_id=position.id,
            organisation_id=position.organisation_id,
            target=line.target,
            rubric_version_id=position.rubric_version_id,
            batch_id=batch.id,
        )
        db.add(submission)
        await db.flush()
        await engine.enqueue(
            db, submission.id or 0, None, priority=PRIORITIES["batch"], organisation_id=position.organisation_id
        )
    return batch


async def _candidate(db: AsyncSession, line: BatchLine) -> User:
    address = line.email or _placeholder_address(line.target)
    existing = (await db.exec(select(User).where(User.email == address))).first()
    if existing is not None:
        if existing.role != "candidate":
            raise InvalidInput(
                f"line {line.line}: {address} is a {existing.role}'s account, not a candidate's",
                {"problems": [{"line": line.line, "message": f"{address} is not a candidate"}]},
            )
        return existing
    user = User(email=address, name=line.name or _owner(line.target), role="candidate", password_hash=NO_PASSWORD_HASH)
    db.add(user)
    await db.flush()
    return user


def _placeholder_address(target: str) -> str:
    """An address for a candidate known only by their repository: under `.invalid`, which no mail can reach."""
    owner = _owner(target).lower()
    return f"{re.sub(r'[^a-z0-9._-]', '-', owner)[:60] or 'owner'}@repository-owner.invalid"


def _owner(target: str) -> str:
    """The repository's owner (`https://github.com/OWNER/name`), or the target's name when it has no owner."""
    parts = target.split("://", 1)[-1].split("/")
    return parts[1] if len(parts) >= 3 else parts[-1].rsplit(":", 1)[-1]


async def _join(db: AsyncSession, position_id: int, candidate_id: int) -> None:
    joined = await db.exec(
        select(Candidacy).where(Candidacy.position_id == position_id, Candidacy.candidate_id == candidate_id)
    )
    if joined.first() is None:
        db.add(Candidacy(position_id=position_id, candidate_id=candidate_id, joined_at=utcnow()))
        await db.flush()


async def batch_progress(
    db: AsyncSession, position_id: int, *, limit: int = 20, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the position's batches, newest first, each with its gradings counted by status; and how many."""
    query = select(Batch).where(Batch.position_id == position_id)
    batches, total = await paged(db, query, col(Batch.id).desc(), limit=limit, offset=offset)
    progress = []
    for batch in batches:
        counts = dict(
            (
                await db.exec(
                    select(Submission.status, func.count())
                    .where(Submission.batch_id == batch.id)
                    .group_by(col(Submission.status))
                )
            ).all()
        )
        finished = sum(counts.get(status, 0) for status in ("done", "failed", "cancelled"))
        progress.append(
            {
                "id": batch.id,
                "created_at": batch.created_at,
                "total": batch.total,
                "finished": finished,
                "counts": counts,
                "attestation": batch.attestation,
            }
        )
    return progress, total
