"""Issue 16's benchmark: the pod part of a grading of the compose fixture (tests/fixtures/apps/clients/
compose_postgres_redis: a FastAPI app with postgres and redis) — Viva vs a shell script of plain `docker` commands
doing the same (bench/compose_pod.sh), in the same run. Goal: at most 1.15x with three instances at once.

Per app instance, both sides: a hardened container of the fixture's dependency layer (built once, before any
timing, the way grading builds it), the repository copied in, postgres and redis joining its network namespace and
polled until ready, the app started as the Dockerfile's CMD says and polled until it answers, 20 distinct POST /ask
(each reaches the model: the app caches answers by question), everything removed. Viva's side is the
grading's own code: `_Session._instance` (sandbox, gateway, provider proxy, tunnel, listener, `start_sidecars`),
then `_Session._start`, then the requests from the host through the tunnel. The script polls at the same intervals
(the fixture's 5 s healthcheck × service_time_scale; the app every READY_POLL_S) and talks to a gateway of its own
per instance on a Unix socket, through the same in-container forwarder; its requests go from inside the container.

Each configuration (1 instance alone, then 3 at once) runs Viva and the script alternately, 5 rounds after one
untimed warm-up of each; medians of the wall time and of each phase, latency percentiles over every request, CPU
from the containers' cgroups and /proc/stat. A round in which either side failed is dropped whole and printed with
the reason. Smoke mode: one instance, 3 requests, one round; without a Docker engine or the offline companion images
it says so and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.dynamic import DynamicOptions
from grader.dynamic.companions import Companions, plan_companions
from grader.dynamic.interface import start_port, use_start
from grader.dynamic.run import _Session
from grader.dynamic.starting import rewrite_bind, unwrap
from grader.profile import build_profile
from rubrics.catalogue import default_params
from sandboxes.base import isolating_backend
from sandboxes.docker_backend import docker_client, make_readable
from sandboxes.docker_pod import POD_LABEL
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.gateway.serve import serve_gateway
from sandboxes.gateway.tls import GradingCA
from sandboxes.layers import VENV
from sandboxes.service import BRIDGE, READY_POLL_S, gateway_env
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import make_app_repo

FIXTURE = "clients/compose_postgres_redis"
IMAGES = {"postgres": "viva-svc-postgres:offline", "redis": "viva-svc-redis:offline"}
SETTINGS = SandboxSettings(
    image_source="offline",
    service_images=[f"{service}={image}" for service, image in IMAGES.items()],
    service_pull_policy="never",
    service_time_scale=0.05,
)
TIME_SCALE = 0.05
SCRIPT = Path(__file__).with_name("compose_pod.sh")
ROLES = ["main", "faults", "ceiling"]
CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct/docker")
PHASES = ("pod", "app", "probes", "down")
QUESTIONS = [
    f"{question} ({number})" if number else question
    for number in range(3)
    for question in (
        "How many unused vacation days can I carry over?",
        "How do I report a sick day?",
        "How many days a week can I work from home?",
        "How do I get my expenses reimbursed?",
        "How long is parental leave?",
        "When do I get my laptop?",
        "What should I do if I lose my laptop?",
        "What happens in my first week?",
    )
][:20]
"""Distinct questions: a repeated one would be answered from the app's Redis cache without a model call."""

PROBE = r"""
import json, sys, time, urllib.error, urllib.request
plan = json.load(open("/control/plan.json"))
base = "http://127.0.0.1:%d" % plan["port"]
if sys.argv[1] == "wait":  # any HTTP answer means it listens, as Viva waits for a detected start
    deadline = time.monotonic() + plan["start_timeout_s"]
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            sys.exit(0)
        except urllib.error.HTTPError:
            sys.exit(0)
        except OSError:
            time.sleep(float(sys.argv[2]))
    sys.exit(1)
asked = []  # EPOCH:MS per request (the container's clock is the host's)
for question in plan["questions"][: int(sys.argv[2])]:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(base + "/ask", data=body, headers={"content-type": "application/json"})
    at, began = time.time(), time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    asked.append("%.4f:%.2f" % (at, (time.perf_counter() - began) * 1000))
print(" ".join(asked))
"""


