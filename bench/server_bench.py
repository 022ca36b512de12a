"""Issue 6's benchmark: the API under load from a second process on loopback, beside a bare Litestar app measured in
the same run.

- The submissions list (50 per page) and a report (about 15 kB of JSON) at p95, 20 requests in flight, vs the bare
  app's JSON endpoint of a similar size.
- Concurrent WebSocket interviews with the offline model: each connects, reads the first question, answers twice;
  turn latency (answer sent → whole reply received) at p95 and errors, vs the bare app's WebSocket echo.

Both servers are `uvicorn` subprocesses; this process is the client. The interviews run twice: against `viva serve`
with one process, then with `--processes 2` on the same database (the machine has two cores, shared with the
client).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets

from server.db.models import Interview, Submission, utcnow
from server.settings import Settings
from tests.server.conftest import APPS, database, make_identity, server_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(command: list[str], environment: dict[str, str], ready_url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else float("nan")


async def _http_load(url: str, headers: dict[str, str], requests: int, in_flight: int) -> tuple[list[float], int]:
    gate = asyncio.Semaphore(in_flight)
    times: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=in_flight)) as client:

        async def one() -> None:
            nonlocal errors
            async with gate:
                started = time.perf_counter()
                response = await client.get(url, headers=headers)
                times.append(time.perf_counter() - started)
                errors += response.status_code != 200

        await asyncio.gather(*(one() for _ in range(requests)))
    return times, errors


async def _sockets(
    urls: list[str], headers: dict[str, str], turns: int, greeting: str, think: tuple[float, float]
) -> tuple[list[float], int]:
    times: list[float] = []
    errors = 0

    async def one(url: str) -> None:
        nonlocal errors
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=120, max_size=2**22) as ws:
                while json.loads(await ws.recv())["type"] != greeting:
                    pass
                for turn in range(turns):
                    await asyncio.sleep(random.uniform(*think))  # the candidate types the answer
                    answer_id = str(uuid.uuid4())
                    started = time.perf_counter()
                    await ws.send(
                        json.dumps(
                            {
                                "type": "answer",
                                "id": answer_id,
                                "text": f"We retry twice, turn {turn}, then fail with a 503.",
                            }
                        )
                    )
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] == "reply" and message.get("id") == answer_id:
                            break
                        if message["type"] in ("end", "error"):
                            raise RuntimeError(message)
                    times.append(time.perf_counter() - started)
        except Exception:  # counted, not raised: the figure is the error count
            errors += 1

    await asyncio.gather(*(one(url) for url in urls))
    return times, errors


def run(mode: str) -> bool:
    smoke = mode == "smoke"
    requests, sockets = (40, 10) if smoke else (2000, 500)
    think = (0.05, 0.2) if smoke else (5.0, 20.0)
    """Seconds a candidate takes to type an answer: 500 people answer over time, not in one instant."""
    scratch = Path(tempfile.mkdtemp(prefix="viva-server-bench-"))
    values = {
        "VIVA_DATA_DIR": str(scratch / "data"),
        "VIVA_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'viva.db'}",
        "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
        "VIVA_SUBMISSIONS_STATIC_ONLY": "1",
        "VIVA_SERVER_WORKER": "1",
        "VIVA_LIMITS_INTERVIEW_STARTS_PER_MINUTE": "100000",
    }
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VIVA_")}, **values}
    settings = server_settings(values["VIVA_DATABASE_URL"], scratch / "data", **values)
    viva_port, bare_port = _free_port(), _free_port()

    def start_viva(processes: int) -> subprocess.Popen[bytes]:
        return _start(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(viva_port), "--processes", str(processes)],
            environment,
            f"http://127.0.0.1:{viva_port}/ready",
        )

    viva = start_viva(1)
    bare = _start(
        [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(bare_port), "--log-level", "warning"],
        environment,
        f"http://127.0.0.1:{bare_port}/items",
    )
    try:
        headers, graded_id, interview_ids = asyncio.run(_prepare(settings, viva_port, sockets))
        base = f"http://127.0.0.1:{viva_port}"
        listed, list_errors = asyncio.run(_http_load(f"{base}/api/submissions?limit=50", headers, requests, 20))
        report, report_errors = asyncio.run(
            _http_load(f"{base}/api/submissions/{graded_id}/report", headers, requests, 20)
        )
        plain, plain_errors = asyncio.run(_http_load(f"http://127.0.0.1:{bare_port}/items", {}, requests, 20))
        by_processes: dict[int, tuple[list[float], int]] = {}
        for processes in (1, 2):
            if processes > 1:
                _stop(viva)
                viva = start_viva(processes)
                interview_ids = asyncio.run(_seed_interviews(settings, graded_id, sockets))
            by_processes[processes] = asyncio.run(
                _sockets(
                    [f"ws://127.0.0.1:{viva_port}/api/interviews/{i}/ws" for i in interview_ids],
                    headers,
                    2,
                    "question",
                    think,
                )
            )
        echoes, echo_errors = asyncio.run(
            _sockets([f"ws://127.0.0.1:{bare_port}/echo"] * sockets, {}, 2, "hello", think)
        )
    finally:
        for process in (viva, bare):
            _stop(process)
        shutil.rmtree(scratch, ignore_errors=True)
    bare_p95 = _p95(plain) * 1000
    print(f"{requests} requests, 20 in flight (2 cores; client and server on one machine)")
    print(f"  bare Litestar JSON endpoint p95 {bare_p95:.1f} ms (errors {plain_errors})")
    for label, times, errors in (
        ("GET /api/submissions?limit=50", listed, list_errors),
        ("GET /api/submissions/ID/report", report, report_errors),
    ):
        p95 = _p95(times) * 1000
        print(f"  {label} p95 {p95:.1f} ms ({p95 / bare_p95:.1f}x; errors {errors})")
    echo_p95 = _p95(echoes) * 1000
    print(
        f"{sockets} WebSocket interviews at once, 2 answered turns each, "
        f"{think[0]:g}-{think[1]:g} s to type each answer, offline model"
    )
    print(f"  bare Litestar WebSocket echo turn p95 {echo_p95:.1f} ms (errors {echo_errors})")
    for processes, (turns, turn_errors) in by_processes.items():
        p95 = _p95(turns) * 1000
        print(
            f"  interview turn p95, {processes} server process(es): {p95:.1f} ms "
            f"({p95 / echo_p95:.1f}x the echo; errors {turn_errors})"
        )
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


async def _seed_interviews(settings: Settings, submission_id: int, count: int) -> list[int]:
    async with database(settings) as db:
        graded = await db.get(Submission, submission_id)
        assert graded is not None
        ids = []
        for _ in range(count):
            interview = Interview(candidate_id=graded.candidate_id, submission_id=submission_id)
            db.add(interview)
            await db.flush()
            ids.append(interview.id or 0)
        await db.commit()
    return ids


async def _prepare(settings: Settings, port: int, sockets: int) -> tuple[dict[str, str], int, list[int]]:
    """Grade one real submission through the API (its report and kept code feed the others), then seed the rest."""
    candidate = await make_identity(settings, "candidate")
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=30) as client:
        submitted = await client.post(
            f"{base}/api/submissions", json={"target": "fixture:naive"}, headers=candidate.headers
        )
        submission_id = submitted.json()["id"]
        while (await client.get(f"{base}/api/submissions/{submission_id}", headers=candidate.headers)).json()[
            "status"
        ] != "done":
            await asyncio.sleep(0.2)
    async with database(settings) as db:
        graded = await db.get(Submission, submission_id)
        assert graded is not None and graded.report is not None
        for _ in range(60):
            db.add(
                Submission(
                    candidate_id=candidate.user.id or 0,
                    target="fixture:naive",
                    rubric_version_id=graded.rubric_version_id,
                    status="done",
                    score=graded.score,
                    coverage=graded.coverage,
                    report=graded.report,
                    finished_at=utcnow(),
                )
            )
        await db.commit()
    return candidate.headers, submission_id, await _seed_interviews(settings, submission_id, sockets)
