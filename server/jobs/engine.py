"""What carries the gradings: on one machine Viva's own jobs table, on many an established engine (docs/SCALING.md).

Both implement `JobEngine`: the web process enqueues a grading (a Job row, in the request's transaction, so a
grading is never admitted without its job or queued without its submission) and every process that runs gradings
starts the engine's worker tasks. The Job row stays the one record of a grading's state for both — running,
attempt, progress, a cancel request, the outcome (server/jobs/queue.py) — so the pages, the SSE stream and the
limits read one table whichever engine runs the work.

- `DatabaseEngine` (SQLite, one machine): the in-process worker claims rows with leases (DatabaseQueue).
- `ProcrastinateEngine` (PostgreSQL): each Job row is handed to Procrastinate, whose own tables
  (`procrastinate_jobs`, `procrastinate_workers`) carry dispatch, priorities, worker heartbeats and retries. A
  dispatcher defers the rows the web wrote (an outbox: the row commits with the submission, the engine's job follows
  it; the queueing lock makes two dispatchers harmless) and each worker retries the jobs of workers whose heartbeat
  stopped. Any process can cancel: the flag is on the row, and the running attempt sees it at its next renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import event, func, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Job, WorkerHost, utcnow
from server.jobs.queue import DatabaseQueue, running_now
from server.settings import Settings

log = logging.getLogger("viva.engine")

PRIORITIES = {"interactive": 10, "regrade": 5, "batch": 0}
"""Higher runs first: a candidate waiting on their own grading before a manager's re-grade, both before a batch."""

GRADING_QUEUE = "grading"
HAND_BACK_SECONDS = 30.0
"""How long a drain waits for the gradings it handed back to reach a step where they stop."""
ENDING_SECONDS = 3.0
"""How long `close` waits for the engine's own loops to end by themselves (each ends at its next look at the stop
flag) before they are cancelled: a loop cancelled in the middle of a database call leaves a traceback in the log."""
DISPATCH_LOCK = "viva: dispatch"
FORGET_EVERY_SECONDS = 3600.0
"""How often a worker deletes the engine's rows of long-finished gradings."""
TASK_NAME = "viva.grade"


class JobEngine(Protocol):
    name: str
    queue: DatabaseQueue
    """The Job rows' bookkeeping, shared by every engine."""

    async def enqueue(
        self, db: AsyncSession, submission_id: int, pinned_to: str | None, *, priority: int, organisation_id: int | None
    ) -> Job:
        """Add the grading's job in the caller's transaction; it runs once that commits."""

    def start(self, run: RunJob | None, slots: int) -> list[asyncio.Task[None]]:
        """Start this process's part: with `run`, `slots` gradings at a time; without (a web-only process), what the
        engine needs of every process that enqueues."""

    def stop_taking(self) -> None:
        """Take no more gradings in this process; the running ones go on (a worker that drains before it stops)."""

    async def close(self) -> None: ...


class RunJob(Protocol):
    """What runs one taken job (server.jobs.worker.Worker.process)."""

    name: str

    async def process(self, job: Job, worker: str) -> None: ...


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def engine_kind(settings: Settings, database_url: str) -> str:
    """ "procrastinate" or "database", as `VIVA_SERVER_JOB_ENGINE` asks (auto: Procrastinate on PostgreSQL)."""
    kind = settings.server.job_engine
    postgres = database_url.startswith("postgresql")
    if kind == "auto":
        return "procrastinate" if postgres else "database"
    if kind == "procrastinate" and not postgres:
        raise ValueError("VIVA_SERVER_JOB_ENGINE=procrastinate needs a PostgreSQL VIVA_DATABASE_URL")
    return kind


def make_engine(settings: Settings, database_url: str, factory: async_sessionmaker[AsyncSession]) -> JobEngine:
    """The engine the settings ask for (`VIVA_SERVER_JOB_ENGINE`)."""
    server = settings.server
    queue = DatabaseQueue(
        server.job_lease_seconds, server.job_max_attempts, settings.submissions.running_per_organisation
    )
    if engine_kind(settings, database_url) == "procrastinate":
        return ProcrastinateEngine(settings, database_url, factory, queue)
    return DatabaseEngine(settings, factory, queue)


SCHEMA_LOCK = "viva: procrastinate schema"


async def prepare_engine_schema(database_url: str) -> bool:
    """Create Procrastinate's tables in the database if they are not there yet; True when it created them. Under an
    advisory lock, so processes starting at once create them once. (Upgrading Procrastinate across versions that
    change its schema is its own migrations' job: docs/SCALING.md.)"""
    import procrastinate  # noqa: PLC0415 - only a PostgreSQL deployment loads the engine
    import psycopg  # noqa: PLC0415 - as above

    conninfo = libpq_url(database_url)
    schema = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo)).schema_manager.get_schema()
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
        await connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (SCHEMA_LOCK,))
        try:
            cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return False
            async with connection.transaction():
                await connection.execute(schema)  # SQL shipped with the library, no parameters
            return True
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (SCHEMA_LOCK,))