@dataclass
class InstanceRun:
    """One app instance: each phase's seconds (pod up, app answering, probes, removed), when its app answered and
    each request was sent (epoch seconds) with its latency, the CPU seconds its containers used, and how many model
    calls its gateway saw."""

    phases: dict[str, float]
    ready_at: float
    asked: list[tuple[float, float]]
    """(epoch sent, milliseconds) per request."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    model_calls: int = 0

    @property
    def latencies_ms(self) -> list[float]:
        return [ms for _, ms in self.asked]


@dataclass
class Run:
    side: Literal["viva", "shell"]
    wall_s: float
    instances: list[InstanceRun]
    host_cpu_s: float
    """Busy CPU seconds of the whole machine during the run (both cores; other work on the host included)."""
    own_cpu_s: float
    """This process (Viva's orchestration and the gateways; the script's gateways only) and its waited children."""


@dataclass
class Fixture:
    """What both sides share, prepared before any timing: the grading session, the layer, the start, the pod."""

    session: _Session
    image: str
    command: str
    env: dict[str, str]
    companions: Companions
    repo: Path
    sidecar_poll_s: float


def _host_busy_s() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _host_load(seconds: float = 2.0) -> float:
    """Cores busy over `seconds` while this bench does nothing: the other work sharing the machine."""
    before = _host_busy_s()
    time.sleep(seconds)
    return (_host_busy_s() - before) / seconds


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cgroup_cpu_s(container_id: str) -> float | None:
    try:
        return int((CGROUP_CPU / container_id / "cpuacct.usage").read_text()) / 1e9
    except (OSError, ValueError):
        return None  # cgroup v2, or another layout: not reported


async def prepare(scratch: Path) -> Fixture:
    """The fixture's repository, profile, dependency layer (built or found by the path grading uses) and pod plan."""
    repo = make_app_repo(FIXTURE, scratch / "repo")
    profile = build_profile(repo)
    options = DynamicOptions(sandbox=SETTINGS, cache_dir=Path(SETTINGS.cache_dir).expanduser(), time_scale=TIME_SCALE)
    backend = isolating_backend(SETTINGS.backend)
    params = default_params("dynamic")
    session = _Session(repo, profile, params, set(params), options, lambda _: None, sandboxes=backend)
    session.images = backend.images()
    session.base_id = await asyncio.to_thread(session.images.base_image, SETTINGS)
    start = next(start for start in profile.starts if start.compose_service)
    image, info = await session._layer(start.workdir, start)
    if not info.install_ok:
        raise RuntimeError(f"the fixture's dependencies did not install: {info.install_log_tail[-800:]}")
    session.info = info
    companions = plan_companions(repo, session._with_services(start), session.images, SETTINGS)
    if not isinstance(companions, Companions):
        raise RuntimeError(f"the fixture's companions cannot run here: {companions}")
    port = start_port(start)
    command = rewrite_bind(unwrap(start.command)[0])[0]
    env = session._start_env(start, port)[0]
    # What a grading knows once its start attempt answered (grader/dynamic/run.py `_choose_start`).
    use_start(session.found, start, port)
    session.found.env, session.found.start_command = env, command
    session.ca = GradingCA.create(scratch / "grading-ca")
    make_readable(repo)
    await session._certifi_dir(image)  # looked up once per grading, by its start attempt: not the pod's work
    healthcheck = companions.plan.sidecar("postgres").healthcheck
    poll = healthcheck.interval_s * SETTINGS.service_time_scale if healthcheck else 0.25
    return Fixture(session, image, command, env, companions, repo, poll)


async def _viva_instance(fixture: Fixture, role: str, sockets: Path, requests: int) -> InstanceRun:
    """One instance the way a grading runs it, timed by phase. Reading its containers' CPU afterwards costs Viva's
    side one engine call (tens of milliseconds, in its `down` phase)."""
    session, began = fixture.session, time.perf_counter()
    marks: dict[str, float] = {}
    async with session._instance(role, fixture.image, sockets, companions=fixture.companions) as instance:
        marks["pod"] = time.perf_counter()
        started = await session._start(instance, {})
        if not started.started:
            raise RuntimeError(f"Viva's instance did not start: {started.reason}")
        marks["app"], ready_at = time.perf_counter(), time.time()
        asked = []
        async with instance.service.client(timeout=30) as http:
            for question in QUESTIONS[:requests]:
                at, sent = time.time(), time.perf_counter()
                response = await http.post("/ask", json={"question": question})
                if response.status_code != 200:
                    log = await instance.service.tail()
                    raise RuntimeError(f"/ask answered {response.status_code}; the app's log ends: {log[-3000:]}")
                asked.append((at, (time.perf_counter() - sent) * 1000))
        marks["probes"] = time.perf_counter()
        cpu = await asyncio.to_thread(_viva_cpu, instance.sandbox.id)
    marks["down"] = time.perf_counter()
    return InstanceRun(_phases(began, marks), ready_at, asked, cpu, len(instance.gateway.calls))


