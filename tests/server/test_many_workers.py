"""Grading on many machines, with real processes: PostgreSQL (Procrastinate carries the jobs), one `viva serve
--no-worker`, and two `viva worker` processes, each bound to its own Docker engine (a second `dockerd` with its own
socket and data root, started here) and its own data directory, sharing only the database and the shared directory.

Ten gradings spread over both engines (read off each engine's container events: each worker's sandboxes are on its
own engine, none on the other); a worker killed (SIGKILL) mid-grading has its job finished by the other, once, and its
sandbox removed by the next worker on its engine; a worker frozen (SIGSTOP) until its job was retried elsewhere and
then resumed (SIGCONT) cannot overwrite the retry's result; a cancel sent to the web process stops the grading on the
worker running it; a worker stopped (SIGTERM) mid-grading finishes that grading before it exits. And
deploy/compose.yaml's design: a worker whose engine runs in a container beside it grades in full when its paths
are at the same place in that engine, and cannot run sandboxes when they are not.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import httpx
import msgspec
import pytest
from sqlmodel import select

from sandboxes.settings import SandboxSettings
from server.db.models import Job, Submission
from tests.server.conftest import APPS, _create_database, database, make_identity, server_settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TERMINAL = ("done", "failed", "cancelled")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def second_docker_engine() -> Iterator[str]:
    """A second Docker engine on this machine: its own socket, data root, exec root and bridge (no iptables: the
    sandboxes use no network), with Viva's base image loaded from the first. Yields its DOCKER_HOST.

    Its bridge is one of its own, made here: a dockerd started with `--bridge none` removes the host's `docker0`
    (moby's removeDefaultBridgeInterface), which the first engine's containers need."""
    base = Path(tempfile.mkdtemp(prefix="viva-d2-", dir="/tmp"))  # short: containerd's socket path has a limit
    sock = base / "docker.sock"
    bridge = f"vivad2{base.name[-6:]}".replace("_", "")[:15]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", "10.213.0.1/24", "dev", bridge], check=True, capture_output=True)
    log = (base / "dockerd.log").open("wb")
    engine = subprocess.Popen(
        [
            "dockerd",
            "--host",
            f"unix://{sock}",
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "exec"),
            "--pidfile",
            str(base / "dockerd.pid"),
            "--bridge",
            bridge,
            "--iptables=false",
            "--ip-masq=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                second = docker.DockerClient(base_url=url, timeout=30)
                second.ping()
                break
            except Exception as error:
                if engine.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the second dockerd did not start: {(base / 'dockerd.log').read_text()[-2000:]}"
                    ) from error
                time.sleep(0.3)
        image = docker.from_env().images.get(SandboxSettings().offline_image)
        second.images.load(b"".join(image.save(named=True)))
        yield url
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
        log.close()
        subprocess.run(["umount", "-R", str(base / "exec")], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _start(arguments: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *arguments],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"viva serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"viva serve did not become ready: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Cluster:
    def __init__(self, base: Path, database_url: str, second_engine: str) -> None:
        self.base = base
        self.values = {
            "VIVA_DATABASE_URL": database_url,
            "VIVA_SHARED_DIR": str(base / "shared"),
            "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
            "VIVA_SUBMISSIONS_STATIC_ONLY": "0",
            "VIVA_SUBMISSIONS_PER_CANDIDATE": "50",
            "VIVA_SUBMISSIONS_PER_ORGANISATION": "50",
            "VIVA_LIMITS_SUBMISSIONS_PER_MINUTE": "100",
            "VIVA_SERVER_JOB_LEASE_SECONDS": "3",
            "VIVA_SERVER_WORKER_HEARTBEAT_SECONDS": "0.5",
            "VIVA_SERVER_WORKER_STALLED_SECONDS": "3",
            "VIVA_SANDBOX_IMAGE_SOURCE": "offline",
            "VIVA_SANDBOX_GATEWAY_TIME_SCALE": "0.05",
            "VIVA_SANDBOX_CACHE_DIR": str(base / "cache"),
        }
        self.inherited = {key: value for key, value in os.environ.items() if not key.startswith(("VIVA_", "DOCKER_"))}
        self.engines: dict[str, str | None] = {"first": None, "second": second_engine}
        self.settings = server_settings(database_url, base / "web", **self.values)
        self.port = _free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    def environment(self, data: str, docker_host: str | None = None) -> dict[str, str]:
        environment = {**self.inherited, **self.values, "VIVA_DATA_DIR": str(self.base / data)}
        if docker_host:
            environment["DOCKER_HOST"] = docker_host
        return environment

    def serve(self) -> None:
        log = self.base / "serve.log"
        process = _start(["serve", "--no-worker", "--port", str(self.port)], self.environment("web"), log)
        self.processes.append(process)
        _wait_ready(self.port, process, log)

    def worker(self, label: str, engine: str) -> subprocess.Popen[bytes]:
        log = self.base / f"worker-{label}.log"
        process = _start(["worker", "--slots", "1"], self.environment(f"data-{label}", self.engines[engine]), log)
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while b"slot(s)" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"viva worker {label} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        return process

    def submit(self, headers: dict[str, str]) -> int:
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/api/submissions",
            json={"target": "fixture:naive"},
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    def jobs(self, ids: list[int]) -> dict[int, Job]:
        async def read() -> dict[int, Job]:
            async with database(self.settings) as db:
                rows = (await db.exec(select(Job).where(Job.submission_id.in_(ids)))).all()  # type: ignore[attr-defined]
                return {row.submission_id: row for row in rows}

        return asyncio.run(read())

    def submission(self, submission_id: int) -> Submission:
        async def read() -> Submission:
            async with database(self.settings) as db:
                row = await db.get(Submission, submission_id)
                assert row is not None
                return row

        return asyncio.run(read())

    def summary(self, ids: list[int]) -> dict[int, tuple[str, object, list[str]]]:
        """Per submission: the worker, the coverage and what was not run (for a failure's message)."""
        jobs = self.jobs(ids)
        found: dict[int, tuple[str, object, list[str]]] = {}
        for submission_id in ids:
            report = msgspec.json.decode(self.submission(submission_id).report or "{}")
            reasons = [item.get("reason", "")[:160] for item in report.get("not_run", [])][:2]
            found[submission_id] = (jobs[submission_id].worker, report.get("coverage"), reasons)
        return found

    def wait(self, ids: list[int], seconds: float = 600) -> dict[int, Job]:
        deadline = time.monotonic() + seconds
        while True:
            jobs = self.jobs(ids)
            if all(job.state in TERMINAL for job in jobs.values()) or time.monotonic() > deadline:
                return jobs
            time.sleep(0.5)

    def running_on(
        self, ids: list[int], processes: list[subprocess.Popen[bytes]], seconds: float = 300
    ) -> tuple[int, subprocess.Popen[bytes]]:
        """A submission whose grading one of `processes` is running inside the sandbox, and that process."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for submission_id, job in self.jobs(ids).items():
                progress = msgspec.json.decode(job.progress or "{}")
                in_sandbox = progress.get("stage") == "sandbox" and progress.get("done", 0) >= 2  # the app is up
                for process in processes:
                    if job.state == "running" and f":{process.pid}/" in job.worker and in_sandbox:
                        return submission_id, process
            time.sleep(0.2)
        raise AssertionError(f"no grading reached the sandbox on workers {[process.pid for process in processes]}")


def _sandboxes_made_by(url: str | None, since: int) -> dict[str, int]:
    """pid of the creating process → sandbox containers created on that engine since `since` (the engine's own
    event log: containers are removed when a grading ends, their creation is still recorded)."""
    client = docker.DockerClient(base_url=url) if url else docker.from_env()
    made: dict[str, int] = {}
    events = client.events(
        since=since, until=int(time.time()) + 1, decode=True, filters={"type": "container", "event": "create"}
    )
    for item in events:
        attributes = item.get("Actor", {}).get("Attributes", {})
        if attributes.get("viva.owner"):
            pid = attributes.get("viva.pid", "?")
            made[pid] = made.get(pid, 0) + 1
    return made


ENGINE_PROGRAMS = ["dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-init"]
"""What a Docker engine runs (installed with docker.io by scripts/system-deps.sh)."""


def _engine_image() -> str:
    """A Docker engine image, as `docker:dind` is where a registry exists: this machine's own engine programs and
    the libraries they link, on Viva's offline base image (the same Debian)."""
    tag = "viva-engine:rehearsal"
    context = Path(tempfile.mkdtemp(prefix="viva-engine-image-"))
    try:
        for name in ENGINE_PROGRAMS:
            program = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
            assert program, f"{name} is not installed (scripts/system-deps.sh installs docker.io)"
            linked = subprocess.run(["ldd", program], capture_output=True, text=True, check=False).stdout
            libraries = [line.split("=>")[1].split()[0] for line in linked.splitlines() if "=> /" in line]
            for source in [program, *libraries]:
                # Under /usr: the base image's /lib is a symlink to usr/lib, which a copied /lib would replace.
                target = context / "root" / ("usr" + source.removeprefix("/usr"))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        (context / "Dockerfile").write_text(f"FROM {SandboxSettings().offline_image}\nCOPY root/ /\n")
        docker.from_env().images.build(path=str(context), tag=tag, rm=True)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag


@contextmanager
def engine_in_a_container(worker_paths: Path, mounted_at: Path) -> Iterator[str]:
    """A Docker engine running in a container, listening on a Unix socket in a directory this process shares with it,
    with `worker_paths` mounted at `mounted_at` inside (deploy/compose.yaml's engine-N: the same path there). Yields
    its DOCKER_HOST.

    The compose file runs it `privileged`; this machine's container runtime refuses a privileged container ("unable
    to apply caps": its own bounding set lacks CAP_SYS_RESOURCE), so here it has every capability but that one,
    no seccomp or AppArmor profile, and the cgroup hierarchy writable — what an engine needs of privileged."""
    client = docker.from_env()
    image = _engine_image()
    sockets = Path(tempfile.mkdtemp(prefix="viva-e-", dir="/tmp"))  # short: a socket path has a length limit
    data = f"viva-engine-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(
        image,
        ["dockerd", "--host=unix:///run/engine/docker.sock", "--iptables=false", "--ip-masq=false"],
        detach=True,
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        volumes={
            str(sockets): {"bind": "/run/engine", "mode": "rw"},
            str(worker_paths): {"bind": str(mounted_at), "mode": "rw"},
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            data: {"bind": "/var/lib/docker", "mode": "rw"},
        },
        labels={"viva.test": "engine-in-a-container"},
    )
    url = f"unix://{sockets / 'docker.sock'}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                inner = docker.DockerClient(base_url=url, timeout=30)
                inner.ping()
                break
            except Exception as error:
                container.reload()
                if container.status == "exited" or time.monotonic() > deadline:
                    logs = container.logs()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"the engine in a container did not start: {logs}") from error
                time.sleep(0.3)
        inner.images.load(b"".join(client.images.get(SandboxSettings().offline_image).save(named=True)))
        yield url
    finally:
        container.remove(force=True)
        client.volumes.get(data).remove(force=True)
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture(scope="module")
def engine_two() -> Iterator[str]:
    with second_docker_engine() as url:
        yield url
    # The first engine's bridge is still there for every later test's containers.
    assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True, check=False).returncode == 0


