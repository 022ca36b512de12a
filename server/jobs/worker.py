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
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.dynamic import DynamicOptions
from grader.errors import GraderError
from grader.pipeline import JUDGE_ACCOUNT, GradeOptions, grade
from grader.report.model import GradingReport
from llm.budget import BudgetBook
from llm.select import default_model_string
from rubrics.loader import LoadedRubric
from server.alerts import budget_book
from server.db.models import Job, RubricVersion, Submission, utcnow
from server.jobs.engine import HAND_BACK_SECONDS, JobEngine, process_name, sleep_or_stop
from server.metrics import METRICS
from server.services.catalogue import loaded
from server.services.prefetch import Prefetched, forget, prefetched_repo
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
    """Runs gradings in this process, taken by the job engine (server/jobs/engine.py): `viva serve`'s in-process
    worker, or `viva worker` on a machine of its own."""

    def __init__(
        self,
        settings: Settings,
        factory: async_sessionmaker[AsyncSession],
        engine: JobEngine,
        hub: ProgressHub,
    ) -> None:
        self.settings, self.factory, self.engine, self.hub = settings, factory, engine, hub
        self.queue = engine.queue
        self.name = process_name()
        self.tokens: dict[int, str] = {}
        """Private-repository tokens by submission id: memory only, used for the clone, never stored. Their jobs
        are pinned to this process (see JobQueue)."""
        self.running = False
        """Set once the worker's tasks run: only then may this process accept a token."""
        self.busy = 0
        """Gradings running in this process now."""
        self.done = 0
        self.stopping = asyncio.Event()
        self.runs: dict[int, _JobRun] = {}
        """The attempts running in this process, by job id (a drain hands them back)."""
        self.draining = False
        """Stopping: taking no more gradings (the worker hosts page and /metrics show it)."""

    def start(self, slots: int) -> list[asyncio.Task[None]]:
        self.running = True
        return [*self.engine.start(self, slots), asyncio.create_task(self.keep_pins())]

    async def keep_pins(self) -> None:
        """Keep the pins on the queued jobs whose tokens this process holds (a dead process's pins lapse)."""
        while not self.stopping.is_set():
            try:
                async with self.factory() as db:
                    await self.queue.renew_pins(db, self.name)
            except Exception:
                log.exception("renewing the pins on queued private-repository jobs failed; trying again")
            await sleep_or_stop(self.stopping, self.settings.server.job_lease_seconds / 3)

    def stop(self) -> None:
        self.stopping.set()

    async def drain(
        self, seconds: float, hand_back_seconds: float = HAND_BACK_SECONDS, *, hurry: asyncio.Event | None = None
    ) -> int:
        """Stop well: take no more gradings, let the running ones finish for up to `seconds`, then hand back the
        rest — each stops at its next step and its job is queued again for another worker (this attempt fenced) —
        and wait up to `hand_back_seconds` for them to stop. `hurry` (a second signal) ends the wait for them to
        finish at once. The number handed back. Heartbeats and leases go on throughout, so nobody takes a draining
        worker for dead."""
        self.draining = True
        self.engine.stop_taking()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.busy and loop.time() < deadline and not (hurry is not None and hurry.is_set()):
            await asyncio.sleep(0.05)
        running = list(self.runs.values())
        for run in running:
            run.hand_back()
        deadline = loop.time() + hand_back_seconds
        while self.busy and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if running:
            log.warning("handed back %d grading(s) that had not finished in the drain's %.0f s", len(running), seconds)
        return len(running)

    async def process(self, job: Job, worker: str) -> None:
        self.busy += 1
        try:
            await self._process(job, worker)
        finally:
            self.busy -= 1
            self.done += 1

    async def _process(self, job: Job, worker: str) -> None:
        assert job.id is not None
        async with self.factory() as db:
            submission = await db.get(Submission, job.submission_id)
            rubric_row = await db.get(RubricVersion, submission.rubric_version_id) if submission else None
        if submission is None or submission.id is None or rubric_row is None:
            return  # the submission was deleted while queued
        run = _JobRun(self, job.id, submission.id, worker, job.attempts)
        self.runs[job.id] = run
        try:
            await self._attempt(job, submission, rubric_row, run)
        finally:
            self.runs.pop(job.id, None)

    async def _attempt(self, job: Job, submission: Submission, rubric_row: RubricVersion, run: _JobRun) -> None:
        assert job.id is not None and submission.id is not None
        book = budget_book(self.settings.alerts.webhook_url)  # the judge's spend, for the metrics and alerts
        if job.pinned_to is not None and submission.id not in self.tokens:
            await self._finish(
                run,
                "failed",
                None,
                "the token for this private repository was held only in the memory of a server process that stopped "
                "before grading it (tokens are never stored); submit the repository again with its token",
            )
            return
        # Each attempt its own scratch: an attempt given up on (its worker frozen) may still be writing to its own.
        scratch = self.settings.data_path / "jobs" / f"{job.id}-{job.attempts}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        started = time.monotonic()
        try:
            try:
                target, options = self._target_and_options(submission, book)
            except FileNotFoundError:
                await self._finish(run, "failed", None, "the private repository's clone is gone; submit it again")
                return
            state, report, error = await run.execute(target, loaded(rubric_row), scratch, options)
            if run.handed_back and state == "cancelled":  # stopped by the drain, not finished by it
                async with self.factory() as db:
                    if await self.queue.release(db, run.job_id, run.worker, run.attempt):
                        return  # the clone of a private repository stays: the next attempt grades it
                # not released: a user cancelled it meanwhile, or another attempt has it; written as any outcome
            if report is not None and submission.prefetched:
                report = _as_cloned(report, prefetched_repo(self.settings, submission.prefetched)[1])
            METRICS.add_spend("grading", book.spent(JUDGE_ACCOUNT))
            METRICS.observe_job(state, time.monotonic() - started)
            await self._finish(run, state, report, error, scratch / "repo")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self.tokens.pop(submission.id, None)
        if submission.prefetched and state in TERMINAL:
            forget(self.settings, submission.prefetched)  # graded: its snapshot is kept with the submission

    def _target_and_options(self, submission: Submission, book: BudgetBook) -> tuple[str, GradeOptions]:
        """An https URL is cloned within the submission host allow-list; an uploaded archive (unpacked at upload)
        and a test fixture are local directories Viva itself wrote or was configured with."""
        settings = self.settings
        target, local = submission.target, False
        if submission.prefetched:
            # Cloned with its token by the web process that received it; FileNotFoundError (the clone is gone)
            # fails the job with the reason.
            repo, _ = prefetched_repo(settings, submission.prefetched)
            target, local = str(repo), True
        elif target.startswith("fixture:"):
            target, local = str(fixture_path(settings, target)), True
        elif target.startswith("archive:"):
            target, local = str(uploads_path(settings) / target.removeprefix("archive:")), True
        limits = msgspec.structs.replace(settings.fetch, allowed_hosts=list(settings.submissions.hosts))
        return target, GradeOptions(
            fetch_limits=limits,
            profile_limits=settings.profile,
            allow_local=local,
            static_only=settings.submissions.static_only,
            disabled_checks=settings.grading.disabled_checks,
            token=self.tokens.get(submission.id or 0),
            judge_models=[settings.grading.judge_model or default_model_string(settings.llm)],
            judge_keys=settings.llm,
            judge_budget_usd=settings.grading.judge_budget_usd,
            dynamic=DynamicOptions.from_settings(settings.sandbox),
            budget_book=book,
        )

    async def _finish(
        self, run: _JobRun, state: str, report: GradingReport | None, error: str, fetched: Path | None = None
    ) -> bool:
        """Write the attempt's outcome, once: False (nothing written, not even the snapshot) when the attempt was
        given up on and another took the job over; its outcome counts."""
        submission_id = run.submission_id
        # The graded tree goes to the shared directory before the job's row is locked (across filesystems that move
        # is a copy, and may be slow); under the lock it only takes its place, by a rename.
        staged = None
        if state == "done" and fetched is not None:
            staged = await asyncio.to_thread(stage_snapshot, self.settings, submission_id, run.attempt, fetched)
        replaced = None
        async with self.factory() as db:
            if not await self.queue.finish(db, run.job_id, run.worker, state, run.attempt):
                await db.rollback()
                log.warning(
                    "job %s attempt %s was taken over; its outcome (%s) is dropped", run.job_id, run.attempt, state
                )
                if staged is not None:
                    await asyncio.to_thread(shutil.rmtree, staged, True)
                return False
            if staged is not None:
                replaced = publish_snapshot(self.settings, submission_id, staged)  # one writer: the row's attempt
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
        if replaced is not None:
            await asyncio.to_thread(shutil.rmtree, replaced, True)
        self.hub.publish(submission_id, {"status": state, "error": error})
        return True


