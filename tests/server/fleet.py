"""Workers in this process, each with its own job engine instance and name, sharing one database: what two
`viva worker` processes would be, for the engine contract tests and the fleet benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from server.db.engine import database_url as database_url_of
from server.db.engine import make_engine, session_factory
from server.db.models import Job, Submission, utcnow
from server.jobs.engine import PRIORITIES, JobEngine, end_tasks
from server.jobs.engine import make_engine as make_job_engine
from server.jobs.worker import ProgressHub, Worker
from server.settings import Settings
from tests.server.conftest import server_settings


def engine_settings(database_url: str, data_dir: Path, **extra: str) -> Settings:
    """Quick leases and heartbeats, so that a lapse, a stall and a recovery take seconds, not minutes."""
    return server_settings(
        database_url,
        data_dir,
        VIVA_SERVER_JOB_LEASE_SECONDS="2",
        VIVA_SERVER_WORKER_HEARTBEAT_SECONDS="0.5",
        VIVA_SERVER_WORKER_STALLED_SECONDS="2",
        **extra,
    )


class Fleet:
    """Workers started in this process, each with its own engine instance and name, sharing one database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = database_url_of(settings)
        self.database = make_engine(self.url)
        self.factory = session_factory(self.database)
        self.web = make_job_engine(settings, self.url, self.factory)
        self.started: list[tuple[str, int]] = []
        """(worker, job id) as each grading starts."""
        self.began: dict[int, datetime] = {}
        """Job id → when its grading started (for the queue's overhead: its row's created_at to this)."""
        self._running: list[tuple[Worker, JobEngine, list[asyncio.Task[None]]]] = []
        self._web_tasks = self.web.start(None, 0)

    def worker(self, name: str, slots: int = 1) -> Worker:
        engine = make_job_engine(self.settings, self.url, self.factory)
        worker = Worker(self.settings, self.factory, engine, ProgressHub())
        worker.name = name
        inner = worker.process

        async def process(job: Job, as_worker: str) -> None:
            assert job.id is not None
            self.started.append((name, job.id))
            self.began.setdefault(job.id, utcnow())
            await inner(job, as_worker)

        worker.process = process  # type: ignore[method-assign]
        self._running.append((worker, engine, worker.start(slots)))
        return worker

    async def stop(self) -> None:
        for worker, engine, tasks in self._running:
            worker.stop()
            await engine.close()
            await end_tasks(tasks)
        await self.web.close()
        await end_tasks(self._web_tasks)
        await self.database.dispose()

    async def submit(self, candidate_id: int, *, organisation_id: int | None = None, priority: str = "batch") -> int:
        """A submission and its job, written the way the web process writes them, in one transaction."""
        async with self.factory() as db:
            submission = Submission(
                candidate_id=candidate_id, organisation_id=organisation_id, target="fixture:naive", rubric_version_id=1
            )
            db.add(submission)
            await db.flush()
            assert submission.id is not None
            await self.web.enqueue(
                db, submission.id, None, priority=PRIORITIES[priority], organisation_id=organisation_id
            )
            await db.commit()
            return submission.id

    async def statuses(self, ids: list[int]) -> dict[int, str]:
        async with self.factory() as db:
            rows = (await db.exec(select(Submission).where(col(Submission.id).in_(ids)))).all()
            return {row.id or 0: row.status for row in rows}

    async def until(
        self, ids: list[int], done: Callable[[dict[int, str]], bool], seconds: float = 60
    ) -> dict[int, str]:
        deadline = time.monotonic() + seconds
        while True:
            current = await self.statuses(ids)
            if done(current) or time.monotonic() > deadline:
                return current
            await asyncio.sleep(0.1)


def finished(statuses: dict[int, str]) -> bool:
    return all(status in ("done", "failed", "cancelled") for status in statuses.values())
