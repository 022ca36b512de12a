"""Issue 19's benchmark: one batch of gradings with one worker and with two, same run, and the job engine's own
overhead per job against a bare task of the same engine.

- **Throughput**: a batch of static gradings of a fixture repository, with one worker (one slot) and then with
  two (one slot each, each its own engine instance and name: what two `viva worker` processes are). The ratio is
  gradings per second with two over one. On this two-core machine the gradings are CPU-bound and share both cores
  with the database and this process, so the ratio says how much the engine lets two workers overlap, not what two
  machines would do; docs/SCALING.md models the many-machine case on paper.
- **Queue overhead**: enqueue → start for each grading (the job row's creation to its worker starting it) against
  the same engine's bare task: on PostgreSQL a no-op Procrastinate task deferred and started by a Procrastinate worker
  with the same polling settings; on SQLite an empty job row claimed by the same claim loop.

`--mode full` runs on a throwaway PostgreSQL cluster (Procrastinate) with 8 gradings; smoke runs on SQLite (the jobs
table) with 2, in seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from server.app import prepare_database
from server.db.models import Job, Submission, utcnow
from tests.server.conftest import _create_database, make_identity
from tests.server.fleet import Fleet, engine_settings, finished
from tests.server.postgres import postgres_cluster


def run(mode: str) -> bool:
    base = Path(tempfile.mkdtemp(prefix="viva-fleet-"))
    try:
        if mode == "full":
            # The cluster's own folder, not under `base` (0700): the postgres user must be able to enter it.
            cluster = Path(tempfile.mkdtemp(prefix="viva-pg-"))
            try:
                with postgres_cluster(cluster) as admin:
                    name = f"viva_{uuid.uuid4().hex[:12]}"
                    asyncio.run(_create_database(admin, name))
                    url = admin.rsplit("/", 1)[0] + "/" + name
                    return asyncio.run(_measure(url, base, gradings=8))
            finally:
                shutil.rmtree(cluster, ignore_errors=True)
        return asyncio.run(_measure(f"sqlite+aiosqlite:///{base / 'viva.db'}", base, gradings=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _measure(url: str, base: Path, *, gradings: int) -> bool:
    settings = engine_settings(url, base / "data")
    await prepare_database(settings)
    candidate = await make_identity(settings, "candidate")
    rates: dict[int, float] = {}
    engine_name = ""
    for workers in (1, 2):
        fleet = Fleet(settings)
        engine_name = fleet.web.name
        try:
            ids = [await fleet.submit(candidate.user.id or 0) for _ in range(gradings)]
            started = time.perf_counter()
            for number in range(workers):
                fleet.worker(f"bench-{workers}-{number}:1")
            statuses = await fleet.until(ids, finished, seconds=600)
            elapsed = time.perf_counter() - started
        finally:
            await fleet.stop()
        if set(statuses.values()) != {"done"}:
            print(f"  {workers} worker(s): not every grading finished: {statuses}")
            return False
        rates[workers] = gradings / elapsed
        print(f"  {workers} worker(s): {gradings} gradings in {elapsed:.2f} s ({rates[workers]:.2f}/s)", flush=True)
    waits = await _grading_waits(settings, candidate.user.id or 0, jobs=max(3, gradings // 2))
    bare = await _bare_overhead(settings, jobs=max(3, gradings // 2))
    print(f"  throughput ratio, two workers / one: {rates[2] / rates[1]:.2f}x ({engine_name} engine)")
    grading_ms, bare_ms = statistics.median(waits) * 1000, statistics.median(bare) * 1000
    print(
        f"  enqueue → start, an idle worker waiting: grading median {grading_ms:.0f} ms (max {max(waits) * 1000:.0f}); "
        f"bare {engine_name} task median {bare_ms:.0f} ms (max {max(bare) * 1000:.0f}); "
        f"ratio {grading_ms / max(bare_ms, 1.0):.2f}x"
    )
    return rates[2] > 0 and rates[1] > 0


async def _grading_waits(settings: object, candidate_id: int, *, jobs: int) -> list[float]:
    """Enqueue → start of gradings handed one at a time to an idle worker (the queue's own latency)."""
    fleet = Fleet(settings)  # type: ignore[arg-type]
    try:
        fleet.worker("bench-idle:1")
        await asyncio.sleep(1.0)
        waits = []
        for _ in range(jobs):
            submission_id = await fleet.submit(candidate_id)
            await fleet.until([submission_id], finished, seconds=120)
            async with fleet.factory() as db:
                job = (await db.exec(select(Job).where(Job.submission_id == submission_id))).one()
            waits.append((fleet.began[job.id or 0] - job.created_at).total_seconds())
        return sorted(waits)
    finally:
        await fleet.stop()


async def _bare_overhead(settings: object, *, jobs: int) -> list[float]:
    """Enqueue → start of a task that does nothing, on the same engine with the same polling."""
    fleet = Fleet(settings)  # type: ignore[arg-type]
    try:
        if fleet.web.name == "procrastinate":
            return await _bare_procrastinate(fleet, jobs)
        return await _bare_rows(fleet, jobs)
    finally:
        await fleet.stop()


async def _bare_procrastinate(fleet: Fleet, jobs: int) -> list[float]:
    import procrastinate  # noqa: PLC0415 - only the PostgreSQL run needs it

    from server.jobs.engine import libpq_url  # noqa: PLC0415 - as above

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=libpq_url(fleet.url)))
    began: dict[int, float] = {}
    deferred: dict[int, float] = {}

    @app.task(name="bench.noop", queue="bench-bare")
    async def noop(n: int) -> None:
        began[n] = time.perf_counter()

    poll = fleet.web._poll_seconds()  # type: ignore[attr-defined]  # the same polling as the grading engine
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=["bench-bare"], concurrency=1, install_signal_handlers=False, fetch_job_polling_interval=poll
            )
        )
        await asyncio.sleep(0.5)
        for n in range(jobs):
            deferred[n] = time.perf_counter()
            await noop.defer_async(n=n)
            deadline = time.monotonic() + 30
            while n not in began and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # one at a time: the wait, not a backlog
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    return sorted(began[n] - deferred[n] for n in began)


async def _bare_rows(fleet: Fleet, jobs: int) -> list[float]:
    """The jobs table's own dispatch: empty job rows taken by the same claim loop (DatabaseEngine.slot) with a task
    that only marks them done."""
    from server.jobs.engine import DatabaseEngine  # noqa: PLC0415 - the SQLite run's engine

    queue = fleet.web.queue
    began: dict[int, datetime] = {}

    class Noop:
        name = "bench-bare:1"

        async def process(self, job: Job, worker: str) -> None:
            began[job.id or 0] = utcnow()
            async with fleet.factory() as db:
                await queue.finish(db, job.id or 0, worker, "done", job.attempts)
                await db.commit()

    engine = DatabaseEngine(fleet.settings, fleet.factory, queue)
    tasks = engine.start(Noop(), 1)
    waits = []
    try:
        async with fleet.factory() as db:
            candidate_id = (await db.exec(select(Submission.candidate_id))).first() or 1
        await asyncio.sleep(1.0)
        for _ in range(jobs):
            async with fleet.factory() as db:
                submission = Submission(candidate_id=candidate_id, target="fixture:naive", rubric_version_id=1)
                db.add(submission)
                await db.flush()
                job = await queue.enqueue(db, submission.id or 0)
                await db.commit()
            deadline = time.monotonic() + 30
            while (job.id or 0) not in began and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            waits.append((began[job.id or 0] - job.created_at).total_seconds())
    finally:
        await engine.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return sorted(waits)
