"""Retention: each kind of candidate data is kept as long as its setting says (VIVA_RETENTION_*), then removed.
Scores and statuses stay (a manager's list still shows that a grading happened); the contents go."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Interview, Submission, utcnow
from server.jobs.worker import snapshot_path, staging_path
from server.settings import Settings

STAGED_KEEP_S = 86400.0


def recordings_dir(settings: Settings, interview_id: int) -> Path:
    """Where an interview's recorded answers are kept (only when the candidate opted in), one WAV per answer."""
    return settings.data_path / "recordings" / str(interview_id)


def forget_files(settings: Settings, submission_id: int, interview_ids: list[int]) -> None:
    """The files that go with a deleted submission: its kept code and its interviews' recordings."""
    shutil.rmtree(snapshot_path(settings, submission_id), ignore_errors=True)
    for interview_id in interview_ids:
        shutil.rmtree(recordings_dir(settings, interview_id), ignore_errors=True)


async def sweep(db: AsyncSession, settings: Settings) -> dict[str, int]:
    """Remove what is past its retention; returns how many of each kind were removed."""
    removed = {"reports": 0, "transcripts": 0, "recordings": 0, "staged": 0}
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
            interview.transcript, interview.replies, interview.report, interview.state = "[]", "{}", None, ""
            interview.status = "expired"
            removed["transcripts"] += 1
    if retention.recordings_days > 0:
        cutoff_s = time.time() - retention.recordings_days * 86400
        for recording in (settings.data_path / "recordings").glob("*/*.wav"):
            if recording.stat().st_mtime < cutoff_s:
                recording.unlink(missing_ok=True)
                removed["recordings"] += 1
    # A graded tree staged by a process that died before its outcome was written (server/jobs/worker.py) is
    # nobody's: a day on, it goes.
    staging = staging_path(settings)
    if staging.is_dir():
        for staged in staging.iterdir():
            if staged.stat().st_mtime < time.time() - STAGED_KEEP_S:
                shutil.rmtree(staged, ignore_errors=True)
                removed["staged"] += 1
    return removed