class _JobRun:
    """One attempt at one job: the grading thread, its lease, its progress, and the cancel flag between them."""

    def __init__(self, owner: Worker, job_id: int, submission_id: int, worker: str, attempt: int) -> None:
        self.owner, self.job_id, self.submission_id, self.worker = owner, job_id, submission_id, worker
        self.attempt = attempt
        """This attempt's number (the job's `attempts` when it was taken): every write of it is fenced by it."""
        self.cancelled = False
        self.handed_back = False
        """Stopped because its worker is stopping, not by a user: the job goes back to the queue."""
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def hand_back(self) -> None:
        self.handed_back = self.cancelled = True

    def progress(self, stage: str, done: int, total: int) -> None:
        """Called in the grading thread; raising here is how a cancel stops the grading."""
        if self.cancelled:
            raise Cancelled
        self.loop.call_soon_threadsafe(self.events.put_nowait, {"stage": stage, "done": done, "total": total})

    async def execute(
        self, target: str, rubric: LoadedRubric, scratch: Path, options: GradeOptions
    ) -> tuple[str, GradingReport | None, str]:
        lease, forwarder = asyncio.create_task(self._keep_lease()), asyncio.create_task(self._forward())
        try:
            report = await asyncio.to_thread(grade, target, rubric, scratch, options, self.progress)
            return "done", report, ""
        except Cancelled:
            return "cancelled", None, "cancelled"
        except GraderError as failure:  # the repository could not be fetched: the candidate's to fix
            return "failed", None, str(failure)
        except Exception as failure:  # a bug of ours: the job fails with the reason, the worker goes on
            log.exception("grading job %s crashed", self.job_id)
            return "failed", None, f"Viva failed while grading: {type(failure).__name__}: {failure}"
        finally:
            lease.cancel()
            while not self.events.empty():  # let the last progress reach the database and the stream
                await asyncio.sleep(0.01)
            forwarder.cancel()

    async def _keep_lease(self) -> None:
        owner = self.owner
        while True:
            await asyncio.sleep(owner.settings.server.job_lease_seconds / 3)
            async with owner.factory() as db:
                if not await owner.queue.renew(db, self.job_id, self.worker, self.attempt):
                    self.cancelled = True  # cancelled by a user, or taken over after a lapse: stop at the next step
                    return

    async def _forward(self) -> None:
        owner = self.owner
        while True:
            latest = {**(await self.events.get()), "status": "running"}
            owner.hub.publish(self.submission_id, latest)
            async with owner.factory() as db:
                await owner.queue.record_progress(db, self.job_id, self.attempt, latest)


