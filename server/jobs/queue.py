"""The grading queue's rows. `DatabaseQueue` keeps the state of every job in the jobs table — queued, running with a
lease, its attempt number, progress, a cancel request, the outcome — whichever engine dispatches it
(server/jobs/engine.py). On its own (SQLite, one machine) it is also the dispatcher: a job is taken by a conditional
update, its lease renewed while it runs, and a job whose lease lapsed (its server was killed) is taken again on the
next claim. Under an engine (Procrastinate on PostgreSQL) the engine hands a worker a job id and `take` marks the row
running. Either way every write of an attempt is fenced by its attempt number: an attempt that was given up on (its
worker frozen, its lease lapsed, the job retried elsewhere) can no longer renew, report or finish."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Job, Organisation, Submission, utcnow

Taken = Job | Literal["busy"] | None
"""What `take` gives: the job, now this worker's; "busy" when its organisation is at its running limit; None when
the job is not to be run (done, cancelled, deleted, or another attempt's)."""


def this_attempt(job_id: int, worker: str, attempt: int) -> tuple[Any, ...]:
    """The fence: the job's row while it is running as this worker's attempt `attempt`, and no longer."""
    return (
        col(Job.id) == job_id,
        col(Job.worker) == worker,
        col(Job.attempts) == attempt,
        col(Job.state) == "running",
    )


def running_now() -> Any:
    """A job running as the running limit counts it: its lease not lapsed (a lapsed one's worker is gone)."""
    return (col(Job.state) == "running") & or_(col(Job.lease_until).is_(None), col(Job.lease_until) >= utcnow())


class JobQueue(Protocol):
    """Workers are named `<process>/<slot>`; a job may be pinned to a process (it holds the job's private-repository
    token in memory), which keeps the pin alive with `renew_pins` while it lives."""

    async def enqueue(
        self,
        db: AsyncSession,
        submission_id: int,
        pinned_to: str | None = None,
        *,
        priority: int = 0,
        organisation_id: int | None = None,
    ) -> Job: ...

    async def claim(self, db: AsyncSession, worker: str) -> Job | None:
        """Take the oldest job that is queued (and not pinned to another living process), or running with a lapsed
        lease; None when there is none."""

    async def renew_pins(self, db: AsyncSession, process: str) -> None:
        """Keep this process's pins on its queued jobs from lapsing."""

    async def renew(self, db: AsyncSession, job_id: int, worker: str, attempt: int) -> bool:
        """Extend the lease; False when the job is no longer this attempt's or a cancel was requested."""

    async def record_progress(self, db: AsyncSession, job_id: int, attempt: int, progress: dict[str, Any]) -> None: ...

    async def finish(self, db: AsyncSession, job_id: int, worker: str, state: str, attempt: int) -> bool:
        """Mark the job finished; False when it is not this attempt's any more (another took it over)."""


class DatabaseQueue:
    def __init__(self, lease_seconds: float, max_attempts: int, running_per_organisation: int = 0) -> None:
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.running_per_organisation = running_per_organisation
        """Gradings one organisation may have running at once, over every worker (0: no limit)."""

    async def enqueue(
        self,
        db: AsyncSession,
        submission_id: int,
        pinned_to: str | None = None,
        *,
        priority: int = 0,
        organisation_id: int | None = None,
    ) -> Job:
        job = Job(
            submission_id=submission_id,
            pinned_to=pinned_to,
            lease_until=utcnow() + self.lease if pinned_to else None,
            priority=priority,
            organisation_id=organisation_id,
        )
        db.add(job)
        await db.flush()
        return job

    async def take(self, db: AsyncSession, job_id: int, worker: str, engine_ref: int) -> Taken:
        """Mark the job running as this worker's next attempt, for an engine that dispatched `engine_ref`: a queued
        job, or a running one that the engine retried after its worker stalled (same engine id). A job over its
        attempts is failed; one whose organisation is at its running limit is left queued ("busy")."""
        now = utcnow()
        job = await db.get(Job, job_id, populate_existing=True)
        if job is None or job.cancel_requested:
            return None
        retried = job.state == "running" and job.engine_ref == engine_ref
        if job.state != "queued" and not retried:
            return None
        if job.attempts - job.handed_back >= self.max_attempts:
            await self._give_up(db, job)
            await db.commit()
            return None
        if job.state == "queued" and not await self._under_running_limit(db, job):
            await db.rollback()
            return "busy"
        taken = await db.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.state) == job.state, col(Job.attempts) == job.attempts)
            .values(
                state="running",
                worker=worker,
                engine_ref=engine_ref,
                lease_until=now + self.lease,
                attempts=Job.attempts + 1,
                updated_at=now,
            )
        )
        if taken.rowcount != 1:
            await db.rollback()
            return None
        await db.commit()
        return await self._started(db, job_id)

    async def claim(self, db: AsyncSession, worker: str, *, pinned_only: bool = False) -> Job | None:
        """`pinned_only`: only jobs pinned to a process (private repositories), for an engine that dispatches the
        others itself: this process's, or one whose holder died (its pin lapsed), to fail with the reason."""
        now = utcnow()
        process = worker.rsplit("/", 1)[0]
        takeable = or_(
            (col(Job.state) == "queued")
            & or_(col(Job.pinned_to).is_(None), col(Job.pinned_to) == process, col(Job.lease_until) < now),
            (col(Job.state) == "running") & (col(Job.lease_until) < now),
        )
        if pinned_only:
            takeable = takeable & col(Job.pinned_to).is_not(None)
        order = (col(Job.priority).desc(), col(Job.id))
        for candidate in (await db.exec(select(Job).where(takeable).order_by(*order).limit(5))).all():
            if candidate.attempts - candidate.handed_back >= self.max_attempts:
                await self._give_up(db, candidate)
                continue
            if candidate.state == "queued" and not await self._under_running_limit(db, candidate):
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
                assert candidate.id is not None
                return await self._started(db, candidate.id)
        await db.commit()
        return None

    async def requeue_lapsed(self, db: AsyncSession, grace_seconds: float) -> int:
        """Put back in the queue the running jobs whose lease lapsed more than `grace_seconds` ago — an attempt
        that died in a way its engine did not see (its task failed outside the grading) — for the dispatcher to hand
        out again; the dead attempt is fenced by its number. Jobs pinned to a process are left to their own rules.
        The number put back."""
        cutoff = utcnow() - timedelta(seconds=grace_seconds)
        result = await db.exec(
            update(Job)
            .where(
                col(Job.state) == "running",
                col(Job.lease_until) < cutoff,
                col(Job.pinned_to).is_(None),
            )
            .values(state="queued", engine_ref=None, updated_at=utcnow())
        )
        await db.commit()
        return int(result.rowcount or 0)

    async def _started(self, db: AsyncSession, job_id: int) -> Job | None:
        job = await db.get(Job, job_id, populate_existing=True)
        if job is not None:
            submission = await db.get(Submission, job.submission_id)
            if submission is not None and submission.status in ("queued", "running"):
                submission.status = "running"
                await db.commit()
        return job

    async def _under_running_limit(self, db: AsyncSession, job: Job) -> bool:
        """Whether the job's organisation has fewer gradings running than the limit, counted over every worker.
        The organisation's row is held first (as the admission limits do), so two workers taking that
        organisation's jobs at once count one after the other."""
        if not self.running_per_organisation or job.organisation_id is None:
            return True
        await db.exec(
            update(Organisation).where(col(Organisation.id) == job.organisation_id).values(id=Organisation.id)
        )
        running = (
            select(func.count()).select_from(Job).where(col(Job.organisation_id) == job.organisation_id, running_now())
        )
        return (await db.exec(running)).one() < self.running_per_organisation

    async def renew(self, db: AsyncSession, job_id: int, worker: str, attempt: int) -> bool:
        result = await db.exec(
            update(Job)
            .where(
                *this_attempt(job_id, worker, attempt),
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

    async def record_progress(self, db: AsyncSession, job_id: int, attempt: int, progress: dict[str, Any]) -> None:
        await db.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.attempts) == attempt)
            .values(progress=json.dumps(progress), updated_at=utcnow())
        )
        await db.commit()

    async def finish(self, db: AsyncSession, job_id: int, worker: str, state: str, attempt: int) -> bool:
        result = await db.exec(
            update(Job)
            .where(
                *this_attempt(job_id, worker, attempt),
            )
            .values(state=state, lease_until=None, updated_at=utcnow())
        )
        return bool(result.rowcount == 1)

    async def release(self, db: AsyncSession, job_id: int, worker: str, attempt: int) -> bool:
        """Give a running job back to the queue unfinished (its worker is stopping): queued again for any worker, its
        submission queued again. The attempt's number stays spent, so it stays fenced, but it does not count against
        the job's attempts (a rolling restart of the fleet must not fail a long grading); False when the job is not
        this attempt's any more, or a user asked to cancel it (then the cancel is its outcome)."""
        result = await db.exec(
            update(Job)
            .where(
                *this_attempt(job_id, worker, attempt),
                col(Job.cancel_requested).is_(False),
            )
            # A pinned job's pin is its lease: lapsed now, so a living process takes it (and fails it with the
            # reason, its token having gone with this one).
            .values(
                state="queued",
                engine_ref=None,
                lease_until=utcnow(),
                handed_back=Job.handed_back + 1,
                updated_at=utcnow(),
            )
        )
        if result.rowcount != 1:
            await db.rollback()
            return False
        job = await db.get(Job, job_id, populate_existing=True)
        submission = await db.get(Submission, job.submission_id) if job is not None else None
        if submission is not None and submission.status == "running":
            submission.status = "queued"
        await db.commit()
        return True

    async def _give_up(self, db: AsyncSession, job: Job) -> None:
        job.state = "failed"
        submission = await db.get(Submission, job.submission_id)
        if submission is not None and submission.status in ("queued", "running"):
            submission.status, submission.finished_at = "failed", utcnow()
            submission.error = f"the grading was attempted {job.attempts - job.handed_back} times and never finished"