class DatabaseEngine:
    name = "database"

    def __init__(self, settings: Settings, factory: async_sessionmaker[AsyncSession], queue: DatabaseQueue) -> None:
        self.settings, self.factory, self.queue = settings, factory, queue
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def enqueue(
        self, db: AsyncSession, submission_id: int, pinned_to: str | None, *, priority: int, organisation_id: int | None
    ) -> Job:
        return await self.queue.enqueue(
            db, submission_id, pinned_to, priority=priority, organisation_id=organisation_id
        )

    def start(self, run: RunJob | None, slots: int) -> list[asyncio.Task[None]]:
        if run is None:
            return []
        self._tasks = [asyncio.create_task(self.slot(run, f"{run.name}/{slot}")) for slot in range(slots)]
        return list(self._tasks)

    def stop_taking(self) -> None:
        self._stopping.set()  # each slot ends once its grading has

    async def slot(self, run: RunJob, name: str, *, pinned_only: bool = False) -> None:
        """One grading at a time, claimed from the rows (`pinned_only`: private repositories' jobs only)."""
        while not self._stopping.is_set():
            try:
                async with self.factory() as db:
                    job = await self.queue.claim(db, name, pinned_only=pinned_only)
                if job is None:
                    await sleep_or_stop(self._stopping, 0.5)
                    continue
                await run.process(job, name)
            except Exception:  # the worker must outlive any one job's failure, and say what happened
                log.exception("the grading worker hit an error; continuing")
                await sleep_or_stop(self._stopping, 1.0)

    async def close(self) -> None:
        self.stop_taking()
        await end_tasks(self._tasks)


