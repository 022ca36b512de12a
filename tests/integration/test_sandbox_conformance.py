"""What every sandbox backend must do (sandboxes/base.py), run against each registered one; then the attacks, run
against every backend that says it isolates (`isolates`), each contained and the host unharmed.

The checks go through the Sandbox interface only. The Docker backend runs them for real in the offline base image
(built here once if missing). The fake runs no command: its world plays the few this suite sends as a shell would
(`fake_shell`), so the checks hold it to what a backend itself adds — the working directory, the environment, the
timeout and output caps, files, background processes, cleanup. Isolation is shown structurally (interfaces, routes,
a listener on the host's loopback that cannot be reached); no packet is ever sent anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxes.base import ExecResult, Sandbox, SandboxLimits, SandboxSpec, backend
from sandboxes.docker_backend import docker_client, make_readable
from sandboxes.errors import SandboxError
from sandboxes.fake_backend import ExecCall, FakeProcess, FakeWorld
from sandboxes.images import build_offline_base
from sandboxes.settings import SandboxSettings

BACKENDS = {"docker": [pytest.mark.docker], "fake": []}
"""Every backend this package registers, with the markers its tests need (the docker ones need an engine)."""
ISOLATING = [name for name in BACKENDS if backend(name).isolates]
SMALL = SandboxLimits(memory_mb=256, pids=64, disk_mb=64, output_bytes=100_000, timeout_s=20)
HOLD = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "s.connect(sys.argv[1])\n"
    "s.sendall(b'hello')\n"
    "time.sleep(3600)\n"
)
"""A background process that shows the host it runs: it connects to a socket of the host's, then keeps it open."""

Make = Callable[..., Sandbox]


def params(names: list[str]) -> list[Any]:
    return [pytest.param(name, marks=BACKENDS[name], id=name) for name in names]


@pytest.fixture(scope="module")
def docker_image() -> str:
    image = SandboxSettings().offline_image
    client = docker_client()
    try:
        client.images.get(image)
    except Exception:
        build_offline_base(client, image)
    return image


@pytest.fixture(params=params(list(BACKENDS)))
def make(request: pytest.FixtureRequest) -> Make:
    """A factory of unstarted sandboxes of the backend under test: SandboxSpec's fields as keywords (SMALL limits
    unless given)."""
    return maker(request)


@pytest.fixture(params=params(ISOLATING))
def make_isolated(request: pytest.FixtureRequest) -> Make:
    """The same, for each backend that isolates."""
    return maker(request)


def maker(request: pytest.FixtureRequest) -> Make:
    """The fake with its world playing this suite's commands; any other backend as registered, with the image of
    its `<name>_image` fixture."""
    name: str = request.param
    if name == "fake":
        factory, image = fake_shell().backend(), "fake"
    else:
        factory, image = backend(name), request.getfixturevalue(f"{name}_image")
    return lambda **fields: factory(SandboxSpec(image=image, **{"limits": SMALL, **fields}))


def fake_shell() -> FakeWorld:
    """The commands this suite sends, played for the fake as a shell would run them (from what the call gives:
    its working directory, environment and input); everything else about them is the fake's own doing."""
    world = FakeWorld()

    async def sleep(call: ExecCall) -> ExecResult:
        await asyncio.sleep(float(call.cmd[1]))
        return ExecResult(0, "", "", float(call.cmd[1]))

    async def hold(process: FakeProcess) -> None:
        socket_dir = process.sandbox.spec.socket_dir
        assert socket_dir is not None
        _, writer = await asyncio.open_unix_connection(str(socket_dir / Path(process.launch.argv[-1]).name))
        writer.write(b"hello")
        await writer.drain()
        try:
            await asyncio.sleep(3600)
        finally:
            writer.close()

    world.on_exec(r"^echo out; echo err >&2; exit 3$", ExecResult(3, "out\n", "err\n", 0.0))
    world.on_exec(r"^pwd$", lambda call: ExecResult(0, call.cwd + "\n", "", 0.0))
    world.on_exec(r"^cat$", lambda call: ExecResult(0, call.input or "", "", 0.0))
    world.on_exec(
        r'^echo "\$GREETING \$TONE \$HOME"$',
        lambda call: ExecResult(0, f"{call.env['GREETING']} {call.env['TONE']} {call.env['HOME']}\n", "", 0.0),
    )
    world.on_exec(r"^sleep \d+$", sleep)
    world.on_exec(r"^yes flood \| head -c 5000000$", ExecResult(0, ("flood\n" * 833_334)[:5_000_000], "", 0.1))
    world.on_spawn(r"(?s)^python3 -c .* /sock/hold\.sock$", hold)
    return world


