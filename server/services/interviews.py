"""Text interviews about a graded submission: the live sessions of this process, and their record in the database.

Answers carry ids chosen by the client. The session records an answer once and remembers its reply, and the row
keeps the session's whole state after every answer: a client that reconnects is told which answers were
acknowledged, and an answer it sends again gets the same reply without being recorded twice.

Several server processes may hold the same interview (a reconnect can land on another one). The row's revision
decides: a process checks it before each answer and rebuilds its session if another process moved on, and a save
succeeds only on the revision it read — so two processes can never both record an answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.profile import RepoProfile
from grader.repo_index import RepoIndex
from grader.report.model import GradingReport
from interviewer.factory import new_role_session, new_session
from interviewer.model import Turn
from interviewer.report import build_report, render_json
from interviewer.role import UnknownTopic, build_role_plan, role_topics
from interviewer.session import InterviewSession, SessionState
from llm.budget import BudgetBook
from llm.select import chosen_model_string
from rubrics.loader import LoadedRubric, load_rubric_text
from rubrics.registry import resolve_rubric
from server.alerts import budget_book
from server.db.models import Interview, Position, RubricVersion, Submission, User, utcnow
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.jobs.worker import snapshot_path
from server.metrics import METRICS
from server.services.catalogue import default_rubric, joined_position
from server.services.paging import paged
from server.services.spend import DatabaseAccounts
from server.settings import Settings

INDEXES_KEPT = 32


@dataclass(frozen=True)
class _Graded:
    report: GradingReport
    profile: RepoProfile
    index: RepoIndex


class StaleInterview(Exception):
    """Another server process saved this interview since this one read it."""


@dataclass
class LiveInterview:
    session: InterviewSession
    book: BudgetBook
    revision: int
    """The row's revision the session reflects."""
    rubric: LoadedRubric
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reported_usd: float = 0.0
    """Spend already added to the model-spend metric."""