async def end_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """End a process's loops once their stop flags are set: a moment to end by themselves (a slot between
    gradings, a loop between rounds), then the rest are cancelled."""
    current = asyncio.current_task()
    waiting = [task for task in tasks if task is not current and not task.done()]
    if waiting:
        await asyncio.wait(waiting, timeout=ENDING_SECONDS)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def libpq_url(database_url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's) as the `postgresql://…` libpq and psycopg take."""
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


class ProcrastinateEngine:
    name = "procrastinate"

    def __init__(
        self, settings: Settings, database_url: str, factory: async_sessionmaker[AsyncSession], queue: DatabaseQueue
    ) -> None:
        import procrastinate  # noqa: PLC0415 - only a PostgreSQL deployment loads the engine

        self.settings, self.factory, self.queue = settings, factory, queue
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=libpq_url(database_url), min_size=1, max_size=8)
        )
        self.task = self.app.task(name=TASK_NAME, queue=GRADING_QUEUE, pass_context=True)(self._grade)
        self._run: RunJob | None = None
        self._worker: Any = None
        """Procrastinate's worker in this process, once it runs."""
        self._heartbeat: asyncio.Task[None] | None = None
        """Beating for that worker while it drains (see stop_taking)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._pinned = DatabaseEngine(settings, factory, queue)
        self._nudge = asyncio.Event()
        self._stopping = asyncio.Event()
        self._opened = False

    async def _open(self) -> None:
        if not self._opened:
            await self.app.open_async()
            self._opened = True

    async def enqueue(
        self, db: AsyncSession, submission_id: int, pinned_to: str | None, *, priority: int, organisation_id: int | None
    ) -> Job:
        job = await self.queue.enqueue(db, submission_id, pinned_to, priority=priority, organisation_id=organisation_id)
        nudge = self._nudge
        loop = asyncio.get_running_loop()
        # Hand the row to the engine as soon as it is committed (the dispatcher also finds it on its next round).
        event.listen(db.sync_session, "after_commit", lambda session: loop.call_soon_threadsafe(nudge.set), once=True)
        return job

    def start(self, run: RunJob | None, slots: int) -> list[asyncio.Task[None]]:
        self._run = run
        tasks = [asyncio.create_task(self._dispatch_loop())]
        if run is not None:
            tasks += [asyncio.create_task(self._work(run, slots)), asyncio.create_task(self._recover_loop())]
            # A private repository's job stays with the process holding its token (memory only, never in the
            # database), so Procrastinate cannot hand it to any worker: this process's rows lease takes it.
            tasks.append(asyncio.create_task(self._pinned.slot(run, f"{run.name}/pinned", pinned_only=True)))
        self._tasks = tasks
        return list(tasks)

    def stop_taking(self) -> None:
        """Procrastinate's worker stops fetching and waits for its running gradings. It stops its own heartbeat as
        it begins to wait; this process keeps beating for it meanwhile, or the other workers would take the draining
        worker for dead and retry the gradings it is finishing."""
        self._pinned.stop_taking()
        if self._worker is not None and self._heartbeat is None:
            self._worker.stop()
            self._heartbeat = asyncio.create_task(self._beat_while_draining(self._worker))

    async def _beat_while_draining(self, worker: Any) -> None:
        every = self.settings.server.worker_heartbeat_seconds
        while worker.worker_id is not None:
            with contextlib.suppress(Exception):  # a missed beat is made up by the next
                await self.app.job_manager.update_heartbeat(worker.worker_id)
            await asyncio.sleep(every)

    async def close(self) -> None:
        self._stopping.set()
        self._nudge.set()
        if self._worker is not None:
            self._worker.stop()  # a no-op after a drain; without one, Procrastinate's worker ends with its jobs
        await self._pinned.close()
        await end_tasks(self._tasks)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._opened:
            with contextlib.suppress(Exception):
                await self.app.close_async()
            self._opened = False

    # --- the outbox: Job rows the web wrote, deferred to Procrastinate ------------------------------------------

    async def dispatch(self) -> int:
        """Defer the queued rows the engine has not been given yet, as far as their organisation's running limit has
        room (a batch of hundreds behind a limit of 2 waits here, in Viva's rows, not as engine jobs taken and put
        back); the number deferred. One process dispatches at a time (a transaction's advisory lock; the others
        skip the round), so two never hand out the same row or the same organisation's last slot."""
        from procrastinate.exceptions import AlreadyEnqueued  # noqa: PLC0415 - see __init__

        await self._open()
        limit = self.queue.running_per_organisation
        deferred = 0
        async with self.factory() as db:
            locked = await db.exec(select(func.pg_try_advisory_xact_lock(func.hashtext(DISPATCH_LOCK))))
            if not locked.one():
                return 0
            room = await self._room_by_organisation(db) if limit else {}
            full = [organisation for organisation, left in room.items() if left <= 0]
            waiting = select(Job).where(
                col(Job.state) == "queued", col(Job.engine_ref).is_(None), col(Job.pinned_to).is_(None)
            )
            if full:
                waiting = waiting.where(or_(col(Job.organisation_id).is_(None), col(Job.organisation_id).not_in(full)))
            rows = (await db.exec(waiting.order_by(col(Job.priority).desc(), col(Job.id)).limit(100))).all()
            try:
                for row in rows:
                    if limit and row.organisation_id is not None:
                        left = room.get(row.organisation_id, limit)
                        if left <= 0:
                            continue
                        room[row.organisation_id] = left - 1
                    try:
                        engine_id = await self.task.configure(
                            priority=row.priority, queueing_lock=f"viva-job-{row.id}"
                        ).defer_async(job_id=row.id)
                    except AlreadyEnqueued:
                        continue  # deferred already, by a dispatcher whose record of it was lost
                    await db.exec(update(Job).where(col(Job.id) == row.id).values(engine_ref=engine_id))
                    deferred += 1
            finally:
                await db.commit()  # the rows deferred so far, even if one defer failed
        return deferred

    async def _room_by_organisation(self, db: AsyncSession) -> dict[int, int]:
        """Per organisation with gradings in flight: how many more its running limit allows. In flight is running
        (as the limit counts it) or handed to the engine and not yet started."""
        limit = self.queue.running_per_organisation
        in_flight = or_(
            running_now(),
            (col(Job.state) == "queued") & col(Job.engine_ref).is_not(None),
        )
        counts = await db.exec(
            select(Job.organisation_id, func.count())
            .where(col(Job.organisation_id).is_not(None), in_flight)
            .group_by(col(Job.organisation_id))
        )
        return {organisation: limit - count for organisation, count in counts.all() if organisation is not None}

    async def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.dispatch()
            except Exception:
                log.exception("handing queued gradings to Procrastinate failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self._poll_seconds())
            self._nudge.clear()

    def _poll_seconds(self) -> float:
        return max(0.05, min(2.0, self.settings.server.worker_heartbeat_seconds / 5))

    # --- the worker --------------------------------------------------------------------------------------------

    async def _work(self, run: RunJob, slots: int) -> None:
        from procrastinate.worker import Worker as EngineWorker  # noqa: PLC0415 - see __init__

        await self._open()
        server = self.settings.server
        self._worker = EngineWorker(
            app=self.app,
            queues=[GRADING_QUEUE],
            name=run.name,
            concurrency=slots,
            wait=True,
            install_signal_handlers=False,
            update_heartbeat_interval=server.worker_heartbeat_seconds,
            stalled_worker_timeout=server.worker_stalled_seconds,
            fetch_job_polling_interval=self._poll_seconds(),
            abort_job_polling_interval=self._poll_seconds(),
            # Longer than the Viva worker's drain, which decides how long running gradings may take and hands back
            # the rest (server/jobs/worker.py); this bound is for a worker stopped without a drain.
            shutdown_graceful_timeout=server.worker_drain_seconds + HAND_BACK_SECONDS + 5,
        )
        await self._worker.run()

    async def _grade(self, context: Any, job_id: int) -> None:
        """The Procrastinate task: take the row as this attempt, grade, write the outcome (fenced by the attempt).
        A job whose organisation is at its running limit goes back to wait its turn."""
        run = self._run
        if run is None:
            raise RuntimeError("this process runs no gradings")
        engine_id = int(context.job.id)
        worker = f"{run.name}/{engine_id}"
        async with self.factory() as db:
            taken = await self.queue.take(db, job_id, worker, engine_id)
        if taken == "busy":
            await self._back_to_outbox(job_id)
            return
        if taken is None:
            return
        await run.process(taken, worker)

    async def _back_to_outbox(self, job_id: int) -> None:
        """The job's organisation filled its running slots after the job was handed out (two dispatchers at once):
        the row waits in the outbox again, and the dispatcher hands it out when a slot frees."""
        async with self.factory() as db:
            await db.exec(update(Job).where(col(Job.id) == job_id, col(Job.state) == "queued").values(engine_ref=None))
            await db.commit()

    async def recover_stalled(self) -> int:
        """Retry the jobs of workers whose heartbeat stopped (killed, frozen, their machine gone), and put back the
        rows whose attempt died unseen (a lease lapsed well past the stall time); the number recovered."""
        await self._open()
        seconds = self.settings.server.worker_stalled_seconds
        stalled = list(await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds))
        for job in stalled:
            log.warning("retrying grading job %s: its worker %s stopped answering", job.id, job.worker_id)
            await self.app.job_manager.retry_job(job)
        async with self.factory() as db:
            lapsed = await self.queue.requeue_lapsed(db, seconds + self.settings.server.job_lease_seconds)
        if lapsed:
            log.warning("%d grading(s) whose attempt died unseen were queued again", lapsed)
            self._nudge.set()
        return len(stalled) + lapsed

    async def forget_finished(self) -> None:
        """Delete the engine's rows of gradings that ended more than `VIVA_SERVER_ENGINE_KEEP_HOURS` ago, whatever
        their end (succeeded, failed, cancelled, aborted). Viva's own Job and Submission rows keep the record; the
        engine's rows are its bookkeeping, and a fleet writes thousands a day."""
        await self._open()
        await self.app.job_manager.delete_old_jobs(
            nb_hours=self.settings.server.engine_keep_hours,
            queue=GRADING_QUEUE,
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )

    async def _recover_loop(self) -> None:
        forgotten_at = float("-inf")
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await self.recover_stalled()
                if loop.time() - forgotten_at >= FORGET_EVERY_SECONDS:
                    forgotten_at = loop.time()
                    await self.forget_finished()
            except Exception:
                log.exception("recovering stalled gradings failed; trying again")
            await sleep_or_stop(self._stopping, max(0.2, self.settings.server.worker_stalled_seconds / 3))


