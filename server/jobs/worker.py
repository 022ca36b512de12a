"""The in-process worker: takes jobs from the queue, grades in a thread, streams progress, writes the report.

Progress goes two ways: to the database (so any server can answer, and a restarted one knows where things were)
and to in-process subscribers (the SSE stream) at once. Cancelling works at the next progress point: the grading
thread's progress callback raises, and the grading stops there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.dynamic import DynamicOptions
from grader.errors import GraderError
from grader.pipeline import GradeOptions, grade
from server.db.models import Job, RubricVersion, Submission, utcnow
from server.jobs.queue import JobQueue
from server.metrics import METRICS
from server.services.catalogue import loaded
from server.settings import Settings

log = logging.getLogger("viva.worker")
TERMINAL = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside the grading thread when the job was cancelled or taken over: the grading stops there."""


class ProgressHub:
    """In-process pub/sub of progress events per submission, for the SSE stream."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def subscribe(self, submission_id: int) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers[submission_id].add(queue)
        return queue

    def unsubscribe(self, submission_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers[submission_id].discard(queue)

    def publish(self, submission_id: int, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(submission_id, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)


class Worker:
    def __init__(
        self,
        settings: Settings,
        factory: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        hub: ProgressHub,
    ) -> None:
        self.settings, self.factory, self.queue, self.hub = settings, factory, queue, hub
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.tokens: dict[int, str] = {}
        """Private-repository tokens by submission id: memory only, used for the clone, never stored."""
        self._stopping = asyncio.Event()

    async def run(self, slot: int) -> None:
        name = f"{self.name}/{slot}"
        while not self._stopping.is_set():
            try:
                async with self.factory() as db:
                    job = await self.queue.claim(db, name)
                if job is None:
                    await _sleep_or_stop(self._stopping, 0.5)
                    continue
                await self.process(job, name)
            except Exception:  # the worker must outlive any one job's failure, and say what happened
                log.exception("the grading worker hit an error; continuing")
                await _sleep_or_stop(self._stopping, 1.0)

    def stop(self) -> None:
        self._stopping.set()

    async def process(self, job: Job, worker: str) -> None:
        assert job.id is not None
        async with self.factory() as db:
            submission = await db.get(Submission, job.submission_id)
            rubric_row = await db.get(RubricVersion, submission.rubric_version_id) if submission else None
        if submission is None or rubric_row is None:
            return
        assert submission.id is not None
        loop = asyncio.get_running_loop()
        cancelled = False
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def progress(stage: str, done: int, total: int) -> None:  # runs in the grading thread
            if cancelled:
                raise Cancelled
            loop.call_soon_threadsafe(events.put_nowait, {"stage": stage, "done": done, "total": total})

        async def keep_lease() -> None:
            nonlocal cancelled
            while True:
                await asyncio.sleep(self.settings.server.job_lease_seconds / 3)
                async with self.factory() as db:
                    if not await self.queue.renew(db, job.id, worker):  # type: ignore[arg-type]
                        cancelled = True
                        return

        async def forward_progress() -> None:
            latest: dict[str, Any] = {}
            while True:
                event = await events.get()
                latest = {**event, "status": "running"}
                self.hub.publish(submission.id, latest)  # type: ignore[arg-type]
                async with self.factory() as db:
                    await self.queue.record_progress(db, job.id, latest)  # type: ignore[arg-type]

        lease = asyncio.create_task(keep_lease())
        forwarder = asyncio.create_task(forward_progress())
        scratch = self.settings.data_path / "jobs" / str(job.id)
        shutil.rmtree(scratch, ignore_errors=True)  # a retried job starts clean
        scratch.mkdir(parents=True)
        started = time.monotonic()
        state, report, error = "failed", None, ""
        try:
            target, options = self._target_and_options(submission)
            report = await asyncio.to_thread(grade, target, loaded(rubric_row), scratch, options, progress)
            state = "done"
        except Cancelled:
            state, error = "cancelled", "cancelled"
        except GraderError as failure:  # the repository could not be fetched: the candidate's to fix
            error = str(failure)
        except Exception as failure:  # a bug of ours: the job fails with the reason, the worker goes on
            log.exception("grading job %s crashed", job.id)
            error = f"Viva failed while grading: {type(failure).__name__}: {failure}"
        finally:
            lease.cancel()
            await asyncio.sleep(0)  # let the forwarder drain what the thread posted
            while not events.empty():
                await asyncio.sleep(0.01)
            forwarder.cancel()
            shutil.rmtree(scratch, ignore_errors=True)
            self.tokens.pop(submission.id, None)
        METRICS.observe_job(state, time.monotonic() - started)
        await self._finish(job, worker, submission.id, state, report, error)

    def _target_and_options(self, submission: Submission) -> tuple[str, GradeOptions]:
        settings = self.settings
        fixture = submission.target.startswith("fixture:")
        target = submission.target
        if fixture:
            assert settings.submissions.fixtures_dir, "fixture targets are accepted only when fixtures_dir is set"
            target = str(Path(settings.submissions.fixtures_dir) / submission.target.removeprefix("fixture:"))
        return target, GradeOptions(
            fetch_limits=settings.fetch,
            profile_limits=settings.profile,
            allow_local=fixture,
            static_only=settings.submissions.static_only,
            disabled_checks=settings.grading.disabled_checks,
            token=self.tokens.get(submission.id or 0),
            judge_keys=settings.llm,
            dynamic=DynamicOptions.from_settings(settings.sandbox),
        )

    async def _finish(self, job: Job, worker: str, submission_id: int, state: str, report: Any, error: str) -> None:
        async with self.factory() as db:
            if not await self.queue.finish(db, job.id, worker, state):  # type: ignore[arg-type]
                await db.rollback()
                return  # another worker took the job over; its outcome counts
            submission = await db.get(Submission, submission_id)
            if submission is not None:
                submission.status, submission.finished_at, submission.error = state, utcnow(), error[:2000]
                if report is not None:
                    submission.report = msgspec.json.encode(report).decode()
                    submission.score, submission.coverage = report.score, report.coverage
                    rubric = await db.get(RubricVersion, submission.rubric_version_id)
                    if rubric is not None:
                        rubric.used = True  # from now on this version is immutable
            await db.commit()
        self.hub.publish(submission_id, {"status": state, "error": error})


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


def progress_of(job: Job | None) -> dict[str, Any]:
    if job is None:
        return {}
    try:
        data = json.loads(job.progress or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