@contextlib.contextmanager
def repository(files: dict[str, str]) -> Iterator[Path]:
    """A repository on the host, readable by a sandbox's user (as a grading's snapshot is)."""
    root = Path(tempfile.mkdtemp(prefix="viva-conformance-"))
    try:
        for name, text in files.items():
            (root / name).write_text(text)
        make_readable(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def host_socket(name: str) -> AsyncIterator[tuple[Path, asyncio.Queue[asyncio.StreamReader]]]:
    """A directory of the host's with a Unix socket `name` a sandbox may connect to (mounted as /sock), and the
    readers of the connections it accepted. Short: a socket path has at most 107 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="viva-sock-"))
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await accepted.put(reader)

    server = await asyncio.start_unix_server(accept, str(directory / name))
    os.chmod(directory, 0o755)  # the sandbox's user reaches the socket through it (a read-only mount)
    os.chmod(directory / name, 0o666)  # and connects to it
    try:
        yield directory, accepted
    finally:
        server.close()
        for writer in writers:
            writer.close()
        shutil.rmtree(directory, ignore_errors=True)


# --- every backend -----------------------------------------------------------------------------------------------


async def test_exec_returns_the_exit_status_and_both_streams(make: Make) -> None:
    async with make() as sandbox:
        result = await sandbox.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.stdout, result.stderr, result.success) == (3, "out\n", "err\n", False), result


async def test_exec_runs_in_work_unless_told_otherwise_and_reads_its_input(make: Make) -> None:
    async with make() as sandbox:
        default, told, piped = [
            await sandbox.exec(["pwd"]),
            await sandbox.exec(["pwd"], cwd="/tmp"),
            await sandbox.exec(["cat"], input="12345"),
        ]
    assert (default.stdout, told.stdout, piped.stdout) == ("/work\n", "/tmp\n", "12345"), (default, told, piped)


async def test_the_environment_is_the_specs_then_the_execs_own(make: Make) -> None:
    async with make(env={"GREETING": "hello", "TONE": "dry"}) as sandbox:
        result = await sandbox.exec(["sh", "-c", 'echo "$GREETING $TONE $HOME"'], env={"TONE": "warm"})
    assert result.stdout == "hello warm /work\n", result


async def test_a_timeout_is_a_result_not_an_exception(make: Make) -> None:
    async with make(limits=SandboxLimits(timeout_s=1)) as sandbox:
        began = time.monotonic()
        by_the_limits = await sandbox.exec(["sleep", "30"])
        by_the_call = await sandbox.exec(["sleep", "30"], timeout=1)
        took = time.monotonic() - began
    for result in (by_the_limits, by_the_call):
        assert result.timed_out and not result.success and not result.oom_killed, result
    assert took < 15, f"two 1 s timeouts took {took:.1f} s"


async def test_an_output_flood_is_cut_at_the_limit_and_says_so(make: Make) -> None:
    async with make(limits=SandboxLimits(output_bytes=10_000)) as sandbox:
        result = await sandbox.exec(["sh", "-c", "yes flood | head -c 5000000"])
    assert result.truncated and len(result.stdout) == 10_000, (result.truncated, len(result.stdout))


async def test_a_written_file_reads_back_byte_for_byte(make: Make) -> None:
    payload = bytes(range(256)) * 1000
    async with make() as sandbox:
        await sandbox.write_file("/work/data.bin", payload)
        back = await sandbox.read_file("/work/data.bin")
    assert back == payload, f"{len(payload)} bytes written, {len(back)} read back"


async def test_read_file_returns_at_most_its_limit(make: Make) -> None:
    async with make() as sandbox:
        await sandbox.write_file("/work/log.txt", b"0123456789" * 100)
        head = await sandbox.read_file("/work/log.txt", limit=10)
    assert head == b"0123456789", head


async def test_a_missing_file_or_directory_is_a_sandbox_error(make: Make) -> None:
    async with make() as sandbox:
        with pytest.raises(SandboxError, match="could not read"):
            await sandbox.read_file("/work/nope")
        with pytest.raises(SandboxError, match="could not write"):
            await sandbox.write_file("/work/no-such-dir/file", b"x")


async def test_spawn_returns_at_once_and_the_process_ends_with_the_sandbox(make: Make) -> None:
    async with host_socket("hold.sock") as (socket_dir, accepted):
        async with make(socket_dir=socket_dir) as sandbox:
            began = time.monotonic()
            await sandbox.spawn(["python3", "-c", HOLD, "/sock/hold.sock"])
            returned_after = time.monotonic() - began
            reader = await asyncio.wait_for(accepted.get(), 20)
            assert await reader.readexactly(5) == b"hello"
        gone = await asyncio.wait_for(reader.read(), 15)  # end of stream: the process is no more
    assert returned_after < 5, f"spawn took {returned_after:.1f} s to return"
    assert gone == b"", gone


async def test_cleaning_up_twice_is_harmless_and_a_cleaned_sandbox_runs_nothing(make: Make) -> None:
    sandbox = make()
    await sandbox.start()
    assert (await sandbox.exec(["sh", "-c", "true"])).returncode == 0
    await sandbox.cleanup()
    await sandbox.cleanup()
    with pytest.raises(SandboxError):
        await sandbox.exec(["sh", "-c", "true"])


async def test_the_repository_reads_through_and_cannot_be_written(make: Make) -> None:
    with repository({"app.py": "print('candidate')\n"}) as root:
        async with make(repo_dir=root) as sandbox:
            read = await sandbox.read_file("/repo/app.py")
            with pytest.raises(SandboxError, match="could not write"):
                await sandbox.write_file("/repo/app.py", b"print('rewritten')\n")
        assert read == b"print('candidate')\n", read
        assert (root / "app.py").read_text() == "print('candidate')\n"


async def test_a_symlink_out_of_the_repository_reaches_no_host_file(make: Make, host_secret: Path) -> None:
    with repository({"app.py": ""}) as root:
        (root / "leak").symlink_to(host_secret)
        async with make(repo_dir=root) as sandbox:
            with pytest.raises(SandboxError, match="could not read"):
                await sandbox.read_file("/repo/leak")


# --- the attacks, against every backend that isolates --------------------------------------------------------------


async def test_no_network_interface_but_loopback_and_no_route(make_isolated: Make) -> None:
    async with make_isolated() as sandbox:
        devices = await sandbox.exec(["cat", "/proc/net/dev"])
        routes = await sandbox.exec(["cat", "/proc/net/route"])
    interfaces = [line.split(":")[0].strip() for line in devices.stdout.splitlines()[2:]]
    assert interfaces == ["lo"], devices.stdout
    assert routes.stdout.splitlines()[1:] == [], routes.stdout  # a header and no route at all


async def test_a_listener_on_the_hosts_loopback_cannot_be_reached(make_isolated: Make) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    probe = (
        "import socket\ns = socket.socket(); s.settimeout(2)\n"
        f"try:\n    s.connect(('127.0.0.1', {port})); print('CONNECTED')\n"
        "except OSError as e:\n    print('refused', type(e).__name__)"
    )
    try:
        async with make_isolated() as sandbox:
            result = await sandbox.exec(["python3", "-c", probe])
    finally:
        listener.close()
    assert "refused" in result.stdout and "CONNECTED" not in result.stdout, result


async def test_code_inside_cannot_write_the_repository(make_isolated: Make) -> None:
    with repository({"app.py": "print('candidate')\n"}) as root:
        async with make_isolated(repo_dir=root) as sandbox:
            rewrite = await sandbox.exec(["sh", "-c", "echo x > /repo/app.py"])
            create = await sandbox.exec(["sh", "-c", "echo x > /repo/new.py"])
        assert rewrite.returncode != 0 and create.returncode != 0, (rewrite, create)
        assert (root / "app.py").read_text() == "print('candidate')\n"
        assert sorted(path.name for path in root.iterdir()) == ["app.py"]


async def test_it_runs_as_a_user_with_no_capabilities_and_none_to_gain(make_isolated: Make) -> None:
    async with make_isolated() as sandbox:
        who = await sandbox.exec(["id", "-u"])
        status = await sandbox.exec(["grep", "-E", "^(NoNewPrivs|CapEff|CapPrm):", "/proc/self/status"])
        su = await sandbox.exec(["sh", "-c", "su -c id root </dev/null; id -u"])
    fields = dict(line.split(":\t") for line in status.stdout.splitlines())
    assert who.stdout.strip() not in ("", "0"), who
    assert fields["NoNewPrivs"] == "1" and int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0, fields
    assert su.stdout.strip().splitlines()[-1] == who.stdout.strip(), su


async def test_a_fork_bomb_is_held_by_the_pids_limit(make_isolated: Make) -> None:
    async with make_isolated(limits=SandboxLimits(pids=64, timeout_s=8)) as sandbox:
        bomb = await sandbox.exec(["sh", "-c", "b(){ b | b & }; b; sleep 3; echo survived"])
        after = await sandbox.exec(["echo", "still alive"])
    assert "Cannot fork" in bomb.stderr, bomb.stderr[-500:]  # the pids limit, not the host, stopped it
    assert after.stdout == "still alive\n", after
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


async def test_a_memory_bomb_is_killed_at_the_memory_limit(make_isolated: Make) -> None:
    async with make_isolated() as sandbox:
        result = await sandbox.exec(["python3", "-c", "x = bytearray(600 * 1024 * 1024); print('allocated')"])
    assert result.oom_killed and not result.timed_out and "allocated" not in result.stdout, result


async def test_no_variable_of_the_hosts_environment_is_visible(
    make_isolated: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    monkeypatch.setenv("VIVA_LLM_ANTHROPIC_API_KEY", "sk-ant-host-secret")
    async with make_isolated(env={"APP_MODE": "graded"}) as sandbox:
        result = await sandbox.exec(["env"])
    assert "host-secret" not in result.stdout, result.stdout
    names = {line.split("=")[0] for line in result.stdout.splitlines()}
    assert names <= {"HOME", "PATH", "HOSTNAME", "PWD", "SHLVL", "_", "APP_MODE"}, names
