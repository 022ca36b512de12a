"""One contract for both job engines: Viva's jobs table on SQLite, Procrastinate on PostgreSQL (server/jobs/engine.py).

Every test runs on both (the `database_url` fixture picks SQLite or a real PostgreSQL cluster) with real workers —
`Worker` objects each with its own name and its own engine instance, as two `viva worker` processes would have —
grading fixture repositories statically. Only the grading's pace is changed where a test needs a grading that is
still running (a cancel, a running limit): the grader is wrapped to report progress slowly first.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, text, update
from sqlmodel import col, select

from grader.pipeline import grade as real_grade
from server.app import prepare_database
from server.db.models import Job, Submission, WorkerHost, utcnow
from server.jobs import worker as worker_module
from server.jobs.engine import ProcrastinateEngine, report_host
from server.jobs.queue import DatabaseQueue
from server.services import submissions
from tests.server.conftest import database, make_identity, make_organisation
from tests.server.fleet import Fleet, engine_settings, finished


@pytest.fixture
async def fleet(database_url: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    settings = engine_settings(database_url, tmp_path / "data", VIVA_SUBMISSIONS_RUNNING_PER_ORGANISATION="2")
    await prepare_database(settings)
    made = Fleet(settings)
    try:
        yield made
    finally:
        await made.stop()


@pytest.fixture
def slow_gradings(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Make every grading report progress for `seconds` before it grades (a cancel or a limit has time to act)."""

    def slow(seconds: float) -> None:
        def grade(target: str, rubric: Any, scratch: Path, options: Any, progress: Any) -> Any:
            steps = max(1, int(seconds / 0.05))
            for step in range(steps):
                progress("fetch", step, steps)
                time.sleep(0.05)
            return real_grade(target, rubric, scratch, options, progress)

        monkeypatch.setattr(worker_module, "grade", grade)

    return slow


async def test_every_grading_runs_once_and_its_result_is_written(fleet: Fleet) -> None:
    candidate = await make_identity(fleet.settings, "candidate")
    ids = [await fleet.submit(candidate.user.id or 0) for _ in range(4)]
    fleet.worker("host-a:1", slots=2)
    fleet.worker("host-b:2", slots=2)
    statuses = await fleet.until(ids, finished)
    assert set(statuses.values()) == {"done"}, statuses
    assert len(fleet.started) == len({job for _, job in fleet.started}) == 4  # each grading ran once
    async with database(fleet.settings) as db:
        jobs = (await db.exec(select(Job).where(col(Job.submission_id).in_(ids)))).all()
        assert {job.attempts for job in jobs} == {1} and {job.state for job in jobs} == {"done"}
        reports = (await db.exec(select(Submission.report).where(col(Submission.id).in_(ids)))).all()
        assert all(report and msgspec.json.decode(report)["score"] is not None for report in reports)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_on_postgresql_the_jobs_live_in_the_engines_own_tables(fleet: Fleet) -> None:
    """(SQLite has no engine of its own: there the jobs table is the queue, which every other test here covers.)"""
    assert fleet.web.name == "procrastinate"
    candidate = await make_identity(fleet.settings, "candidate")
    ids = [await fleet.submit(candidate.user.id or 0) for _ in range(2)]
    fleet.worker("host-a:1")
    assert set((await fleet.until(ids, finished)).values()) == {"done"}
    async with database(fleet.settings) as db:
        refs = (await db.exec(select(Job.engine_ref).where(col(Job.submission_id).in_(ids)))).all()
        rows = (
            await db.exec(
                text("SELECT id, status, task_name, args FROM procrastinate_jobs WHERE id = ANY(:ids)").bindparams(
                    ids=list(refs)
                )
            )
        ).all()
    assert (
        len(rows) == 2
        and {row.status for row in rows} == {"succeeded"}
        and {row.task_name for row in rows} == {"viva.grade"}
    )


