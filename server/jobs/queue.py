"""The grading queue. `JobQueue` is the interface a distributed backend can implement later; `DatabaseQueue` keeps
the queue in the jobs table, which makes it durable for free: a job is taken by a conditional update, its lease is
renewed while it runs, and a job whose lease lapsed (its server was killed) is taken again on the next claim."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Job, Submission, utcnow


class JobQueue(Protocol):
    """Workers are named `<process>/<slot>`; a job may be pinned to a process (it holds the job's private-repository
    token in memory), which keeps the pin alive with `renew_pins` while it lives."""

    async def enqueue(self, db: AsyncSession, submission_id: int, pinned_to: str | None = None) -> Job: ...

    async def claim(self, db: AsyncSession, worker: str) -> Job | None:
        """Take the oldest job that is queued (and not pinned to another living process), or running with a lapsed
        lease; None when there is none."""

    async def renew_pins(self, db: AsyncSession, process: str) -> None:
        """Keep this process's pins on its queued jobs from lapsing."""

    async def renew(self, db: AsyncSession, job_id: int, worker: str) -> bool:
        """Extend the lease; False when the job is no longer this worker's or a cancel was requested."""

    async def record_progress(self, db: AsyncSession, job_id: int, progress: dict[str, Any]) -> None: ...

    async def finish(self, db: AsyncSession, job_id: int, worker: str, state: str) -> bool:
        """Mark the job finished; False when it is not this worker's any more (another took it over)."""


class DatabaseQueue:
    def __init__(self, lease_seconds: float, max_attempts: int) -> None:
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    async def enqueue(self, db: AsyncSession, submission_id: int, pinned_to: str | None = None) -> Job:
        job = Job(
            submission_id=submission_id, pinned_to=pinned_to, lease_until=utcnow() + self.lease if pinned_to else None
        )
        db.add(job)
        await db.flush()
        return job

    async def claim(self, db: AsyncSession, worker: str) -> Job | None:
        now = utcnow()
        process = worker.rsplit("/", 1)[0]
        takeable = or_(
            (col(Job.state) == "queued")
            & or_(col(Job.pinned_to).is_(None), col(Job.pinned_to) == process, col(Job.lease_until) < now),
            (col(Job.state) == "running") & (col(Job.lease_until) < now),
        )
        for candidate in (await db.exec(select(Job).where(takeable).order_by(col(Job.id)).limit(5))).all():
            if candidate.attempts >= self.max_attempts:
                await self._give_up(db, candidate)
                continue
            taken = await db.exec(
                update(Job)
                .where(col(Job.id) == candidate.id, takeable, col(Job.attempts) == candidate.attempts)
                .values(
                    state="running",
                    worker=worker,
                    lease_until=now + self.lease,
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
            )
            if taken.rowcount == 1:
                await db.commit()
                job = await db.get(Job, candidate.id, populate_existing=True)
                submission = await db.get(Submission, candidate.submission_id)
                if submission is not None:
                    submission.status = "running"
                    await db.commit()
                return job
        await db.commit()
        return None

    async def renew(self, db: AsyncSession, job_id: int, worker: str) -> bool:
        result = await db.exec(
            update(Job)
            .where(
                col(Job.id) == job_id,
                col(Job.worker) == worker,
                col(Job.state) == "running",
                col(Job.cancel_requested).is_(False),
            )
            .values(lease_until=utcnow() + self.lease, updated_at=utcnow())
        )
        await db.commit()
        return bool(result.rowcount == 1)

    async def renew_pins(self, db: AsyncSession, process: str) -> None:
        await db.exec(
            update(Job)
            .where(col(Job.state) == "queued", col(Job.pinned_to) == process)
            .values(lease_until=utcnow() + self.lease)
        )
        await db.commit()

    async def record_progress(self, db: AsyncSession, job_id: int, progress: dict[str, Any]) -> None:
        await db.exec(
            update(Job).where(col(Job.id) == job_id).values(progress=json.dumps(progress), updated_at=utcnow())
        )
        await db.commit()

    async def finish(self, db: AsyncSession, job_id: int, worker: str, state: str) -> bool:
        result = await db.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.worker) == worker, col(Job.state) == "running")
            .values(state=state, lease_until=None, updated_at=utcnow())
        )
        return bool(result.rowcount == 1)

    async def _give_up(self, db: AsyncSession, job: Job) -> None:
        job.state = "failed"
        submission = await db.get(Submission, job.submission_id)
        if submission is not None and submission.status in ("queued", "running"):
            submission.status, submission.finished_at = "failed", utcnow()
            submission.error = f"the grading was attempted {job.attempts} times and never finished"
