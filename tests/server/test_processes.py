"""`viva serve --processes 2`: a real parent and two server processes on one port. Both take connections, one
that is killed is replaced while the other keeps serving, an interview goes on whichever process a connection
lands on, and SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets

from tests.server.conftest import APPS, make_identity, server_settings
from tests.server.test_durability import _free_port


def _servers(parent: int) -> set[int]:
    """The parent's server processes (not multiprocessing's helper processes)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
        if ppid == parent and "spawn_main" in command:
            found.add(int(entry.name))
    return found


def _wait(predicate, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_processes_serve_replace_the_dead_and_stop_together(tmp_path: Path) -> None:
    values = {
        "VIVA_DATA_DIR": str(tmp_path / "data"),
        "VIVA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'viva.db'}",
        "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
        "VIVA_SUBMISSIONS_STATIC_ONLY": "1",
    }
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VIVA_")}, **values}
    settings = server_settings(values["VIVA_DATABASE_URL"], tmp_path / "data", **values)
    port = _free_port()
    log = tmp_path / "serve.log"
    parent = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--processes", "2"],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: len(_servers(parent.pid)) == 2 and _ready(port))
        first = _servers(parent.pid)

        # A graded submission and an interview on it, through whichever process answers.
        candidate = asyncio.run(make_identity(settings, "candidate"))
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=candidate.headers, timeout=30) as client:
            submitted = client.post("/api/submissions", json={"target": "fixture:middling"}).json()
            _wait(lambda: client.get(f"/api/submissions/{submitted['id']}").json()["status"] == "done")
            interview = client.post("/api/interviews", json={"submission_id": submitted["id"]}).json()
        url = f"ws://127.0.0.1:{port}/api/interviews/{interview['id']}/ws"

        async def answer(answer_id: str) -> list[str]:
            async with websockets.connect(url, additional_headers=candidate.headers) as socket:
                hello = json.loads(await socket.recv())
                if not hello["transcript"]:
                    while json.loads(await socket.recv())["type"] != "question":
                        pass
                await socket.send(json.dumps({"type": "answer", "id": answer_id, "text": "We retry twice."}))
                while json.loads(await socket.recv())["type"] != "reply":
                    pass
                return list(hello["acknowledged"])

        assert asyncio.run(answer("a1")) == []

        # Kill one server process: the other keeps serving, and the parent starts a replacement.
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # A connection the kernel had already queued on the dead process's socket is reset (SO_REUSEPORT spreads
        # them); the next one reaches the survivor. So: answered within a second, not necessarily the first try.
        _wait(lambda: _ready(port), 1)
        assert asyncio.run(answer("a2")) == ["a1"]  # the interview goes on, on whichever process took it
        _wait(lambda: len(_servers(parent.pid)) == 2 and victim not in _servers(parent.pid))
        assert asyncio.run(answer("a3")) == ["a1", "a2"]

        survivors = _servers(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in survivors), 30)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
