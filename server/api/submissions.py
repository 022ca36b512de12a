"""Submissions: hand in a repository, follow its grading (SSE), read the report, cancel, delete, re-grade."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Job, Submission, User
from server.errors import InvalidInput, NotFound
from server.jobs.worker import TERMINAL, fixture_path, progress_of, uploads_path
from server.schemas import ID_MAX, Limit, NewSubmission, Offset, OptionalQueryId, Page, PathId, Regrade, SubmissionOut
from server.services import prefetch, retention, submissions
from server.services.archives import store_archive
from server.web import client_address, state_of

USER, CANDIDATE, MANAGER = ({"access": level} for level in ("user", "candidate", "manager"))
POLL_SECONDS = 1.0


@post("/api/submissions", opt=CANDIDATE, status_code=202)
async def submit(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    data: JSONBody[NewSubmission],
) -> SubmissionOut:
    """Queue a grading of an https repository URL (a private one with a token, used for the clone only)."""
    state = state_of(request)
    settings = state.settings
    state.limiter.hit("submission", client_address(request), settings.limits.submissions_per_minute)
    # A token stays in this process's memory. If this process grades and the jobs table dispatches (one machine),
    # the job is pinned here and the clone happens when it runs; otherwise this process clones now and the job,
    # wherever it runs, grades that snapshot (server/services/prefetch.py).
    pinned = bool(data.token) and state.worker.running and state.queue.name == "database"
    prefetched = None
    if data.token and not pinned:
        await submissions.check_submitter(db, settings, user, data.position_id)
        target = submissions.check_target(data.target, settings)
        source = str(fixture_path(settings, target)) if target.startswith("fixture:") else None
        prefetched = await asyncio.to_thread(prefetch.clone_now, target, data.token, settings, source=source)
    try:
        submission = await submissions.submit(
            db,
            state.queue,
            settings,
            user,
            target=data.target,
            position_id=data.position_id,
            pinned_to=state.worker.name if pinned else None,
            prefetched=prefetched,
        )
    except Exception:
        if prefetched:
            prefetch.forget(settings, prefetched)  # refused (a limit, a closed position): no clone left behind
        raise
    if pinned and data.token:
        assert submission.id is not None
        state.worker.tokens[submission.id] = data.token
    return SubmissionOut.of(submission)


@dataclass
class ArchiveUpload:
    file: UploadFile
    position_id: int | None = None


@post("/api/submissions/archive", opt=CANDIDATE, status_code=202)
async def submit_archive(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    data: Annotated[ArchiveUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> SubmissionOut:
    """Queue a grading of an uploaded archive (.tar.gz, .tgz, .tar, .zip), size-capped and unpacked safely."""
    state = state_of(request)
    settings = state.settings
    state.limiter.hit("submission", client_address(request), settings.limits.submissions_per_minute)
    cap = settings.submissions.max_archive_mb * 1024 * 1024
    content = await data.file.read(cap + 1)
    if len(content) > cap:
        raise InvalidInput(f"the archive is larger than {settings.submissions.max_archive_mb} MB")
    if data.position_id is not None and not 1 <= data.position_id <= ID_MAX:
        raise InvalidInput("no such position", {"field": "position_id"})
    target = await asyncio.to_thread(store_archive, content, uploads_path(settings), settings.fetch)
    submission = await submissions.submit(
        db, state.queue, settings, user, target=target, position_id=data.position_id, uploaded=True
    )
    return SubmissionOut.of(submission)


@get("/api/submissions", opt=USER)
async def list_submissions(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    position_id: OptionalQueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SubmissionOut]:
    rows, total = await submissions.list_submissions(db, user, position_id=position_id, limit=limit, offset=offset)
    return Page([SubmissionOut.of(row) for row in rows], total, limit, offset)


@get("/api/submissions/{submission_id:int}", opt=USER)
async def get_submission(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], submission_id: PathId
) -> SubmissionOut:
    submission = await submissions.visible_submission(db, user, submission_id)
    return SubmissionOut.of(submission, progress_of(await _job(db, submission_id)))


@get("/api/submissions/{submission_id:int}/report", opt=USER)
async def get_report(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], submission_id: PathId
) -> Response[bytes]:
    """The whole report.json as graded (schema: grader/report/report.schema.json)."""
    submission = await submissions.visible_submission(db, user, submission_id)
    if submission.report is None:
        raise NotFound(f"no report yet: the grading is {submission.status}")
    return Response(submission.report.encode(), media_type="application/json")


@get("/api/submissions/{submission_id:int}/events", opt=USER)
async def events(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
) -> ServerSentEvent:
    """Progress as server-sent events: `progress` while it runs, one `status` event at the end."""
    await submissions.visible_submission(db, user, submission_id)
    state = state_of(request)
    return ServerSentEvent(_stream(state, submission_id))


async def _stream(state: Any, submission_id: PathId) -> AsyncIterator[ServerSentEventMessage]:
    queue = state.hub.subscribe(submission_id)
    last: dict[str, Any] | None = None
    try:
        while True:
            async with state.factory() as db:
                submission = await db.get(Submission, submission_id)
                job = await _job(db, submission_id)
            if submission is None:
                yield ServerSentEventMessage(event="status", data=json.dumps({"status": "deleted"}))
                return
            if submission.status in TERMINAL:
                body = {"status": submission.status, "score": submission.score, "error": submission.error}
                yield ServerSentEventMessage(event="status", data=json.dumps(body))
                return
            current = {**progress_of(job), "status": submission.status}
            if current != last:
                yield ServerSentEventMessage(event="progress", data=json.dumps(current))
                last = current
            # Wake on this process's events at once; otherwise (a job on another server) look again shortly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), POLL_SECONDS)
    finally:
        state.hub.unsubscribe(submission_id, queue)


@post("/api/submissions/{submission_id:int}/cancel", opt=USER, status_code=200)
async def cancel(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], submission_id: PathId
) -> SubmissionOut:
    return SubmissionOut.of(await submissions.cancel(db, user, submission_id))


@delete("/api/submissions/{submission_id:int}", opt=USER, status_code=204)
async def delete_submission(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
) -> None:
    """The candidate deletes a submission, its report, its interviews and the kept code (an admin may too)."""
    interview_ids = await submissions.delete(db, user, submission_id)
    retention.forget_files(state_of(request).settings, submission_id, interview_ids)


@post("/api/submissions/{submission_id:int}/regrade", opt=MANAGER, status_code=202)
async def regrade(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
    data: JSONBody[Regrade],
) -> SubmissionOut:
    """Grade the repository again with another rubric version: a new submission, admitted like the candidate's own
    (the rate limit, and the candidate's and organisation's gradings in flight)."""
    state = state_of(request)
    state.limiter.hit("submission", client_address(request), state.settings.limits.submissions_per_minute)
    copy = await submissions.regrade(
        db, state.queue, state.settings, user, submission_id, rubric_version_id=data.rubric_version_id
    )
    return SubmissionOut.of(copy)


async def _job(db: NamedDependency[AsyncSession], submission_id: PathId) -> Job | None:
    return (await db.exec(select(Job).where(Job.submission_id == submission_id).order_by(col(Job.id).desc()))).first()


ROUTES = [
    submit,
    submit_archive,
    list_submissions,
    get_submission,
    get_report,
    events,
    cancel,
    delete_submission,
    regrade,
]