def test_gradings_spread_over_two_engines_survive_a_killed_and_a_frozen_worker(
    tmp_path: Path, postgres_admin_url: str, engine_two: str
) -> None:
    name = f"viva_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(postgres_admin_url, name))
    cluster = Cluster(tmp_path, postgres_admin_url.rsplit("/", 1)[0] + "/" + name, engine_two)
    started = int(time.time())
    try:
        cluster.serve()
        first = cluster.worker("a", "first")
        second = cluster.worker("b", "second")
        candidate = asyncio.run(make_identity(cluster.settings, "candidate"))

        # Ten gradings, spread over both engines.
        ids = [cluster.submit(candidate.headers) for _ in range(10)]
        jobs = cluster.wait(ids)
        assert {job.state for job in jobs.values()} == {"done"}, {k: (j.state, j.worker) for k, j in jobs.items()}
        by_worker = {job.worker.rsplit("/", 1)[0].rsplit(":", 1)[1] for job in jobs.values()}
        assert by_worker == {str(first.pid), str(second.pid)}, by_worker
        on_first, on_second = _sandboxes_made_by(None, started), _sandboxes_made_by(engine_two, started)
        # Each worker's sandboxes are on its own engine and never on the other (other processes on this machine
        # may use the first engine too: only the workers' own pids are compared).
        a, b = str(first.pid), str(second.pid)
        assert a in on_first and b in on_second and a not in on_second and b not in on_first, (
            on_first,
            on_second,
            cluster.summary(ids),
        )
        # The snapshots every interview reads are in the shared directory, not in a worker's own.
        assert all((tmp_path / "shared" / "snapshots" / str(submission_id)).is_dir() for submission_id in ids)

        # SIGKILL a worker mid-grading: the other finishes its job, once.
        more = [cluster.submit(candidate.headers) for _ in range(2)]
        victim, _ = cluster.running_on(more, [first])
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        finished = cluster.wait(more)
        assert finished[victim].state == "done" and finished[victim].attempts == 2, finished[victim]
        assert f":{second.pid}/" in finished[victim].worker
        left = docker.from_env().containers.list(all=True, filters={"label": f"viva.pid={first.pid}"})
        assert left, "the killed worker's sandbox is still on its engine until a worker there starts"
        third = cluster.worker("c", "first")  # the next worker on that engine reaps it
        assert not docker.from_env().containers.list(all=True, filters={"label": f"viva.pid={first.pid}"})

        # SIGSTOP a worker mid-grading until its job was retried and finished elsewhere, then SIGCONT it.
        frozen_ids = [cluster.submit(candidate.headers)]
        frozen, sleeper = cluster.running_on(frozen_ids, [second, third])
        other = third if sleeper is second else second
        os.killpg(sleeper.pid, signal.SIGSTOP)
        retried = cluster.wait(frozen_ids)[frozen]
        assert retried.state == "done" and retried.attempts == 2 and f":{other.pid}/" in retried.worker, retried
        before = cluster.submission(frozen)
        os.killpg(sleeper.pid, signal.SIGCONT)
        # The resumed attempt renews its lease (refused), stops at its next step and tries to finish: dropped.
        sleeper_log = tmp_path / ("worker-b.log" if sleeper is second else "worker-c.log")
        deadline = time.monotonic() + 120
        while b"was taken over; its outcome" not in sleeper_log.read_bytes():
            assert time.monotonic() < deadline, "the resumed attempt never tried to finish"
            time.sleep(0.5)
        after, job = cluster.submission(frozen), cluster.jobs(frozen_ids)[frozen]
        assert (after.status, after.finished_at, after.report) == (before.status, before.finished_at, before.report)
        assert (job.state, job.worker, job.attempts) == (retried.state, retried.worker, retried.attempts)

        # A cancel sent to the web process reaches the grading on whichever worker runs it.
        cancel_ids = [cluster.submit(candidate.headers)]
        cancelled, _ = cluster.running_on(cancel_ids, [second, third])
        response = httpx.post(
            f"http://127.0.0.1:{cluster.port}/api/submissions/{cancelled}/cancel", headers=candidate.headers, timeout=10
        )
        assert response.status_code == 200, response.text
        ended = cluster.wait(cancel_ids, seconds=60)[cancelled]
        assert ended.state == "cancelled" and cluster.submission(cancelled).status == "cancelled"

        # SIGTERM a worker mid-grading: it drains — the grading finishes there, once, while the worker goes on
        # answering for it (the stall time here is shorter than the rest of the grading) — and exits.
        drain_ids = [cluster.submit(candidate.headers)]
        draining, stopping = cluster.running_on(drain_ids, [second, third])
        os.killpg(stopping.pid, signal.SIGTERM)
        assert stopping.wait(timeout=180) == 0
        drained = cluster.jobs(drain_ids)[draining]
        assert drained.state == "done" and drained.attempts == 1 and f":{stopping.pid}/" in drained.worker, drained
        stopping_log = tmp_path / ("worker-b.log" if stopping is second else "worker-c.log")
        assert b"stopped (0 grading(s) handed back)" in stopping_log.read_bytes()
    finally:
        for process in reversed(cluster.processes):
            _stop(process)


