"""Retention: each kind of candidate data is kept as long as its setting says (VIVA_RETENTION_*), then removed.
Scores and statuses stay (a manager's list still shows that a grading happened); the contents go."""

from __future__ import annotations

import shutil
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Interview, Submission, utcnow
from server.jobs.worker import snapshot_path
from server.settings import Settings


async def sweep(db: AsyncSession, settings: Settings) -> dict[str, int]:
    """Remove what is past its retention; returns how many of each kind were removed."""
    removed = {"reports": 0, "transcripts": 0}
    retention = settings.retention
    if retention.reports_days > 0:
        cutoff = utcnow() - timedelta(days=retention.reports_days)
        old = select(Submission).where(col(Submission.finished_at) < cutoff, col(Submission.report).is_not(None))
        for submission in (await db.exec(old)).all():
            submission.report = None
            submission.error = f"the report was removed after {retention.reports_days} days (retention)"
            shutil.rmtree(snapshot_path(settings, submission.id or 0), ignore_errors=True)
            removed["reports"] += 1
    if retention.transcripts_days > 0:
        cutoff = utcnow() - timedelta(days=retention.transcripts_days)
        old_interviews = select(Interview).where(col(Interview.created_at) < cutoff, Interview.transcript != "[]")
        for interview in (await db.exec(old_interviews)).all():
            interview.transcript, interview.replies, interview.report = "[]", "{}", None
            interview.status = "expired"
            removed["transcripts"] += 1
    return removed
