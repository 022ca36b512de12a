"""Sidecars on Docker: the companions of a PodPlan started in the app container's network namespace.

Each sidecar joins `container:<app>` (the app's network is `none`: loopback only, so the sidecar has no way out
either and the app reaches it on localhost), runs with a read-only root, tmpfs for its data directories, `/tmp` and
`/run`, the capability set a database image needs to take its data directory and drop to its own user (and no
other), no new privileges, and the memory/CPU/pids caps of VIVA_SANDBOX_SERVICE_*. It carries the same owner and
pid labels as a DockerSandbox, so `sandboxes.docker_backend.reap` removes a pod that a dead process left behind.
Functions here are synchronous (Docker SDK calls); the async caller runs them with asyncio.to_thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from sandboxes.docker_backend import OWNER_LABEL, PID_LABEL
from sandboxes.errors import PodStartFailed, SandboxError, SandboxUnavailable
from sandboxes.pod import Condition, CopiedPath, Healthcheck, PodPlan, ServiceLimits, Sidecar

if TYPE_CHECKING:
    import docker

# The Docker SDK (and requests) load inside the functions that talk to the engine (see docker_backend.py).

SIDECAR_CAPABILITIES = ("CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER")
"""What an official database image's entrypoint does as root before it drops to its own user, and no more:
CHOWN to give the data directory (a tmpfs that starts root's) to that user; SETUID and SETGID for gosu/setpriv to
become it (no-new-privileges still allows that: it stops gaining privileges through exec, not giving them up);
DAC_OVERRIDE and FOWNER because root without them cannot enter or chmod a directory that already belongs to the
service user (a re-run of the entrypoint, `chmod 700 $PGDATA`, `find … -exec chown`). Without these the official
postgres and redis entrypoints stop at their first chown. Once dropped, the server process has no capability."""
POD_LABEL = "viva.pod"
"""The app container's id, on each of its sidecars."""
SERVICE_LABEL = "viva.service"
LOG_TAIL_LINES = 30
_POLL_FLOOR_S = 0.05
_BATCH_S = 1.0
"""How much of a healthcheck's polling one `exec` covers: at a scaled-down interval (tests, benches) checks a
quarter second apart would cost the engine four execs a second per sidecar, which three pods on two cores feel; at
Docker's own intervals (seconds) a batch is one check."""
_POLL_MARK = "viva-poll"
_POLL_LOOP = (
    'count="$1"; pause="$2"; shift 2; runs=0; '
    "while :; do "
    'out=$("$@" 2>&1); code=$?; runs=$((runs + 1)); '
    'if [ "$code" -eq 0 ] || [ "$code" -eq 126 ] || [ "$code" -eq 127 ] || [ "$runs" -ge "$count" ]; then '
    f'echo "{_POLL_MARK} $runs $code"; printf "%s" "$out"; exit 0; fi; '
    'sleep "$pause"; '
    "done"
)
"""`sh -c _POLL_LOOP sh COUNT PAUSE CHECK...`: runs CHECK until it succeeds, cannot run (126/127) or has run COUNT
times, PAUSE seconds apart; prints `viva-poll RUNS CODE` and the last check's output."""
_TCP_LISTEN = "0A"


class PodRefused(SandboxError):
    """Raised when `start_sidecars` is handed a plan with refusals: a caller must make that plan not_run instead."""


class SidecarDown(msgspec.Struct, frozen=True):
    """A sidecar that stopped while the app was being graded (killed, out of memory, crashed)."""

    service: str
    status: str
    exit_code: int | None
    oom_killed: bool
    log_tail: str


class SidecarStarted(msgspec.Struct, frozen=True):
    service: str
    container: str
    """The container's name."""
    image: str
    ready: str
    """How readiness was decided: `healthy`, `listening on N`, `completed`, `started`."""
    seconds: float


class Pod:
    """The running sidecars of one app instance. `check()` says which died; `remove()` removes all (idempotent)."""

    def __init__(self, client: docker.DockerClient, app_container_id: str, copies_dir: Path | None) -> None:
        self.client = client
        self.app_container_id = app_container_id
        self.started: list[SidecarStarted] = []
        self._containers: dict[str, Any] = {}
        self._one_shots: set[str] = set()
        self._copies_dir = copies_dir

    def container(self, service: str) -> Any:
        return self._containers[service]

    def check(self) -> list[SidecarDown]:
        """The sidecars no longer running (a one-shot service that exited 0 is done, not down). One engine call
        each: it answers at once, whatever state the sidecar is in."""
        import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import requests.exceptions  # noqa: PLC0415 - as above

        down = []
        for service, container in self._containers.items():
            try:
                container.reload()
            except docker.errors.NotFound:
                down.append(SidecarDown(service, "removed", None, False, ""))
                continue
            except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
                raise SandboxUnavailable(f"the Docker engine did not answer about sidecar {service}: {error}") from None
            state = container.attrs.get("State") or {}
            if state.get("Running"):
                continue
            code = state.get("ExitCode")
            if service in self._one_shots and code == 0:
                continue
            down.append(
                SidecarDown(service, str(state.get("Status")), code, bool(state.get("OOMKilled")), _tail(container))
            )
        return down

    def remove(self) -> None:
        for container in self._containers.values():
            _remove(container)
        if self._copies_dir is not None:
            shutil.rmtree(self._copies_dir, ignore_errors=True)
            self._copies_dir = None

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


def start_sidecars(
    client: docker.DockerClient,
    plan: PodPlan,
    app_container_id: str,
    owner: str,
    limits: ServiceLimits,
    *,
    images: Mapping[str, str],
    start_budget_s: float = 90.0,
    time_scale: float = 1.0,
) -> Pod:
    """Start every sidecar of `plan` (images: service → local image, from service_images.resolve_pod_images) in
    the network namespace of the running container `app_container_id`, in dependency order, and wait until each is
    ready: its healthcheck passes (run with exec; interval, retries and start period multiplied by `time_scale`),
    else its first port is listening, else it is running. All within `start_budget_s`. Raises PodStartFailed
    (after removing what it started) when one exits, turns unhealthy or is late; SandboxUnavailable when the
    engine fails; PodRefused for a plan with refusals."""
    if plan.refused:
        raise PodRefused("; ".join(refusal.reason for refusal in plan.refusals))
    copies_dir = _copy_in(plan) if any(sidecar.copied for sidecar in plan.sidecars) else None
    pod = Pod(client, app_container_id, copies_dir)
    starter = _Starter(pod, plan, owner, limits, images, time.monotonic() + start_budget_s, max(time_scale, 0.0))
    try:
        for sidecar in plan.sidecars:
            for dependency, condition in sidecar.depends_on.items():
                starter.satisfy(dependency, condition)
            starter.start(sidecar)
        for sidecar in plan.sidecars:
            starter.satisfy(sidecar.name, plan.app_depends_on.get(sidecar.name, "service_started"), ready=True)
    except BaseException:
        pod.remove()
        raise
    return pod


class _Starter:
    def __init__(  # noqa: PLR0917 - internal, built in one place
        self,
        pod: Pod,
        plan: PodPlan,
        owner: str,
        limits: ServiceLimits,
        images: Mapping[str, str],
        deadline: float,
        time_scale: float,
    ) -> None:
        self.pod, self.plan, self.owner, self.limits, self.images = pod, plan, owner, limits, images
        self.deadline, self.time_scale = deadline, time_scale
        self.began: dict[str, float] = {}
        self.done: set[str] = set()

    def start(self, sidecar: Sidecar) -> None:
        import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import requests.exceptions  # noqa: PLC0415 - as above

        image = self.images.get(sidecar.name)
        if image is None:
            raise SandboxError(f"no image was resolved for sidecar {sidecar.name}")
        client = self.pod.client
        try:
            config = client.images.get(image).attrs.get("Config") or {}
            container = client.containers.run(
                image,
                command=sidecar.command,
                entrypoint=sidecar.entrypoint,
                detach=True,
                name=f"viva-{self.pod.app_container_id[:12]}-{_safe(sidecar.name)}-{uuid.uuid4().hex[:6]}",
                network_mode=f"container:{self.pod.app_container_id}",
                cap_drop=["ALL"],
                cap_add=list(SIDECAR_CAPABILITIES),
                security_opt=["no-new-privileges"],
                read_only=True,
                tmpfs=self._tmpfs(sidecar, config),
                volumes=self._binds(sidecar),
                mem_limit=f"{self.limits.memory_mb}m",
                memswap_limit=f"{self.limits.memory_mb}m",
                nano_cpus=int(self.limits.cpus * 1e9),
                pids_limit=self.limits.pids,
                environment=dict(sidecar.environment),
                user=sidecar.user or None,
                working_dir=sidecar.working_dir or None,
                labels={
                    OWNER_LABEL: self.owner,
                    PID_LABEL: str(os.getpid()),
                    POD_LABEL: self.pod.app_container_id,
                    SERVICE_LABEL: sidecar.name,
                },
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine could not start sidecar {sidecar.name}: {error}") from None
        self.pod._containers[sidecar.name] = container
        self.began[sidecar.name] = time.monotonic()

    def _tmpfs(self, sidecar: Sidecar, config: Mapping[str, Any]) -> dict[str, str]:
        """The data directories (the plan's and the image's VOLUMEs, as Docker would give each an anonymous
        volume), /tmp and /run; never over a path a copied file is mounted at."""
        data = f"rw,nosuid,nodev,size={self.limits.data_mb}m"
        copied = {item.target for item in sidecar.copied}
        mounts = {path: data for path in [*sidecar.data_dirs, *(config.get("Volumes") or {})] if path not in copied}
        mounts.setdefault("/tmp", f"rw,exec,nosuid,nodev,size={self.limits.tmp_mb}m,mode=1777")  # noqa: S108 - inside
        mounts.setdefault("/run", "rw,nosuid,nodev,size=16m,mode=1777")
        return mounts

    def _binds(self, sidecar: Sidecar) -> dict[str, dict[str, str]]:
        assert self.pod._copies_dir is not None or not sidecar.copied
        return {
            str(_copy_path(self.pod._copies_dir, sidecar.name, index, item)): {"bind": item.target, "mode": "ro"}
            for index, item in enumerate(sidecar.copied)
            if self.pod._copies_dir is not None
        }

    def satisfy(self, service: str, condition: Condition, *, ready: bool = False) -> None:
        """Wait until `service` meets `condition` (with `ready`, at least its readiness: Viva waits for every
        sidecar to be ready before the app starts, more than Compose's `service_started` asks, so a slow database
        never becomes the candidate's failure)."""
        if service not in self.pod._containers or service in self.done:
            return
        sidecar = self.plan.sidecar(service)
        if condition == "service_completed_successfully":
            how = self._completed(sidecar)
        elif condition == "service_healthy" or ready:
            how = self._ready(sidecar)
        else:
            self._running(sidecar)
            return
        self.done.add(service)
        container = self.pod._containers[service]
        seconds = round(time.monotonic() - self.began[service], 2)
        self.pod.started.append(SidecarStarted(service, container.name, self.images[service], how, seconds))

    def _running(self, sidecar: Sidecar) -> dict[str, Any]:
        container = self.pod._containers[sidecar.name]
        container.reload()
        state: dict[str, Any] = container.attrs.get("State") or {}
        if not state.get("Running") and state.get("Status") != "created":
            code = state.get("ExitCode")
            if code == 0 and sidecar.name in self.pod._one_shots:
                return state
            raise PodStartFailed(
                sidecar.name, f"exited with code {code} while starting", kind="exited", log_tail=_tail(container),
                exit_code=code,
            )  # fmt: skip
        return state

    def _completed(self, sidecar: Sidecar) -> str:
        """A one-shot service (migrations, a seed job): wait for it to exit 0."""
        self.pod._one_shots.add(sidecar.name)
        container = self.pod._containers[sidecar.name]
        while True:
            container.reload()
            state = container.attrs.get("State") or {}
            if not state.get("Running") and state.get("Status") in {"exited", "dead"}:
                code = state.get("ExitCode")
                if code == 0:
                    return "completed"
                raise PodStartFailed(
                    sidecar.name, f"was to complete successfully and exited with code {code}", kind="exited",
                    log_tail=_tail(container), exit_code=code,
                )  # fmt: skip
            self._sleep(sidecar, 0.5)

    def _ready(self, sidecar: Sidecar) -> str:
        container = self.pod._containers[sidecar.name]
        healthcheck = sidecar.healthcheck or (None if sidecar.healthcheck_disabled else _image_healthcheck(container))
        ports = sidecar.ports or _exposed(container)
        if healthcheck is not None:
            self._healthy(sidecar, healthcheck)
            # Healthy and still not listening happens (a check that asks a Unix socket during initialisation):
            # the app connects over TCP, so the port must answer too.
            while ports and not self._listening(container, ports[0]):
                self._running(sidecar)
                self._sleep(sidecar, 0.25)
            return "healthy"
        if not ports:
            # Nothing to wait for but the process: one that already exited 0 was a one-shot job (a `depends_on`
            # list entry asks no more of it than Compose's `service_started` does).
            container.reload()
            state = container.attrs.get("State") or {}
            if not state.get("Running") and state.get("ExitCode") == 0 and state.get("Status") == "exited":
                self.pod._one_shots.add(sidecar.name)
                return "completed"
            self._running(sidecar)
            return "started"
        while True:
            self._running(sidecar)
            if self._listening(container, ports[0]):
                return f"listening on {ports[0]}"
            self._sleep(sidecar, 0.25)

    def _healthy(self, sidecar: Sidecar, check: Healthcheck) -> None:
        """Docker's rules: during the start period failures do not count; after it, `retries` failures in a row
        make the service unhealthy; one success makes it healthy. Checks due within about a second run in one
        `exec` (`_poll`), so a scaled-down interval does not cost the engine an exec every quarter second."""
        container = self.pod._containers[sidecar.name]
        start_period_ends = self.began[sidecar.name] + check.start_period_s * self.time_scale
        failures = 0
        failing_since: float | None = None
        batched = True
        while True:
            self._running(sidecar)
            in_start_period = time.monotonic() < start_period_ends
            interval = min(check.interval_s, check.start_interval_s) if in_start_period else check.interval_s
            period = interval * self.time_scale
            pause = max(period, _POLL_FLOOR_S)
            if batched:
                count = max(1, min(int(_BATCH_S / pause), int(self._left() / pause)))
                runs, code, output = self._poll(container, check, count, pause)
                if runs is None:  # the image has no shell to loop in: one exec per check from now on
                    batched = False
                    continue
            else:
                runs = 1
                code, output = _exec(container, check.test, min(check.timeout_s, max(self._left(), 0.1)))
            if code == 0:
                return
            missing = code in {126, 127} or "executable file not found" in output or "no such file" in output.lower()
            if missing:
                raise PodStartFailed(
                    sidecar.name, f"its healthcheck {' '.join(check.test)!r} cannot run in this image: {output[-300:]}",
                    kind="unhealthy", log_tail=_tail(container), probe_missing=True,
                )  # fmt: skip
            now = time.monotonic()
            in_start_period = now < start_period_ends
            failures = 0 if in_start_period else failures + runs
            failing_since = None if in_start_period else (failing_since or now)
            # The scale makes Viva poll sooner, never give up sooner: `retries` failures at Docker's own pace
            # (retries × interval of real time), or a slow first start on busy cores becomes a false "unhealthy".
            waited = now - failing_since if failing_since is not None else 0.0
            if failures >= check.retries and waited >= (check.retries - 1) * check.interval_s:
                raise PodStartFailed(
                    sidecar.name, f"unhealthy: its healthcheck failed {check.retries} times in a row at its "
                    f"{check.interval_s:g} s interval ({failures} checks; last: code {code}, "
                    f"{output.strip()[-300:]!r})",
                    kind="unhealthy", log_tail=_tail(container),
                )  # fmt: skip
            self._sleep(sidecar, period)

    def _poll(self, container: Any, check: Healthcheck, count: int, pause: float) -> tuple[int | None, int | None, str]:
        """Up to `count` checks `pause` seconds apart in one `exec` of the sidecar's own shell, stopping at the first
        success or at a check that cannot run: (checks run, the last one's exit code, its output); (None, …) when
        the image has no `sh` to run the loop in. A check that hangs holds the exec: it is abandoned after its
        timeout, as Docker abandons one (the loop dies with the container)."""
        limit = min(count * pause + check.timeout_s, max(self._left(), 0.1))
        code, output = _exec(container, ["sh", "-c", _POLL_LOOP, "sh", str(count), f"{pause:.3f}", *check.test], limit)
        head, _, rest = output.partition("\n")
        words = head.split()
        if len(words) == 3 and words[0] == _POLL_MARK and words[1].isdigit() and words[2].lstrip("-").isdigit():
            return int(words[1]), int(words[2]), rest
        if code is None:  # the engine refused, or the exec outlived its limit: one failed check
            return 1, None, output
        return None, code, output

    def _listening(self, container: Any, port: int) -> bool:
        """Whether a socket listens on `port` in the pod's network namespace: /proc/net/tcp read from the app
        container (Viva's own image, so `cat` is there), else from the sidecar. Reading the socket table sends no
        connection the service would log or count."""
        table = "/proc/net/tcp /proc/net/tcp6"
        for target in (self.pod.app_container_id, container.id):
            code, output = _exec_id(self.pod.client, target, ["sh", "-c", f"cat {table} 2>/dev/null"], 10.0)
            if code == 0 or output:
                return _listens(output, port)
        return False

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _sleep(self, sidecar: Sidecar, seconds: float) -> None:
        if self._left() <= 0:
            container = self.pod._containers[sidecar.name]
            raise PodStartFailed(
                sidecar.name, "was not ready within the startup budget (VIVA_SANDBOX_SERVICE_START_S)",
                kind="timeout", log_tail=_tail(container),
            )  # fmt: skip
        time.sleep(min(max(seconds, _POLL_FLOOR_S), max(self._left(), 0.0)))


def _listens(table: str, port: int) -> bool:
    """A LISTEN row (state 0A) for `port` in /proc/net/tcp{,6} text (local address `ADDR:PORT` in hex)."""
    wanted = f"{port:04X}"
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].rsplit(":", 1)[-1] == wanted and fields[3] == _TCP_LISTEN:
            return True
    return False


def _image_healthcheck(container: Any) -> Healthcheck | None:
    """The image's own HEALTHCHECK, when the compose file gives none (Docker would run it)."""
    found = (container.attrs.get("Config") or {}).get("Healthcheck") or {}
    test = found.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    argv = list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", " ".join(test[1:])]

    def seconds(key: str, default: float) -> float:
        value = found.get(key)
        return value / 1e9 if isinstance(value, int) and value > 0 else default

    return Healthcheck(
        test=argv,
        interval_s=seconds("Interval", 30.0),
        timeout_s=seconds("Timeout", 30.0),
        retries=int(found.get("Retries") or 3),
        start_period_s=seconds("StartPeriod", 0.0),
    )


def _exposed(container: Any) -> list[int]:
    exposed = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    return sorted(int(key.split("/", 1)[0]) for key in exposed if key.endswith("/tcp") and key.split("/")[0].isdigit())


def _exec(container: Any, command: list[str], timeout: float) -> tuple[int | None, str]:
    return _exec_id(container.client, container.id, command, timeout)


def _exec_id(
    client: docker.DockerClient, container_id: str, command: list[str], timeout: float
) -> tuple[int | None, str]:
    """(exit code, output) of `command` run in the container as its own user; (None, why) when the engine
    refused or it outlived `timeout` (it is left to die with the container: not every image has `timeout`)."""
    import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import requests.exceptions  # noqa: PLC0415 - as above

    outcome: list[tuple[int | None, str]] = []

    def run() -> None:
        try:
            exec_id = client.api.exec_create(container_id, command)["Id"]
            output = client.api.exec_start(exec_id)
            code = client.api.exec_inspect(exec_id).get("ExitCode")
            outcome.append((code, bytes(output).decode(errors="replace")))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            outcome.append((None, str(error)))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else (None, f"timed out after {timeout:g}s")


def _tail(container: Any) -> str:
    import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        return bytes(container.logs(tail=LOG_TAIL_LINES)).decode(errors="replace").strip()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return ""


def _remove(container: Any) -> None:
    import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(f"could not remove sidecar container {container.name}: {error}") from None


def _safe(name: str) -> str:
    return "".join(character if character.isalnum() or character in "_.-" else "-" for character in name)[:40]


# Copies of the repository's init files.


def _copy_in(plan: PodPlan) -> Path:
    """A host directory holding copies of only the files the sidecars read, mounted read-only. Not put_archive:
    a read-only root refuses it even into a tmpfs; not exec either: the entrypoint reads /docker-entrypoint-initdb.d
    the moment the container starts, before anything could be written into it. A copy, never the repository: the
    sidecar sees those files and nothing beside them, and cannot change them."""
    root = Path(tempfile.mkdtemp(prefix="viva-pod-"))
    root.chmod(0o755)
    repo_root = Path(plan.repo_root)
    try:
        for sidecar in plan.sidecars:
            for index, item in enumerate(sidecar.copied):
                _copy_one(repo_root / item.source, _copy_path(root, sidecar.name, index, item))
    except OSError as error:
        shutil.rmtree(root, ignore_errors=True)
        raise SandboxUnavailable(f"could not copy the sidecars' init files: {error}") from None
    return root


def _copy_path(root: Path, service: str, index: int, item: CopiedPath) -> Path:
    return root / _safe(service) / str(index) / (Path(item.source).name or "repository")


def _copy_one(source: Path, target: Path) -> None:
    """Regular files only (a symlink is left out: it could point anywhere on this host); readable by every user,
    since the service reads them as its own user; executable where the repository's file was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for directory in (target.parent, target.parent.parent):
        directory.chmod(0o755)
    if source.is_symlink():
        return
    if source.is_file():
        shutil.copyfile(source, target)
        target.chmod(0o755 if os.access(source, os.X_OK) else 0o644)
        return
    target.mkdir(mode=0o755)
    for entry in sorted(source.iterdir()):
        _copy_one(entry, target / entry.name)
