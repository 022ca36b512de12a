"""Submissions: what a candidate hands in, checked before anything is fetched, queued as a durable job."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import func, update
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from server.db.models import (
    Interview,
    Job,
    Organisation,
    Position,
    ReviewRequest,
    ScoreOverride,
    Submission,
    User,
    utcnow,
)
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, TooMany
from server.jobs.engine import PRIORITIES, JobEngine
from server.services.catalogue import default_rubric, joined_position, rubric_version
from server.services.paging import paged
from server.settings import Settings

ACTIVE = ("queued", "running")
FIXTURE = re.compile(r"^fixture:([a-z0-9_-]{1,64})$")
ARCHIVE = re.compile(r"^archive:[0-9a-f]{64}$")


def check_target(target: str, settings: Settings, *, uploaded: bool = False) -> str:
    """The repository to grade, as the API accepts it: an https URL on the host allow-list (GitHub by default), or
    in tests a named fixture. Never a local path, `file://`, ssh, or a URL with credentials or a port."""
    target = target.strip()
    if settings.submissions.fixtures_dir and FIXTURE.match(target):
        return target
    if uploaded and ARCHIVE.match(target):
        return target  # made by the upload route from the candidate's own archive, never accepted as text
    parts = urlsplit(target)
    if parts.scheme != "https":
        raise InvalidInput("submit an https URL of a repository (local paths and other schemes are refused)")
    if parts.username or parts.password or parts.port or not parts.hostname:
        raise InvalidInput("the URL may not carry credentials or a port; give a token separately")
    if parts.hostname.lower() not in {host.lower() for host in settings.submissions.hosts}:
        allowed = ", ".join(settings.submissions.hosts)
        raise InvalidInput(f"repositories are accepted from {allowed} only", {"host": parts.hostname})
    path = parts.path.strip("/").removesuffix(".git")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", path) or parts.query or parts.fragment:
        raise InvalidInput("give the repository's URL, like https://github.com/owner/name")
    return f"https://{parts.hostname.lower()}/{path}"


async def submit(
    db: AsyncSession,
    queue: JobEngine,
    settings: Settings,
    candidate: User,
    *,
    target: str,
    position_id: int | None,
    uploaded: bool = False,
    pinned_to: str | None = None,
    prefetched: str | None = None,
) -> Submission:
    """`prefetched`: the repository was already cloned with its token by this process (server/services/prefetch.py);
    the job grades that snapshot."""
    position = await check_submitter(db, settings, candidate, position_id)
    target = check_target(target, settings, uploaded=uploaded)
    rubric_id = (
        position.rubric_version_id if position else (await default_rubric(db, settings.grading.default_rubric)).id
    )
    assert rubric_id is not None
    submission = Submission(
        candidate_id=_id(candidate),
        position_id=position.id if position else None,
        organisation_id=position.organisation_id if position else None,
        target=target,
        rubric_version_id=rubric_id,
        prefetched=prefetched,
    )
    return await _admit(db, queue, settings, submission, pinned_to, priority=PRIORITIES["interactive"])


async def check_submitter(
    db: AsyncSession, settings: Settings, candidate: User, position_id: int | None
) -> Position | None:
    """Whether this user may submit (to this position): checked before anything is fetched. The position, if any."""
    if candidate.role != "candidate":
        raise Forbidden("only candidates submit repositories")
    if candidate.ai_notice_accepted_at is None:
        raise Forbidden("read and accept how Viva uses AI before you submit (POST /api/me/ai-notice)")
    return await joined_position(db, candidate, position_id) if position_id is not None else None


async def regrade(
    db: AsyncSession, queue: JobEngine, settings: Settings, manager: User, submission_id: int, *, rubric_version_id: int
) -> Submission:
    """Grade the same repository again with another rubric version: a new submission, the old one kept. It counts
    against the same in-flight limits as the candidate's own submissions."""
    original = await visible_submission(db, manager, submission_id)
    await rubric_version(db, manager, rubric_version_id)
    copy = Submission(
        candidate_id=original.candidate_id,
        position_id=original.position_id,
        organisation_id=original.organisation_id,
        target=original.target,
        rubric_version_id=rubric_version_id,
    )
    return await _admit(db, queue, settings, copy, priority=PRIORITIES["regrade"])


async def visible_submission(db: AsyncSession, user: User, submission_id: int) -> Submission:
    """The submission if this user may see it: its candidate, a manager of its organisation, or an admin."""
    submission = await db.get(Submission, submission_id)
    if submission is None or not may_see(user, submission):
        raise NotFound("no such submission")
    return submission


