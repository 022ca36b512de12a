"""The Docker sandbox: a conformance check per behaviour, then attacks, each contained with a clear status and the
host unharmed. Isolation is shown structurally (interfaces, routes, a host loopback listener it cannot reach);
no packet is ever sent anywhere but loopback. Needs a Docker engine (CI starts one) and the offline base image
(built here once if missing)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandboxes.base import SandboxLimits, backend
from sandboxes.docker_backend import DockerSandbox, docker_client, make_readable, reap
from sandboxes.errors import SandboxError, SandboxUnavailable, UnknownBackend
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


# --- conformance ---------------------------------------------------------------------------------------------


def test_registered_by_name_and_unknown_names_say_what_exists() -> None:
    assert backend("docker") is DockerSandbox
    with pytest.raises(UnknownBackend, match="known: docker"):
        backend("firecracker")


def test_exec_returns_code_and_both_streams(image: str) -> None:
    [result] = run(in_sandbox(image, ["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert (result.returncode, result.stdout, result.stderr, result.success) == (3, "out\n", "err\n", False)


def test_cwd_env_user_and_input(image: str) -> None:
    async def go():
        async with DockerSandbox(image, limits=SMALL) as sandbox:
            cwd = await sandbox.exec(["pwd"], cwd="/tmp")
            env = await sandbox.exec(["sh", "-c", "echo $GREETING"], env={"GREETING": "hello"})
            who = await sandbox.exec(["id", "-u"])
            piped = await sandbox.exec(["wc", "-c"], input="12345")
            return cwd, env, who, piped

    cwd, env, who, piped = run(go())
    assert (cwd.stdout, env.stdout, who.stdout, piped.stdout.strip()) == ("/tmp\n", "hello\n", "1000\n", "5")


def test_write_then_read_a_file(image: str) -> None:
    payload = bytes(range(256)) * 1000

    async def go():
        async with DockerSandbox(image, limits=SMALL) as sandbox:
            await sandbox.write_file("/work/data.bin", payload)
            return await sandbox.read_file("/work/data.bin")

    assert run(go()) == payload


def test_reading_a_missing_file_is_an_error(image: str) -> None:
    async def go():
        async with DockerSandbox(image, limits=SMALL) as sandbox:
            await sandbox.read_file("/work/nope")

    with pytest.raises(SandboxError, match="could not read"):
        run(go())


def test_root_is_read_only_and_work_is_writable_and_executable(image: str) -> None:
    etc, work = run(
        in_sandbox(
            image,
            ["sh", "-c", "echo x > /etc/x"],
            ["sh", "-c", "printf '#!/bin/sh\\necho ran' > /work/s && chmod +x /work/s && /work/s"],
        )
    )
    assert etc.returncode != 0 and "Read-only" in etc.stderr
    assert work.stdout == "ran\n"


def test_repository_is_mounted_read_only(image: str, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('candidate')\n")
    make_readable(tmp_path)
    read, write = run(
        in_sandbox(image, ["cat", "/repo/app.py"], ["sh", "-c", "echo x > /repo/app.py"], repo_dir=tmp_path)
    )
    assert read.stdout == "print('candidate')\n"
    assert write.returncode != 0
    assert (tmp_path / "app.py").read_text() == "print('candidate')\n"


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


# --- attacks -------------------------------------------------------------------------------------------------


def test_fork_bomb_is_contained_by_the_pids_limit(image: str) -> None:
    bomb, after = run(
        in_sandbox(
            image,
            ["sh", "-c", "b(){ b | b & }; b; sleep 3; echo survived"],
            ["echo", "still alive"],
            limits=SandboxLimits(pids=64, timeout_s=8),
        )
    )
    assert "Cannot fork" in bomb.stderr  # the pids limit, not the host, stopped it
    assert after.stdout == "still alive\n"
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def test_memory_bomb_is_killed(image: str) -> None:
    [result] = run(in_sandbox(image, ["python3", "-c", "x = bytearray(600 * 1024 * 1024); print('allocated')"]))
    assert result.oom_killed and not result.timed_out and "allocated" not in result.stdout


def test_disk_fill_stops_at_the_work_area_size(image: str) -> None:
    [result] = run(in_sandbox(image, ["sh", "-c", "dd if=/dev/zero of=/work/fill bs=1M count=500"]))
    assert result.returncode != 0 and "No space left" in result.stderr


def test_output_flood_is_truncated(image: str) -> None:
    [result] = run(in_sandbox(image, ["sh", "-c", "yes flood | head -c 50000000"]))
    assert result.truncated and len(result.stdout) == SMALL.output_bytes


def test_infinite_loop_times_out(image: str) -> None:
    started = time.monotonic()
    [result] = run(in_sandbox(image, ["sh", "-c", "while :; do :; done"], limits=SandboxLimits(timeout_s=2)))
    assert result.timed_out and not result.oom_killed
    assert time.monotonic() - started < 15


def test_symlinks_in_the_repository_do_not_reach_host_files(image: str, tmp_path: Path, host_secret: Path) -> None:
    (tmp_path / "leak").symlink_to(host_secret)
    make_readable(tmp_path)
    [result] = run(in_sandbox(image, ["sh", "-c", "cat /repo/leak; ls -la /repo"], repo_dir=tmp_path))
    assert "HOST-SECRET" not in result.stdout + result.stderr


def test_no_network_but_loopback_and_host_listener_unreachable(image: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        probe = (
            "import socket\ns = socket.socket(); s.settimeout(2)\n"
            f"try:\n    s.connect(('127.0.0.1', {port})); print('CONNECTED')\n"
            "except OSError as e:\n    print('refused', type(e).__name__)"
        )
        devices, routes, connect = run(
            in_sandbox(image, ["cat", "/proc/net/dev"], ["cat", "/proc/net/route"], ["python3", "-c", probe])
        )
    finally:
        listener.close()
    interfaces = [line.split(":")[0].strip() for line in devices.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]
    assert routes.stdout.splitlines()[1:] == []  # a header and no route at all
    assert "refused" in connect.stdout and "CONNECTED" not in connect.stdout


def test_no_privileges_to_gain(image: str) -> None:
    status, su = run(
        in_sandbox(
            image,
            ["grep", "-E", "^(NoNewPrivs|CapEff|CapPrm):", "/proc/self/status"],
            ["sh", "-c", "su -c id root </dev/null; id -u"],
        )
    )
    fields = dict(line.split(":\t") for line in status.stdout.splitlines())
    assert fields["NoNewPrivs"] == "1" and int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert su.stdout.strip().splitlines()[-1] == "1000"


def test_host_secrets_do_not_enter_the_environment(image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    monkeypatch.setenv("VIVA_LLM_ANTHROPIC_API_KEY", "sk-ant-host-secret")
    [result] = run(in_sandbox(image, ["env"]))
    assert "host-secret" not in result.stdout
    assert {line.split("=")[0] for line in result.stdout.splitlines()} <= {
        "HOME",
        "PATH",
        "HOSTNAME",
        "PWD",
        "SHLVL",
        "_",
    }


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