class InterviewRooms:
    """The sessions this process is running, by interview id (rebuilt from the record after a restart)."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.settings = settings
        self.accounts = (
            DatabaseAccounts(sessions, settings.interview.budget_usd, settings.interview.organisation_budget_usd)
            if sessions is not None
            else None
        )
        """The interview's and the organisation's spend, reserved in the database (None: this process's book)."""
        self._live: dict[int, LiveInterview] = {}
        self._graded_cache: OrderedDict[int, _Graded] = OrderedDict()
        self._index_lock = threading.Lock()

    async def open(self, db: AsyncSession, row: Interview) -> LiveInterview:
        assert row.id is not None
        live = self._live.get(row.id)
        if live is None:
            live = await self._rebuild(db, row)
            self._live[row.id] = live
        elif live.revision != row.revision:
            await self.refresh(db, live, row)
        return live

    async def catch_up(self, db: AsyncSession, interview_id: int, live: LiveInterview) -> None:
        """Bring the session up to the saved state if another process moved the interview on (call under the
        interview's lock, before recording an answer)."""
        saved = (await db.exec(select(Interview.revision).where(col(Interview.id) == interview_id))).first()
        if saved is not None and saved != live.revision:
            row = await db.get(Interview, interview_id, populate_existing=True)
            if row is not None:
                await self.refresh(db, live, row)

    async def refresh(self, db: AsyncSession, live: LiveInterview, row: Interview) -> None:
        fresh = await self._rebuild(db, row)
        live.session, live.book, live.revision, live.rubric = fresh.session, fresh.book, fresh.revision, fresh.rubric
        live.reported_usd = 0.0  # a fresh book: what this process spends from here on

    def running(self, interview_id: int) -> LiveInterview | None:
        """The live session, if this process is running it."""
        return self._live.get(interview_id)

    def forget(self, interview_id: int) -> None:
        self._live.pop(interview_id, None)

    async def _rebuild(self, db: AsyncSession, row: Interview) -> LiveInterview:
        """The session of `row` at its saved state: about its submission, or a role interview."""
        if row.submission_id is None:
            rubric = await _role_rubric(db, row.rubric_version_id)
            return self._build_role(row, rubric)
        submission = await _submission(db, row.submission_id)
        return await asyncio.to_thread(self._build, submission, row, await self._rubric(db, submission))

    def _build_role(self, row: Interview, rubric: LoadedRubric) -> LiveInterview:
        assert row.id is not None
        book = budget_book(self.settings.alerts.webhook_url)
        kept = self.accounts is not None
        organisation = None
        if row.position_id is not None and row.organisation_id is not None:
            organisation = str(row.organisation_id)
        session = new_role_session(
            rubric,
            topics_of(row),
            model=chosen_model_string(self.settings.interview.model, self.settings.llm),
            keys=self.settings.llm,
            book=book,
            interview_id=str(row.id),
            budget_usd=None if kept else self.settings.interview.budget_usd,
            organisation=organisation,
            organisation_budget_usd=None if kept else self.settings.interview.organisation_budget_usd,
            time_limit_s=_seconds(self.settings.interview.time_limit_minutes),
            shared=self.accounts,
        )
        session.restore(_state_of(row))
        return LiveInterview(session, book, row.revision, rubric)

    async def _rubric(self, db: AsyncSession, submission: Submission) -> LoadedRubric:
        """The interview rubric of the submission's position (the version its manager chose), else the default."""
        if submission.position_id is not None:
            position = await db.get(Position, submission.position_id)
            if position is not None and position.interview_rubric_version_id is not None:
                version = await db.get(RubricVersion, position.interview_rubric_version_id)
                if version is not None:
                    return load_rubric_text(version.source)
        return resolve_rubric(self.settings.interview.rubric)

    def _build(self, submission: Submission, row: Interview, rubric: LoadedRubric) -> LiveInterview:
        assert submission.report is not None and row.id is not None
        root = snapshot_path(self.settings, submission.id or 0)
        if not root.is_dir():
            raise Conflict("the graded code is no longer kept; grade the repository again to be interviewed on it")
        graded = self._graded(submission, root)
        book = budget_book(self.settings.alerts.webhook_url)
        kept = self.accounts is not None  # then the database holds the ceilings, for every process at once
        session = new_session(
            root,
            graded.profile,
            rubric,
            model=chosen_model_string(self.settings.interview.model, self.settings.llm),
            keys=self.settings.llm,
            book=book,
            interview_id=str(row.id),
            budget_usd=None if kept else self.settings.interview.budget_usd,
            report=graded.report,
            index=graded.index,
            organisation=str(submission.organisation_id) if submission.organisation_id is not None else None,
            organisation_budget_usd=None if kept else self.settings.interview.organisation_budget_usd,
            time_limit_s=_seconds(self.settings.interview.time_limit_minutes),
            shared=self.accounts,
        )
        session.restore(_state_of(row))
        return LiveInterview(session, book, row.revision, rubric)

    def _graded(self, submission: Submission, root: Path) -> _Graded:
        """The decoded report and the search index of one graded snapshot, shared by its interviews (neither
        changes under them; a re-grade is a new submission)."""
        submission_id = submission.id or 0
        with self._index_lock:
            if submission_id in self._graded_cache:
                self._graded_cache.move_to_end(submission_id)
                return self._graded_cache[submission_id]
        assert submission.report is not None
        report = msgspec.json.decode(submission.report, type=GradingReport)
        built = _Graded(report, msgspec.convert(report.profile, RepoProfile), RepoIndex.build(root))
        with self._index_lock:
            self._graded_cache[submission_id] = built
            while len(self._graded_cache) > INDEXES_KEPT:
                self._graded_cache.popitem(last=False)
        return built


async def start(db: AsyncSession, candidate: User, submission_id: int) -> Interview:
    submission = await _submission(db, submission_id)
    if submission.candidate_id != candidate.id:
        raise NotFound("no such submission")
    if candidate.ai_notice_accepted_at is None:
        raise Forbidden("read and accept how Viva uses AI before the interview (POST /api/me/ai-notice)")
    if submission.status != "done" or submission.report is None:
        raise Conflict(f"the interview starts once grading is done (it is {submission.status})")
    row = Interview(candidate_id=candidate.id or 0, submission_id=submission_id)
    db.add(row)
    await db.flush()
    return row


async def start_role(
    db: AsyncSession,
    candidate: User,
    settings: Settings,
    *,
    level: str,
    topics: list[str] | None,
    position_id: int | None,
) -> Interview:
    """A role interview, without a repository: the position's interview rubric when its manager chose a role rubric,
    else the built-in one of `level` (rubrics/builtin/ai-engineer-role-<level>.yaml), on `topics` (None: all)."""
    if candidate.ai_notice_accepted_at is None:
        raise Forbidden("read and accept how Viva uses AI before the interview (POST /api/me/ai-notice)")
    version: RubricVersion | None = None
    organisation_id = None
    if position_id is not None:
        position = await joined_position(db, candidate, position_id)
        organisation_id = position.organisation_id
        if position.interview_rubric_version_id is not None:
            chosen = await db.get(RubricVersion, position.interview_rubric_version_id)
            if chosen is not None and role_topics(load_rubric_text(chosen.source)):
                version = chosen
    if version is None:
        version = await default_rubric(db, f"ai-engineer-role-{level}")
    try:
        build_role_plan(load_rubric_text(version.source), topics)
    except UnknownTopic as problem:
        raise InvalidInput(str(problem), {"field": "topics"}) from None
    row = Interview(
        candidate_id=candidate.id or 0,
        position_id=position_id,
        organisation_id=organisation_id,
        rubric_version_id=version.id,
        topics=",".join(topics or []),
    )
    db.add(row)
    await db.flush()
    return row


def topics_of(row: Interview) -> list[str] | None:
    return [topic for topic in row.topics.split(",") if topic] or None


async def list_interviews(
    db: AsyncSession, user: User, *, submission_id: int | None, limit: int, offset: int
) -> tuple[list[Interview], int]:
    query = select(Interview)
    if user.role == "candidate":
        query = query.where(Interview.candidate_id == user.id)
    elif user.role == "manager":
        query = query.outerjoin(Submission, col(Submission.id) == col(Interview.submission_id)).where(
            or_(
                col(Submission.organisation_id) == user.organisation_id,
                col(Interview.organisation_id) == user.organisation_id,
            )
        )
    if submission_id is not None:
        query = query.where(Interview.submission_id == submission_id)
    query = query.options(defer(Interview.transcript), defer(Interview.state), defer(Interview.report))  # type: ignore[arg-type]
    return await paged(db, query, col(Interview.id).desc(), limit=limit, offset=offset)


async def visible_interview(db: AsyncSession, user: User, interview_id: int) -> Interview:
    row = await db.get(Interview, interview_id)
    if row is None:
        raise NotFound("no such interview")
    if user.role == "admin" or row.candidate_id == user.id:
        return row
    if user.role == "manager" and row.organisation_id is not None and row.organisation_id == user.organisation_id:
        return row  # a role interview taken for one of the organisation's positions
    submission = await db.get(Submission, row.submission_id) if row.submission_id is not None else None
    if user.role == "manager" and submission is not None and submission.organisation_id == user.organisation_id:
        return row
    raise NotFound("no such interview")


async def save(db: AsyncSession, interview_id: int, live: LiveInterview, *, low_confidence: float = 0.6) -> None:
    """Write the session's state on the revision it was read at; StaleInterview if another process got there first
    (nothing is written then, and the caller catches up and answers from the saved state)."""
    session = live.session
    state = session.state()
    values: dict[str, object] = {
        "transcript": msgspec.json.encode(state.transcript).decode(),
        "replies": msgspec.json.encode(state.replies).decode(),
        "state": msgspec.json.encode(state).decode(),
        "revision": live.revision + 1,
    }
    if session.finished:  # (re)built on every save once finished: a spoken last answer's timings arrive after it
        row = await db.get(Interview, interview_id)
        if row is not None:
            report = build_report(
                session,
                live.rubric,
                live.book,
                f"interview:{interview_id}",
                f"submission {row.submission_id}" if row.submission_id is not None else role_label(row, live.rubric),
                low_confidence=low_confidence,
            )
            values["report"] = render_json(report)
            if row.status == "active":
                values.update(status="finished", finished_at=utcnow())
    written = await db.exec(
        update(Interview)
        .where(col(Interview.id) == interview_id, col(Interview.revision) == live.revision)
        .values(**values)
    )
    if written.rowcount != 1:
        await db.rollback()
        raise StaleInterview(f"interview {interview_id} was saved by another process")
    await db.commit()
    live.revision += 1
    spent = live.book.spent(f"interview:{interview_id}")
    if spent > live.reported_usd:
        METRICS.add_spend("interview", spent - live.reported_usd)
        live.reported_usd = spent


def role_label(row: Interview, rubric: LoadedRubric) -> str:
    return f"role interview ({rubric.rubric.title}): {row.topics.replace(',', ', ') or 'all topics'}"


async def _role_rubric(db: AsyncSession, version_id: int | None) -> LoadedRubric:
    version = await db.get(RubricVersion, version_id) if version_id is not None else None
    if version is None:
        raise Conflict("this role interview's rubric is gone")
    return load_rubric_text(version.source, source=f"{version.key} v{version.version}")


def acknowledged(session: InterviewSession) -> list[str]:
    return [turn.answer_id for turn in session.transcript if turn.role == "candidate" and turn.answer_id]


def _state_of(row: Interview) -> SessionState:
    if row.state:
        return msgspec.json.decode(row.state, type=SessionState)
    # A row saved before states were kept: its transcript and replies (the plan starts again at the first topic).
    return SessionState(
        transcript=msgspec.json.decode(row.transcript, type=list[Turn]),
        replies=msgspec.json.decode(row.replies, type=dict[str, str]),
    )


async def _submission(db: AsyncSession, submission_id: int) -> Submission:
    submission = await db.get(Submission, submission_id)
    if submission is None:
        raise NotFound("no such submission")
    return submission


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60.0
