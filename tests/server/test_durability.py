"""Kill the server (SIGKILL) in the middle of a grading, start it again: the job is taken up again and completes,
nothing submitted is lost, and the sandbox the dead server left behind is removed. A real `viva serve` process,
real Docker (the grading runs the naive fixture in the sandbox, so it is mid-flight for several seconds)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest
from sqlmodel import select

from server.db.models import Job
from tests.server.conftest import APPS, database, make_identity, server_settings

pytestmark = pytest.mark.docker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(environment: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"viva serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"viva serve did not become ready: {log.read_text()[-2000:]}")


def test_a_grading_survives_a_killed_server(tmp_path: Path) -> None:
    values = {
        "VIVA_DATA_DIR": str(tmp_path / "data"),
        "VIVA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'viva.db'}",
        "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
        "VIVA_SUBMISSIONS_STATIC_ONLY": "0",
        "VIVA_SERVER_JOB_LEASE_SECONDS": "3",
        "VIVA_SANDBOX_IMAGE_SOURCE": "offline",
        "VIVA_SANDBOX_GATEWAY_TIME_SCALE": "0.05",
        "VIVA_SANDBOX_CACHE_DIR": str(tmp_path / "cache"),
    }
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VIVA_")}, **values}
    settings = server_settings(values["VIVA_DATABASE_URL"], tmp_path / "data", **values)
    port, log = _free_port(), tmp_path / "serve.log"
    first = _serve(environment, port, log)
    try:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        base = f"http://127.0.0.1:{port}"
        submitted = httpx.post(
            f"{base}/api/submissions", json={"target": "fixture:naive"}, headers=candidate.headers, timeout=10
        )
        assert submitted.status_code == 202, submitted.text
        submission_id = submitted.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until it is inside the sandbox stage
            body = httpx.get(f"{base}/api/submissions/{submission_id}", headers=candidate.headers, timeout=10).json()
            if (
                body["status"] == "running"
                and body["progress"].get("stage") == "sandbox"
                and body["progress"].get("done", 0) >= 2
            ):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the grading never reached the sandbox: {body}")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    async def job_row() -> Job:
        async with database(settings) as db:
            return (await db.exec(select(Job).where(Job.submission_id == submission_id))).one()

    killed = asyncio.run(job_row())
    assert (killed.state, killed.attempts) == ("running", 1)  # the dead server's lease is still on it
    client = docker.from_env()
    left = client.containers.list(all=True, filters={"label": f"viva.pid={first.pid}"})
    assert left, "the killed server's sandbox should still be there before the restart"

    second = _serve(environment, port, log)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            body = httpx.get(f"{base}/api/submissions/{submission_id}", headers=candidate.headers, timeout=10).json()
            if body["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.5)
        assert body["status"] == "done", body
        report = httpx.get(
            f"{base}/api/submissions/{submission_id}/report", headers=candidate.headers, timeout=10
        ).json()
        assert report["dynamic"]["service"]["started"] and report["coverage"] == 1.0
        listed = httpx.get(f"{base}/api/submissions", headers=candidate.headers, timeout=10).json()
        assert listed["total"] == 1  # nothing lost, nothing duplicated
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    finished = asyncio.run(job_row())
    assert (finished.state, finished.attempts) == ("done", 2)
    assert not client.containers.list(all=True, filters={"label": f"viva.pid={first.pid}"})  # reaped at the restart