async def test_a_candidates_own_grading_runs_before_a_batch(fleet: Fleet) -> None:
    candidate = await make_identity(fleet.settings, "candidate")
    batch = [await fleet.submit(candidate.user.id or 0, priority="batch") for _ in range(3)]
    own = await fleet.submit(candidate.user.id or 0, priority="interactive")
    await asyncio.sleep(1.0)  # every row handed to the engine before any worker looks
    fleet.worker("host-a:1", slots=1)
    await fleet.until([*batch, own], finished)
    async with database(fleet.settings) as db:
        first_job = (await db.exec(select(Job).where(Job.id == fleet.started[0][1]))).one()
    assert first_job.submission_id == own, fleet.started


async def test_a_running_limit_of_two_holds_across_two_workers(fleet: Fleet, slow_gradings: Any) -> None:
    slow_gradings(1.0)
    organisation = await make_organisation(fleet.settings)
    candidate = await make_identity(fleet.settings, "candidate", organisation_id=organisation)
    ids = [await fleet.submit(candidate.user.id or 0, organisation_id=organisation) for _ in range(6)]
    fleet.worker("host-a:1", slots=3)
    fleet.worker("host-b:2", slots=3)
    most = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        async with fleet.factory() as db:
            running = (
                await db.exec(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.organisation_id == organisation, Job.state == "running")
                )
            ).one()
        most = max(most, running)
        if finished(await fleet.statuses(ids)):
            break
        await asyncio.sleep(0.05)
    assert set((await fleet.statuses(ids)).values()) == {"done"}
    assert most == 2, f"at most {most} of the organisation's gradings ran at once, the limit is 2"
    # Each worker alone has 3 slots: what held the count at 2 is the organisation's limit, counted globally.
    if fleet.web.name == "procrastinate":
        # The jobs waiting for a slot waited as Viva's rows, not as engine jobs taken and put back again and again:
        # one engine job per grading (the margin: a job that still found its organisation full when it started, or
        # a defer whose record was lost, is handed out again).
        async with database(fleet.settings) as db:
            engine_jobs = (
                await db.exec(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'viva.grade'"))
            ).one()[0]
        assert engine_jobs <= len(ids) + 2, f"{engine_jobs} engine jobs for {len(ids)} gradings"


async def test_a_cancel_reaches_the_grading_on_whichever_worker_runs_it(fleet: Fleet, slow_gradings: Any) -> None:
    slow_gradings(20.0)
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    fleet.worker("host-b:2")
    await fleet.until([submission_id], lambda statuses: statuses[submission_id] == "running")
    started = time.monotonic()
    async with database(fleet.settings) as db:  # as the web process does, on its own connection
        await submissions.cancel(db, candidate.user, submission_id)
        await db.commit()
    statuses = await fleet.until([submission_id], finished, seconds=30)
    assert statuses[submission_id] == "cancelled"
    assert time.monotonic() - started < 10  # at the next renewal of its lease, not at the end of the grading


async def test_an_attempt_that_was_given_up_on_writes_nothing(fleet: Fleet) -> None:
    """The fencing the engines rely on. Attempt 1's worker froze; the engine retried the same engine job, and the
    same process (resumed) or another took it as attempt 2 and finished it. Attempt 1 can renew nothing, report
    nothing and finish nothing — even under the same worker name, which is what a retry on the same process has."""
    queue = fleet.web.queue
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    worker = "host-a:1/7"
    async with fleet.factory() as db:
        job_id = (await db.exec(select(Job.id).where(Job.submission_id == submission_id))).one()
        assert job_id is not None
        first = await queue.take(db, job_id, worker, engine_ref=7)
        assert isinstance(first, Job) and first.attempts == 1
        second = await queue.take(db, job_id, worker, engine_ref=7)  # the engine's retry of its stalled job
        assert isinstance(second, Job) and second.attempts == 2
        assert await queue.take(db, job_id, worker, engine_ref=8) is None  # another engine job: not its to run
        assert await queue.finish(db, job_id, worker, "done", 2)
        await db.commit()
        assert not await queue.renew(db, job_id, worker, 1)
        await queue.record_progress(db, job_id, 1, {"stage": "late", "done": 1, "total": 1})
        assert not await queue.finish(db, job_id, worker, "failed", 1)
        await db.commit()
        row = await db.get(Job, job_id, populate_existing=True)
    assert row is not None and row.state == "done" and row.attempts == 2 and "late" not in row.progress


async def test_a_lapsed_lease_frees_a_job_for_another_worker_and_fences_the_first(fleet: Fleet) -> None:
    """The same on the jobs table's own dispatch (the SQLite engine): a lapsed lease, another worker's claim."""
    queue = fleet.web.queue
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    async with fleet.factory() as db:
        job_id = (await db.exec(select(Job.id).where(Job.submission_id == submission_id))).one()
        assert job_id is not None
        first = await queue.take(db, job_id, "frozen:1/0", engine_ref=1)
        assert isinstance(first, Job) and first.attempts == 1
        await db.exec(update(Job).where(col(Job.id) == job_id).values(lease_until=utcnow() - timedelta(minutes=1)))
        await db.commit()
        second = await queue.claim(db, "healthy:2/0")
        assert second is not None and second.id == job_id and second.attempts == 2
        assert await queue.finish(db, job_id, "healthy:2/0", "done", 2)
        await db.commit()
        assert not await queue.finish(db, job_id, "frozen:1/0", "failed", 1)
        row = await db.get(Job, job_id, populate_existing=True)
    assert row is not None and row.state == "done" and row.worker == "healthy:2/0"


async def test_a_grading_whose_attempt_died_unseen_is_run_again(fleet: Fleet) -> None:
    """An attempt that died where its engine could not see it (its task failed outside the grading, its process
    lost the database) leaves a running row whose lease lapses: the row goes back to the queue and is graded."""
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    async with fleet.factory() as db:
        job_id = (await db.exec(select(Job.id).where(Job.submission_id == submission_id))).one()
        assert job_id is not None
        ghost = await fleet.web.queue.take(db, job_id, "ghost:1/99", engine_ref=99)
        assert isinstance(ghost, Job) and ghost.attempts == 1
        await db.exec(update(Job).where(col(Job.id) == job_id).values(lease_until=utcnow() - timedelta(hours=1)))
        await db.commit()
    fleet.worker("host-a:1")
    statuses = await fleet.until([submission_id], finished)
    assert statuses[submission_id] == "done"
    async with fleet.factory() as db:
        row = await db.get(Job, job_id, populate_existing=True)
    assert row is not None and row.attempts == 2 and row.worker.startswith("host-a:1/")


async def test_a_stopping_worker_finishes_its_grading_and_takes_no_more(fleet: Fleet, slow_gradings: Any) -> None:
    """A drain (SIGTERM to `viva worker`): the running grading finishes where it runs — longer than the stall time,
    so the draining worker must go on answering for it — and the queued one goes to a worker that is not stopping."""
    slow_gradings(4.0)
    candidate = await make_identity(fleet.settings, "candidate")
    first = await fleet.submit(candidate.user.id or 0)
    draining = fleet.worker("host-a:1", slots=2)
    await fleet.until([first], lambda statuses: statuses[first] == "running")
    drain = asyncio.create_task(draining.drain(60))
    await asyncio.sleep(0.2)
    second = await fleet.submit(candidate.user.id or 0)
    fleet.worker("host-b:2", slots=2)  # a slot free for the first grading, were it taken for a dead worker's
    assert await drain == 0
    statuses = await fleet.until([first, second], finished)
    assert statuses == {first: "done", second: "done"}
    async with fleet.factory() as db:
        jobs = {job.submission_id: job for job in (await db.exec(select(Job))).all()}
    assert jobs[first].attempts == 1 and jobs[first].worker.startswith("host-a:1/"), "retried while it was draining"
    assert jobs[second].worker.startswith("host-b:2/"), "a draining worker took a new grading"


async def test_a_grading_that_outlasts_the_drain_is_handed_back_and_graded_elsewhere(
    fleet: Fleet, slow_gradings: Any
) -> None:
    slow_gradings(60.0)
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    draining = fleet.worker("host-a:1")
    await fleet.until([submission_id], lambda statuses: statuses[submission_id] == "running")
    started = time.monotonic()
    assert await draining.drain(0.5) == 1
    assert time.monotonic() - started < 10  # at the grading's next step, not at its end
    async with fleet.factory() as db:
        job = (await db.exec(select(Job).where(Job.submission_id == submission_id))).one()
        submission = await db.get(Submission, submission_id)
    assert job.state == "queued" and submission is not None and submission.status == "queued"
    assert submission.error == "" and submission.finished_at is None  # handed back, not cancelled nor failed
    slow_gradings(0.1)
    fleet.worker("host-b:2")
    assert (await fleet.until([submission_id], finished))[submission_id] == "done"
    async with fleet.factory() as db:
        job = (await db.exec(select(Job).where(Job.submission_id == submission_id))).one()
    assert job.attempts == 2 and job.worker.startswith("host-b:2/")


async def test_a_cancel_during_a_drain_is_a_cancel(fleet: Fleet, slow_gradings: Any) -> None:
    """A drain hands back what it stopped; what a user cancelled meanwhile stays cancelled, not queued again."""
    slow_gradings(60.0)
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    draining = fleet.worker("host-a:1")
    await fleet.until([submission_id], lambda statuses: statuses[submission_id] == "running")
    async with database(fleet.settings) as db:
        await submissions.cancel(db, candidate.user, submission_id)
        await db.commit()
    await draining.drain(0)
    statuses = await fleet.until([submission_id], finished, seconds=20)
    assert statuses[submission_id] == "cancelled"


async def test_the_graded_tree_takes_its_place_by_a_rename_while_the_job_row_is_held(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across filesystems (a shared directory on NFS) moving a tree is a copy: it is done before the job's row is
    written, and under the row only renames happen. A re-grade's tree replaces the first, leaving nothing behind."""
    held: list[bool] = [False]
    copied_while_held: list[str] = []
    real_finish, real_publish = DatabaseQueue.finish, worker_module.ProgressHub.publish
    real_move, real_copytree = shutil.move, shutil.copytree

    async def finish(self: DatabaseQueue, *args: Any) -> bool:
        held[0] = True  # from the row's update to the commit, which the worker announces right after
        return await real_finish(self, *args)

    def publish(self: Any, submission_id: int, event: dict[str, Any]) -> None:
        if event.get("status") in ("done", "failed", "cancelled"):
            held[0] = False
        real_publish(self, submission_id, event)

    def move(source: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        if held[0]:
            copied_while_held.append(f"move {source}")
        return real_move(source, destination, *args, **kwargs)

    def copytree(source: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        if held[0]:
            copied_while_held.append(f"copytree {source}")
        return real_copytree(source, destination, *args, **kwargs)

    monkeypatch.setattr(DatabaseQueue, "finish", finish)
    monkeypatch.setattr(worker_module.ProgressHub, "publish", publish)
    monkeypatch.setattr(shutil, "move", move)
    monkeypatch.setattr(shutil, "copytree", copytree)
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    fleet.worker("host-a:1")
    assert (await fleet.until([submission_id], finished))[submission_id] == "done"
    kept = worker_module.snapshot_path(fleet.settings, submission_id)
    assert (kept / "README.md").is_file()
    assert copied_while_held == []
    # A re-grade of the same submission (its job queued again) replaces the tree; nothing is left in staging.
    (kept / "stale-marker").write_text("from the first grading")
    async with fleet.factory() as db:
        await db.exec(
            update(Job).where(col(Job.submission_id) == submission_id).values(state="queued", engine_ref=None)
        )
        await db.exec(update(Submission).where(col(Submission.id) == submission_id).values(status="queued"))
        await db.commit()
    await fleet.until([submission_id], lambda statuses: statuses[submission_id] == "running", seconds=20)
    assert (await fleet.until([submission_id], finished))[submission_id] == "done"
    assert (kept / "README.md").is_file() and not (kept / "stale-marker").exists()
    assert list(worker_module.staging_path(fleet.settings).iterdir()) == []
    assert copied_while_held == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_engines_rows_of_finished_gradings_are_deleted_after_their_keep(fleet: Fleet) -> None:
    candidate = await make_identity(fleet.settings, "candidate")
    ids = [await fleet.submit(candidate.user.id or 0) for _ in range(2)]
    worker = fleet.worker("host-a:1")
    assert set((await fleet.until(ids, finished)).values()) == {"done"}

    async def engine_rows() -> int:
        async with database(fleet.settings) as db:
            return int((await db.exec(text("SELECT count(*) FROM procrastinate_jobs"))).one()[0])

    engine = worker.engine
    assert isinstance(engine, ProcrastinateEngine)
    await engine.forget_finished()  # kept 24 hours by default
    assert await engine_rows() == 2
    engine.settings = msgspec.structs.replace(
        engine.settings, server=msgspec.structs.replace(engine.settings.server, engine_keep_hours=0)
    )
    await engine.forget_finished()
    assert await engine_rows() == 0
    assert set((await fleet.statuses(ids)).values()) == {"done"}  # Viva's own record stays


async def test_hand_backs_do_not_use_up_a_jobs_attempts(fleet: Fleet) -> None:
    """A rolling restart of the fleet hands a long grading back once per worker stopped: each hand-back spends an
    attempt number (the fencing needs it to grow) but not one of the job's allowed attempts (3 here)."""
    queue = fleet.web.queue
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    async with fleet.factory() as db:
        job_id = (await db.exec(select(Job.id).where(Job.submission_id == submission_id))).one()
        assert job_id is not None
        for restart in range(1, 6):
            taken = await queue.take(db, job_id, f"host-{restart}:1/0", engine_ref=restart)
            assert isinstance(taken, Job), f"the job was given up after {restart - 1} hand-backs"
            assert await queue.release(db, job_id, f"host-{restart}:1/0", taken.attempts)
            assert not await queue.renew(db, job_id, f"host-{restart}:1/0", taken.attempts)  # fenced
        row = await db.get(Job, job_id, populate_existing=True)
        submission = await db.get(Submission, submission_id, populate_existing=True)
    assert row is not None and row.state == "queued" and row.attempts == 5 and row.handed_back == 5
    assert submission is not None and submission.status == "queued"
    fleet.worker("host-last:9")
    assert (await fleet.until([submission_id], finished))[submission_id] == "done"


async def test_a_draining_worker_says_so_on_the_worker_hosts_table(fleet: Fleet, slow_gradings: Any) -> None:
    slow_gradings(3.0)
    candidate = await make_identity(fleet.settings, "candidate")
    submission_id = await fleet.submit(candidate.user.id or 0)
    worker = fleet.worker("host-a:1")
    reporter = asyncio.create_task(
        report_host(
            fleet.factory,
            worker.name,
            engine="test engine",
            slots=1,
            busy=lambda: worker.busy,
            done=lambda: worker.done,
            every_seconds=0.1,
            stopping=worker.stopping,
            draining=lambda: worker.draining,
        )
    )
    try:
        await fleet.until([submission_id], lambda statuses: statuses[submission_id] == "running")
        drain = asyncio.create_task(worker.drain(30))
        await asyncio.sleep(0.5)
        async with fleet.factory() as db:
            row = await db.get(WorkerHost, worker.name, populate_existing=True)
        assert row is not None and row.draining and row.busy == 1
        assert await drain == 0
    finally:
        worker.stop()
        await reporter
