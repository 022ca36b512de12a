"""`viva worker`: run gradings on this machine, taken from the shared database, in sandboxes on this machine's own
Docker engine (docs/SCALING.md).

A worker runs beside its engine, not against a remote `DOCKER_HOST`: sandboxes bind-mount paths of this host and
reach the gateway and tunnel over Unix sockets. It waits for the web process (`viva serve`, which prepares the
database) to have brought the schema to head, removes the sandbox containers a dead worker left on this engine,
reports itself on the worker hosts page every heartbeat, and on SIGTERM or SIGINT drains: it takes no more gradings
and lets the running ones finish for `VIVA_SERVER_WORKER_DRAIN_SECONDS`, then hands the rest back to the queue
(a second signal hands them back at once). A grading of a worker that died is retried on another once its heartbeat
is missed; the dead attempt is fenced and can write nothing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.settings import Settings

SCHEMA_WAIT_SECONDS = 120.0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "worker", help="run gradings on this machine's Docker engine, from the shared database (docs/SCALING.md)"
    )
    parser.add_argument("--slots", type=int, default=None, help="gradings at once (VIVA_SERVER_WORKER_SLOTS)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # noqa: PLC0415 - the server loads only for the commands that serve

    from server import logs  # noqa: PLC0415 - as above

    slots = args.slots or settings.server.worker_slots
    if slots < 1:
        print("viva: --slots must be at least 1")
        return 1
    logs.configure(settings.general.log_level)
    return asyncio.run(work(settings, slots))


async def work(settings: Settings, slots: int) -> int:
    import asyncio  # noqa: PLC0415 - see _run
    import logging  # noqa: PLC0415 - as above
    import os  # noqa: PLC0415 - as above
    import signal  # noqa: PLC0415 - as above

    from server.app import docker_engine_name, reap_sandboxes  # noqa: PLC0415 - as above
    from server.db.engine import database_url, make_engine, session_factory, wait_for_schema  # noqa: PLC0415
    from server.jobs.engine import end_tasks, engine_kind, report_host  # noqa: PLC0415 - as above
    from server.jobs.engine import make_engine as make_job_engine  # noqa: PLC0415 - as above
    from server.jobs.worker import ProgressHub, Worker  # noqa: PLC0415 - as above

    log = logging.getLogger("viva.worker")
    url = database_url(settings)
    tables = engine_kind(settings, url) == "procrastinate"
    problem = await wait_for_schema(url, SCHEMA_WAIT_SECONDS, engine_tables=tables)
    if problem:
        print(f"viva worker: {problem}", flush=True)
        return 1
    database = make_engine(url)
    factory = session_factory(database)
    jobs = make_job_engine(settings, url, factory)
    worker = Worker(settings, factory, jobs, ProgressHub())
    if not settings.submissions.static_only:
        await asyncio.to_thread(reap_sandboxes)  # containers a dead worker left on this engine
    engine_name = await asyncio.to_thread(docker_engine_name, settings)
    stopping, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hurry if stopping.is_set() else stopping).set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    tasks = worker.start(slots)
    tasks.append(
        asyncio.create_task(
            report_host(
                factory,
                worker.name,
                engine=engine_name,
                slots=slots,
                busy=lambda: worker.busy,
                done=lambda: worker.done,
                every_seconds=settings.server.worker_heartbeat_seconds,
                stopping=worker.stopping,
                draining=lambda: worker.draining,
            )
        )
    )
    print(f"viva worker {worker.name}: {slots} slot(s), {jobs.name} engine, sandboxes on {engine_name}", flush=True)
    await stopping.wait()
    drain = settings.server.worker_drain_seconds
    log.info("stopping: finishing %d running grading(s) for up to %.0f s (signal again to hand them back)",
             worker.busy, drain)  # fmt: skip
    handed_back = await worker.drain(drain, hurry=hurry)
    stuck = worker.busy  # gradings that did not reach a step where they can stop
    worker.stop()
    await jobs.close()
    await end_tasks(tasks)
    await database.dispose()
    print(f"viva worker {worker.name}: stopped ({handed_back} grading(s) handed back)", flush=True)
    if stuck:
        # Their threads cannot be interrupted, and the interpreter would wait for them at exit. Their jobs are still
        # theirs in the database: the leases lapse, another worker retries them and fences these attempts; the
        # next worker on this engine removes their sandboxes.
        log.warning("%d grading(s) did not stop; leaving them to be retried elsewhere", stuck)
        logging.shutdown()
        os._exit(0)
    return 0