def _viva_cpu(app_id: str) -> dict[str, float]:
    """CPU seconds of the instance's containers: the app's and, found by their pod label, its sidecars'."""
    sidecars = docker_client().containers.list(filters={"label": f"{POD_LABEL}={app_id}"})
    named = [("app", app_id), *((sidecar.labels.get("viva.service", "?"), sidecar.id) for sidecar in sidecars)]
    return {name: seconds for name, one in named if (seconds := _cgroup_cpu_s(one)) is not None}


def _phases(began: float, marks: dict[str, float]) -> dict[str, float]:
    ends = [began, *(marks[phase] for phase in PHASES)]
    return {phase: ends[index + 1] - ends[index] for index, phase in enumerate(PHASES)}


async def viva_run(fixture: Fixture, instances: int, requests: int, scratch: Path) -> Run:
    host, own, began = _host_busy_s(), _own_cpu_s(), time.perf_counter()
    runs = await asyncio.gather(*(_viva_instance(fixture, ROLES[n], scratch, requests) for n in range(instances)))
    wall = time.perf_counter() - began
    short = [one.model_calls for one in runs if one.model_calls < requests]
    if short:
        raise RuntimeError(f"Viva's gateways saw too few model calls ({short} of {requests})")
    return Run("viva", wall, list(runs), _host_busy_s() - host, _own_cpu_s() - own)


