"""What only the Docker sandbox does: its registration, its container's shape (a read-only root, an executable work
area of a fixed size, uid 1000), the container removed at cleanup or reaped after a crash, a missing image as Viva's
failure. What every backend must do, and the attacks every isolating one must hold, are
tests/integration/test_sandbox_conformance.py, which runs them against this backend too. Needs a Docker engine (CI
starts one) and the offline base image (built here once if missing)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxes.base import SandboxLimits, backend
from sandboxes.docker_backend import DockerSandbox, docker_client, reap
from sandboxes.errors import SandboxUnavailable, UnknownBackend
from sandboxes.images import build_offline_base
from sandboxes.settings import SandboxSettings

pytestmark = pytest.mark.docker
IMAGE = SandboxSettings().offline_image
SMALL = SandboxLimits(memory_mb=256, pids=64, disk_mb=64, output_bytes=100_000, timeout_s=20)


@pytest.fixture(scope="module")
def image() -> str:
    client = docker_client()
    try:
        client.images.get(IMAGE)
    except Exception:
        build_offline_base(client, IMAGE)
    return IMAGE


def run(coro):
    return asyncio.run(coro)


async def in_sandbox(image: str, *commands: list[str], limits: SandboxLimits = SMALL, **kwargs):
    async with DockerSandbox(image, limits=limits, **kwargs) as sandbox:
        return [await sandbox.exec(command) for command in commands]


def test_registered_by_name_and_unknown_names_say_what_exists() -> None:
    assert backend("docker") is DockerSandbox
    with pytest.raises(UnknownBackend, match="known: docker"):
        backend("firecracker")


def test_root_is_read_only_work_is_writable_and_executable_and_the_user_is_1000(image: str) -> None:
    etc, work, who = run(
        in_sandbox(
            image,
            ["sh", "-c", "echo x > /etc/x"],
            ["sh", "-c", "printf '#!/bin/sh\\necho ran' > /work/s && chmod +x /work/s && /work/s"],
            ["id", "-u"],
        )
    )
    assert etc.returncode != 0 and "Read-only" in etc.stderr
    assert work.stdout == "ran\n"
    assert who.stdout == "1000\n"  # whom make_readable and the sockets' modes are for


def test_cleanup_removes_the_container(image: str) -> None:
    async def go() -> str:
        sandbox = DockerSandbox(image, limits=SMALL)
        async with sandbox:
            return sandbox.container.name

    name = run(go())
    assert not docker_client().containers.list(all=True, filters={"name": name})


def test_a_missing_image_is_our_failure_not_the_candidates() -> None:
    with pytest.raises(SandboxUnavailable, match="not on this host"):
        run(in_sandbox("viva-no-such-image:nope", ["true"]))


def test_disk_fill_stops_at_the_work_area_size(image: str) -> None:
    [result] = run(in_sandbox(image, ["sh", "-c", "dd if=/dev/zero of=/work/fill bs=1M count=500"]))
    assert result.returncode != 0 and "No space left" in result.stderr


def test_containers_left_by_a_crash_are_reaped(image: str, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from sandboxes.docker_backend import DockerSandbox\n"
        "async def main():\n"
        f"    sandbox = DockerSandbox({image!r}, owner='viva-crash-test')\n"
        "    await sandbox.start()\n"
        "    print(sandbox.container.name, flush=True)\n"
        "    time.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    name = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    client = docker_client()
    assert client.containers.list(all=True, filters={"name": name}), "the crash must leave the container behind"
    assert name in reap(client, owner="viva-crash-test")
    assert not client.containers.list(all=True, filters={"name": name})