def fixture_path(settings: Settings, target: str) -> Path:
    """A test fixture's directory (`fixture:NAME`, accepted only when fixtures_dir is set)."""
    assert settings.submissions.fixtures_dir, "fixture targets are accepted only when fixtures_dir is set"
    return Path(settings.submissions.fixtures_dir) / target.removeprefix("fixture:")


def _as_cloned(report: GradingReport, cloned: Prefetched) -> GradingReport:
    """A report of a snapshot the web process cloned, naming the repository and commit it was cloned from."""
    repo = msgspec.structs.replace(
        report.repo, target=cloned.target, source_kind="remote", commit=cloned.commit or report.repo.commit,
        ref=cloned.ref, dirty=False, web_url=_web_url(cloned),
    )  # fmt: skip
    return msgspec.structs.replace(report, repo=repo)


def _web_url(cloned: Prefetched) -> str | None:
    if cloned.commit and cloned.target.startswith("https://github.com/"):
        return f"{cloned.target}/blob/{cloned.commit}/"
    return None


def uploads_path(settings: Settings) -> Path:
    return settings.shared_path / "uploads"


def snapshot_path(settings: Settings, submission_id: int) -> Path:
    """The graded code, kept: the interview reads it, and a re-grade could see the same code after a force-push."""
    return settings.shared_path / "snapshots" / str(submission_id)


def staging_path(settings: Settings) -> Path:
    """Where graded trees wait for their attempt's outcome: beside the snapshots, on their filesystem, so taking
    their place is a rename."""
    return settings.shared_path / "snapshots" / ".staging"


def stage_snapshot(settings: Settings, submission_id: int, attempt: int, fetched: Path) -> Path | None:
    """Move the graded tree into the shared directory's staging area (a copy when it is another filesystem); the
    staged path, or None when the grading left no tree."""
    if not fetched.is_dir():
        return None
    staged = staging_path(settings) / f"{submission_id}-{attempt}-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(fetched), staged)
    return staged


def publish_snapshot(settings: Settings, submission_id: int, staged: Path) -> Path | None:
    """Put a staged tree in the submission's snapshot place by renames only (same filesystem: instant, whatever the
    tree's size); the tree it replaced, moved aside for the caller to delete once the outcome is committed."""
    destination = snapshot_path(settings, submission_id)
    replaced = None
    if destination.exists():
        replaced = staged.with_name(staged.name + ".replaced")
        shutil.rmtree(replaced, ignore_errors=True)
        destination.rename(replaced)
    staged.rename(destination)
    return replaced


def progress_of(job: Job | None) -> dict[str, Any]:
    if job is None:
        return {}
    try:
        data = json.loads(job.progress or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