def _control(fixture: Fixture, scratch: Path) -> Path:
    control = scratch / "control"
    control.mkdir(parents=True)
    plan = {"port": fixture.session.found.port, "questions": QUESTIONS, "start_timeout_s": 60}
    (control / "plan.json").write_text(json.dumps(plan))
    (control / "probe.py").write_text(PROBE)
    (control / "bridge.py").write_text(BRIDGE)
    # What the app reads: the venv, its gateway (as Viva points it there) and the start's own variables. Viva's
    # container also gets the provider proxy's and CA bundle's variables, which this app, talking plain HTTP to its
    # gateway, never uses.
    env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": VENV, **gateway_env(), **fixture.env}
    (control / "app.env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    make_readable(control)
    return control


async def shell_run(fixture: Fixture, instances: int, requests: int, scratch: Path, control: Path) -> Run:
    """bench/compose_pod.sh for `instances` at once, each with its own gateway, configured like Viva's."""
    with contextlib.ExitStack() as gateways:
        served = [
            gateways.enter_context(serve_gateway(scratch / str(n), fixture.session._gateway_config()))
            for n in range(1, instances + 1)
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LAYER": fixture.image,
            "PG_IMAGE": fixture.companions.images["postgres"],
            "REDIS_IMAGE": fixture.companions.images["redis"],
            "REPO": str(fixture.repo),
            "SOCKETS": str(scratch),
            "CONTROL": str(control),
            "INSTANCES": str(instances),
            "POLL_S": f"{fixture.sidecar_poll_s:g}",
            "POLL_TRIES": str(int(SETTINGS.service_start_s / fixture.sidecar_poll_s)),
            "APP_POLL_S": f"{READY_POLL_S:g}",
            "REQUESTS": str(requests),
            "COMMAND": fixture.command,
        }
        host, own, epoch, began = _host_busy_s(), _own_cpu_s(), time.time(), time.perf_counter()
        done = await asyncio.to_thread(
            subprocess.run, ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        wall = time.perf_counter() - began
        host, own = _host_busy_s() - host, _own_cpu_s() - own
        calls = [len(gateway.calls) for gateway in served]
    if done.returncode != 0 or any(count < requests for count in calls):
        raise RuntimeError(f"the script failed (model calls {calls}): {done.stderr[-3000:]}")
    return Run("shell", wall, parse_script_output(done.stdout, epoch, calls), host, own)


def parse_script_output(stdout: str, epoch: float, calls: list[int]) -> list[InstanceRun]:
    """The script's `N PHASE EPOCH`, `N latency EPOCH:MS…` and `N cpu ID NS` lines, per instance (phases counted
    from `epoch`, when the script was launched)."""
    marks: dict[int, dict[str, float]] = {}
    asked: dict[int, list[tuple[float, float]]] = {}
    cpu: dict[int, list[float]] = {}
    for line in stdout.splitlines():
        number, kind, *rest = line.split()
        n = int(number)
        if kind == "latency":
            asked[n] = [(float(at), float(ms)) for at, _, ms in (value.partition(":") for value in rest)]
        elif kind == "cpu":
            cpu.setdefault(n, []).append(int(rest[1]) / 1e9)
        else:
            marks.setdefault(n, {})[kind] = float(rest[0])
    runs = []
    for n in sorted(marks):
        # the script prints the sidecars' usage, then the app's
        used = dict(zip(["postgres", "redis", "app"], cpu.get(n, []), strict=False))
        runs.append(InstanceRun(_phases(epoch, marks[n]), marks[n]["app"], asked[n], used, calls[n - 1]))
    return runs


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _summary(runs: list[Run]) -> str:
    phases = {p: statistics.median(one.phases[p] for run in runs for one in run.instances) for p in PHASES}
    latencies = [ms for run in runs for one in run.instances for ms in one.latencies_ms]
    return (
        f"{statistics.median(run.wall_s for run in runs):.2f} s ("
        + ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in phases.items())
        + f"; requests p50 {percentile(latencies, 0.5):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms)"
    )


def split_by_contention(runs: list[Run]) -> tuple[list[float], list[float]]:
    """The latencies of requests sent while another instance of the same run was still starting (its sidecars
    initialising, its app importing), and of those sent once every other instance answered."""
    during: list[float] = []
    after: list[float] = []
    for run in runs:
        for one in run.instances:
            last_ready = max((other.ready_at for other in run.instances if other is not one), default=0.0)
            for at, ms in one.asked:
                (during if at < last_ready else after).append(ms)
    return during, after


def _contention_line(side: str, runs: list[Run]) -> str:
    during, after = split_by_contention(runs)
    parts = [
        f"{label} p50 {percentile(values, 0.5):.0f} ms, p95 {percentile(values, 0.95):.0f} ms ({len(values)} requests)"
        for label, values in (("while another instance was starting", during), ("once all had started", after))
        if values
    ]
    return f"  {side} requests " + "; ".join(parts)


def _cpu_line(side: str, runs: list[Run]) -> str:
    """CPU seconds (medians over rounds): each container kind per instance, this process with its waited children,
    and the rest of the host's busy time: the engine's own work (dockerd, containerd, runc serving every `docker
    exec`) and whatever else runs on the machine."""
    per_instance: dict[str, list[float]] = {}
    for run in runs:
        for one in run.instances:
            for name, seconds in one.cpu_s.items():
                per_instance.setdefault(name, []).append(seconds)
    containers = ", ".join(f"{name} {statistics.median(values):.2f}" for name, values in sorted(per_instance.items()))
    wall = statistics.median(run.wall_s for run in runs)
    host = statistics.median(run.host_cpu_s for run in runs)
    own = statistics.median(run.own_cpu_s for run in runs)
    rest = statistics.median(
        run.host_cpu_s - run.own_cpu_s - sum(sum(one.cpu_s.values()) for one in run.instances) for run in runs
    )
    return (
        f"  {side} CPU: per instance {containers or 'n/a (no cgroup v1 accounting)'}; this process {own:.2f} s; "
        f"the rest {rest:.1f} s; whole host {host:.1f} s over {wall:.1f} s = {host / wall:.2f} cores busy"
    )


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="viva-pod-bench-") as text:
        os.chmod(text, 0o755)
        yield Path(text)