# --- worker hosts -----------------------------------------------------------------------------------------------


async def report_host(
    factory: async_sessionmaker[AsyncSession],
    name: str,
    *,
    engine: str,
    slots: int,
    busy: Callable[[], int],
    done: Callable[[], int],
    every_seconds: float,
    stopping: asyncio.Event,
    draining: Callable[[], bool] = lambda: False,
) -> None:
    """Keep this worker's row in the worker hosts table current: its engine, free capacity, whether it is draining,
    heartbeat."""
    while not stopping.is_set():
        try:
            async with factory() as db:
                row = await db.get(WorkerHost, name)
                if row is None:
                    row = WorkerHost(name=name, host=name.rsplit(":", 1)[0], engine=engine[:200], slots=slots)
                    db.add(row)
                row.busy, row.jobs_done, row.draining, row.heartbeat_at = busy(), done(), draining(), utcnow()
                await db.commit()
        except Exception:
            log.exception("reporting this worker's heartbeat failed; trying again")
        await sleep_or_stop(stopping, every_seconds)


async def living_hosts(db: AsyncSession, stalled_seconds: float) -> list[tuple[WorkerHost, bool]]:
    """Every worker host with whether it is alive (a heartbeat within `stalled_seconds`), newest first."""
    rows = (await db.exec(select(WorkerHost).order_by(col(WorkerHost.heartbeat_at).desc()))).all()
    cutoff = utcnow() - timedelta(seconds=stalled_seconds)
    return [(row, row.heartbeat_at >= cutoff) for row in rows]


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stopping` is set first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