def test_a_worker_beside_an_engine_in_a_container_grades_when_its_paths_are_the_same_there(
    postgres_admin_url: str,
) -> None:
    """deploy/compose.yaml's design, run: a worker whose Docker engine runs in a container beside it. With the
    worker's paths mounted at the same path in the engine, a grading runs in full there; mounted anywhere else, the
    sandboxes bind-mount paths the engine does not have, and the grading's dynamic part cannot run — which is why
    tests/unit/test_compose_file.py holds that rule."""
    name = f"viva_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(postgres_admin_url, name))
    base = Path(tempfile.mkdtemp(prefix="viva-c-", dir="/tmp"))  # short: the gateway's sockets are in it
    with (
        engine_in_a_container(base, base) as same_paths,
        engine_in_a_container(base, Path("/elsewhere")) as other_paths,
    ):
        cluster = Cluster(base, postgres_admin_url.rsplit("/", 1)[0] + "/" + name, same_paths)
        cluster.engines = {"same": same_paths, "other": other_paths}
        cluster.values["TMPDIR"] = str(base / "tmp")
        (base / "tmp").mkdir()
        started = int(time.time())
        try:
            cluster.serve()
            candidate = asyncio.run(make_identity(cluster.settings, "candidate"))
            worker = cluster.worker("same", "same")
            graded = cluster.submit(candidate.headers)
            job = cluster.wait([graded])[graded]
            report = msgspec.json.decode(cluster.submission(graded).report or "{}")
            assert job.state == "done" and report["coverage"] == 1.0 and not report.get("not_run"), cluster.summary(
                [graded]
            )
            made = _sandboxes_made_by(same_paths, started)
            assert made.get(str(worker.pid), 0) >= 2, made  # its sandboxes ran on the engine in the container
            _stop(worker)

            cluster.worker("other", "other")
            broken = cluster.submit(candidate.headers)
            job = cluster.wait([broken])[broken]
            report = msgspec.json.decode(cluster.submission(broken).report or "{}")
            reasons = " ".join(item["reason"] for item in report.get("not_run", []))
            assert report.get("coverage", 0) < 1.0, (
                "a grading ran in full on an engine that sees none of the worker's paths",
                cluster.summary([broken]),
            )
            assert "bind source path does not exist" in reasons, cluster.summary([broken])  # the reason, said
        finally:
            for process in reversed(cluster.processes):
                _stop(process)
            shutil.rmtree(base, ignore_errors=True)
