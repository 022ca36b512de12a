"""Text interviews about a graded submission: the live sessions of this process, and their record in the database.

Answers carry ids chosen by the client. The session records an answer once and remembers its reply, and the row
keeps the transcript and the replies after every answer: a client that reconnects is told which answers were
acknowledged, and an answer it sends again gets the same reply without being recorded twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.profile import RepoProfile
from grader.repo_index import RepoIndex
from grader.report.model import GradingReport
from interviewer.factory import new_session
from interviewer.model import Turn
from interviewer.report import build_report, render_json
from interviewer.session import InterviewSession
from llm.budget import BudgetBook
from rubrics.registry import resolve_rubric
from server.db.models import Interview, Submission, User, utcnow
from server.errors import Conflict, Forbidden, NotFound
from server.jobs.worker import snapshot_path
from server.metrics import METRICS
from server.settings import Settings

INDEXES_KEPT = 32


@dataclass
class LiveInterview:
    session: InterviewSession
    book: BudgetBook
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reported_usd: float = 0.0
    """Spend already added to the model-spend metric."""


class InterviewRooms:
    """The sessions this process is running, by interview id (rebuilt from the record after a restart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._live: dict[int, LiveInterview] = {}
        self._indexes: OrderedDict[int, RepoIndex] = OrderedDict()
        self._index_lock = threading.Lock()

    async def open(self, db: AsyncSession, row: Interview) -> LiveInterview:
        assert row.id is not None
        live = self._live.get(row.id)
        if live is None:
            live = await asyncio.to_thread(self._build, await _submission(db, row.submission_id), row)
            self._live[row.id] = live
        return live

    def running(self, interview_id: int) -> LiveInterview | None:
        """The live session, if this process is running it."""
        return self._live.get(interview_id)

    def forget(self, interview_id: int) -> None:
        self._live.pop(interview_id, None)

    def _build(self, submission: Submission, row: Interview) -> LiveInterview:
        assert submission.report is not None and row.id is not None
        report = msgspec.json.decode(submission.report, type=GradingReport)
        root = snapshot_path(self.settings, submission.id or 0)
        if not root.is_dir():
            raise Conflict("the graded code is no longer kept; grade the repository again to be interviewed on it")
        book = BudgetBook()
        index = self._index(submission.id or 0, root)
        session = new_session(
            root,
            msgspec.convert(report.profile, RepoProfile),
            resolve_rubric(self.settings.interview.rubric),
            model=self.settings.interview.model or "offline",
            keys=self.settings.llm,
            book=book,
            interview_id=str(row.id),
            budget_usd=self.settings.interview.budget_usd,
            report=report,
            index=index,
        )
        session.resume(msgspec.json.decode(row.transcript, type=list[Turn]), json.loads(row.replies))
        return LiveInterview(session, book)

    def _index(self, submission_id: int, root: Path) -> RepoIndex:
        """One search index per graded snapshot, shared by its interviews (the code does not change under them)."""
        with self._index_lock:
            if submission_id in self._indexes:
                self._indexes.move_to_end(submission_id)
                return self._indexes[submission_id]
        built = RepoIndex.build(root)
        with self._index_lock:
            self._indexes[submission_id] = built
            while len(self._indexes) > INDEXES_KEPT:
                self._indexes.popitem(last=False)
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


async def visible_interview(db: AsyncSession, user: User, interview_id: int) -> Interview:
    row = await db.get(Interview, interview_id)
    if row is None:
        raise NotFound("no such interview")
    if user.role == "admin" or row.candidate_id == user.id:
        return row
    submission = await db.get(Submission, row.submission_id)
    if user.role == "manager" and submission is not None and submission.organisation_id == user.organisation_id:
        return row
    raise NotFound("no such interview")


def save(row: Interview, live: LiveInterview, rubric_id: str) -> None:
    session = live.session
    spent = live.book.spent(f"interview:{row.id}")
    if spent > live.reported_usd:
        METRICS.add_spend("interview", spent - live.reported_usd)
        live.reported_usd = spent
    row.transcript = msgspec.json.encode(session.transcript).decode()
    row.replies = json.dumps(session.replies)
    if session.finished and row.status == "active":
        row.status, row.finished_at = "finished", utcnow()
        rubric = resolve_rubric(rubric_id)
        report = build_report(session, rubric, live.book, f"interview:{row.id}", f"submission {row.submission_id}")
        row.report = render_json(report)


def acknowledged(session: InterviewSession) -> list[str]:
    return [turn.answer_id for turn in session.transcript if turn.role == "candidate" and turn.answer_id]


async def _submission(db: AsyncSession, submission_id: int) -> Submission:
    submission = await db.get(Submission, submission_id)
    if submission is None:
        raise NotFound("no such submission")
    return submission