def _missing() -> str | None:
    """Why this host cannot run the benchmark (no engine, no offline images), or None."""
    import docker.errors  # noqa: PLC0415 - only when the bench runs

    try:
        client = docker_client()
    except SandboxUnavailable as error:
        return str(error)
    for image in [SETTINGS.offline_image, *IMAGES.values()]:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return f"image {image} is not on this host (`viva sandbox build-base`, `viva sandbox build-service KIND`)"
    return None


async def _bench(mode: str) -> bool:
    rounds, sizes, requests = (1, [1], 3) if mode == "smoke" else (5, [1, 3], len(QUESTIONS))
    with _scratch() as scratch:
        layer_began = time.perf_counter()
        fixture = await prepare(scratch)
        print(
            f"fixture {FIXTURE} ({', '.join(fixture.companions.images.values())}), layer ready in "
            f"{time.perf_counter() - layer_began:.1f} s (not timed); model time scale {TIME_SCALE}, sidecar checks "
            f"x{SETTINGS.service_time_scale} (polled every {fixture.sidecar_poll_s:g} s), {requests} requests per "
            f"instance, {rounds} round(s)",
            flush=True,
        )
        control = _control(fixture, scratch)
        if mode == "full":  # a first container of an image starts slower (page cache): neither side pays for that
            await viva_run(fixture, 1, 1, scratch / "warm-viva")
            await shell_run(fixture, 1, 1, scratch / "warm-shell", control)
        load = await asyncio.to_thread(_host_load, 0.5 if mode == "smoke" else 2.0)
        print(f"other work on this host before the runs: {load:.2f} cores busy")
        ratios = {}
        for size in sizes:
            viva, shell, lost = await _rounds(fixture, size, requests, rounds, (scratch, control))
            label = "1 instance alone" if size == 1 else f"{size} instances at once"
            for line in lost:
                print(f"{label}: a round was lost, and its other side dropped: {line[:600]}")
            if not viva:
                return False
            ratios[size] = _report(label, viva, shell)
        if mode == "smoke":
            print("smoke mode: one instance, 3 requests, one round; the goal is not judged")
        else:
            print(f"goal: at most 1.15x with {max(sizes)} instances at once: {ratios[max(sizes)]:.2f}x")
    return True


async def _rounds(
    fixture: Fixture, size: int, requests: int, rounds: int, dirs: tuple[Path, Path]
) -> tuple[list[Run], list[Run], list[str]]:
    """Viva and the script, `size` instances each, `rounds` times, alternating who goes first (so neither always
    meets a machine the other just warmed or loaded). A round where either side failed is dropped whole, with why."""
    scratch, control = dirs
    viva: list[Run] = []
    shell: list[Run] = []
    lost: list[str] = []
    for number in range(rounds):
        done: dict[str, Run] = {}
        for side in ("viva", "shell") if number % 2 == 0 else ("shell", "viva"):
            where = scratch / f"{side}-{size}-{number}"
            try:
                if side == "viva":
                    done[side] = await viva_run(fixture, size, requests, where)
                else:
                    done[side] = await shell_run(fixture, size, requests, where, control)
            except (RuntimeError, SandboxError) as error:
                lost.append(f"round {number + 1} of {rounds}, {side}: {error}")
                break
        if len(done) == 2:
            viva.append(done["viva"])
            shell.append(done["shell"])
    return viva, shell, lost


def _report(label: str, viva: list[Run], shell: list[Run]) -> float:
    ratio = statistics.median(run.wall_s for run in viva) / statistics.median(run.wall_s for run in shell)
    indent = " " * len(label)
    print(f"{label}: Viva {_summary(viva)}")
    print(f"{indent}  shell {_summary(shell)}")
    walls = "; ".join(
        f"{side} " + " ".join(f"{run.wall_s:.2f}" for run in runs) for side, runs in (("Viva", viva), ("shell", shell))
    )
    print(f"{indent}  ratio viva/shell {ratio:.2f}x (each round's wall time, s: {walls})")
    if max(len(run.instances) for run in viva) > 1:
        print(_contention_line("Viva ", viva))
        print(_contention_line("shell", shell))
    print(_cpu_line("Viva ", viva))
    print(_cpu_line("shell", shell), flush=True)
    return ratio


def run(mode: str) -> bool:
    missing = _missing()
    if missing is not None:
        print(f"skipped: the compose pod bench needs a Docker engine and Viva's offline images: {missing}")
        return True
    return asyncio.run(_bench(mode))