def may_see(user: User, submission: Submission) -> bool:
    if user.role == "admin":
        return True
    if user.role == "candidate":
        return submission.candidate_id == user.id
    return submission.organisation_id is not None and submission.organisation_id == user.organisation_id


async def list_submissions(
    db: AsyncSession, user: User, *, position_id: int | None, limit: int, offset: int
) -> tuple[list[Submission], int]:
    query = select(Submission)
    if user.role == "candidate":
        query = query.where(Submission.candidate_id == user.id)
    elif user.role == "manager":
        query = query.where(Submission.organisation_id == user.organisation_id)
    if position_id is not None:
        query = query.where(Submission.position_id == position_id)
    query = query.options(defer(Submission.report))  # type: ignore[arg-type]
    return await paged(db, query, col(Submission.id).desc(), limit=limit, offset=offset)


async def cancel(db: AsyncSession, user: User, submission_id: int) -> Submission:
    submission = await visible_submission(db, user, submission_id)
    if submission.status not in ACTIVE:
        raise Conflict(f"the grading is already {submission.status}")
    job = (await db.exec(select(Job).where(Job.submission_id == submission.id))).first()
    if job is not None:
        job.cancel_requested = True
        if job.state == "queued":
            job.state = "cancelled"
    if job is None or job.state == "cancelled":
        submission.status, submission.finished_at = "cancelled", utcnow()
    return submission


async def delete(db: AsyncSession, candidate: User, submission_id: int) -> list[int]:
    """A candidate deletes their submission: the report goes, any running grading is cancelled. Returns the ids of
    the interviews deleted with it (their recordings are files the caller removes)."""
    submission = await visible_submission(db, candidate, submission_id)
    if candidate.role != "admin" and submission.candidate_id != candidate.id:
        raise Forbidden("only the candidate can delete their submission")
    interview_ids = [
        row.id or 0 for row in (await db.exec(select(Interview).where(Interview.submission_id == submission.id))).all()
    ]
    for kind in (Interview, ScoreOverride, ReviewRequest):
        for row in (await db.exec(select(kind).where(kind.submission_id == submission.id))).all():
            await db.delete(row)
    for job in (await db.exec(select(Job).where(Job.submission_id == submission.id))).all():
        await db.delete(job)
    await db.flush()
    await db.delete(submission)
    return interview_ids


async def _admit(
    db: AsyncSession,
    queue: JobEngine,
    settings: Settings,
    submission: Submission,
    pinned_to: str | None = None,
    *,
    priority: int,
) -> Submission:
    """The one way a grading enters the queue, a new submission or a re-grade: refused (429) while its candidate or
    its organisation has as many gradings queued or running as the settings allow."""
    await _check_limits(db, settings, submission.candidate_id, submission.organisation_id)
    db.add(submission)
    await db.flush()
    await queue.enqueue(db, _id(submission), pinned_to, priority=priority, organisation_id=submission.organisation_id)
    return submission


async def _check_limits(db: AsyncSession, settings: Settings, candidate_id: int, organisation_id: int | None) -> None:
    await hold_limits(db, candidate_id, organisation_id)
    theirs = _in_flight().where(Submission.candidate_id == candidate_id)
    if (await db.exec(theirs)).one() >= settings.submissions.per_candidate:
        raise TooMany(
            f"this candidate has {settings.submissions.per_candidate} grading(s) in progress (the limit); "
            "try again when one has finished"
        )
    if organisation_id is not None:
        organisation = _in_flight().where(Submission.organisation_id == organisation_id)
        if (await db.exec(organisation)).one() >= settings.submissions.per_organisation:
            raise TooMany("this organisation has too many gradings in progress; try again shortly")


async def hold_limits(db: AsyncSession, candidate_id: int, organisation_id: int | None = None) -> None:
    """Before counting against a limit: two requests at once would both count the same rows and both pass. A write
    to the rows the limit is about (no change: `id = id`) holds them until this transaction ends, so the next
    request counts after it: a row lock on PostgreSQL, the database's write lock on SQLite. The organisation
    before the candidate, always, so two requests never wait for each other."""
    for table, row_id in ((Organisation, organisation_id), (User, candidate_id)):
        if row_id is not None:
            held = update(table).where(col(table.id) == row_id).values(id=table.id)
            await db.exec(held.execution_options(synchronize_session=False))


def _in_flight() -> SelectOfScalar[int]:
    """Candidates' own gradings queued or running: a manager's batch is admitted by its own size limit
    (server/services/batches.py), so it neither counts here nor is refused here."""
    return (
        select(func.count())
        .select_from(Submission)
        .where(col(Submission.status).in_(ACTIVE), col(Submission.batch_id).is_(None))
    )


def _id(item: User | Submission) -> int:
    assert item.id is not None, "flushed rows have ids"
    return item.id
