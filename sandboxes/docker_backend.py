"""The Docker backend: every container non-root, no capabilities, no new privileges, no network at all,
read-only root with a writable `exec` tmpfs for work, capped memory (no swap), CPU, pids, disk, output and
time; the repository bind-mounted read-only; labelled with its owner so a reaper can remove what a crash
left behind. The host's environment never enters: a container gets only the variables passed to it."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandboxes.base import ExecResult, Sandbox, SandboxLimits, register_backend
from sandboxes.errors import SandboxError, SandboxUnavailable

if TYPE_CHECKING:
    import docker

# The Docker SDK (and requests) load inside the functions that talk to the engine: a grading imports this
# module whether or not it runs a sandbox, and the SDK takes a tenth of a second to import.

OWNER_LABEL = "viva.owner"
PID_LABEL = "viva.pid"
WORKDIR = "/work"
_CHUNK = 48 * 1024
MAX_READ_BYTES = 64 * 1024 * 1024


def docker_client() -> docker.DockerClient:
    """A client for the local engine, or SandboxUnavailable saying why there is none."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(
            f"no Docker engine reachable on this host ({type(error).__name__}); start dockerd or switch sandboxes off"
        ) from None
    return client


@register_backend("docker")
class DockerSandbox(Sandbox):
    def __init__(
        self,
        image: str,
        *,
        repo_dir: Path | None = None,
        limits: SandboxLimits | None = None,
        owner: str = "viva",
        socket_dir: Path | None = None,
        client: docker.DockerClient | None = None,
        env: dict[str, str] | None = None,
        mounts: dict[Path, str] | None = None,
    ) -> None:
        self.image = image
        self.mounts = dict(mounts or {})
        """Extra host directories mounted read-only (host path → path inside), e.g. an operator's model cache."""
        self.repo_dir = repo_dir
        self.limits = limits or SandboxLimits()
        self.owner = owner
        self.socket_dir = socket_dir
        self.env = dict(env or {})
        self._client = client
        self.container: Any = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import docker.errors  # noqa: PLC0415 - as above
        import requests.exceptions  # noqa: PLC0415 - as above

        limits = self.limits
        volumes: dict[str, dict[str, str]] = {}
        if self.repo_dir is not None:
            volumes[str(self.repo_dir.resolve())] = {"bind": "/repo", "mode": "ro"}
        if self.socket_dir is not None:
            # Read-only: the sandbox connects to the host's sockets there but can create nothing (no symlink for the
            # host to follow, no file to fill the host's disk). Connecting to a socket needs no write access.
            volumes[str(self.socket_dir.resolve())] = {"bind": "/sock", "mode": "ro"}
        for host, inside in self.mounts.items():
            volumes[str(host.resolve())] = {"bind": inside, "mode": "ro"}
        try:
            self.client.images.get(self.image)  # never let `run` pull: that would reach a registry from here
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"sandbox image {self.image!r} is not on this host (pull it, or run `viva sandbox build-base`)"
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine did not answer: {error}") from None
        try:
            self.container = self.client.containers.run(
                self.image,
                command=["sleep", "infinity"],
                detach=True,
                name=f"viva-{uuid.uuid4().hex[:12]}",
                user="1000:1000",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                network_mode="none",
                read_only=True,
                tmpfs={
                    WORKDIR: f"rw,exec,nosuid,nodev,size={limits.disk_mb}m,uid=1000,gid=1000,mode=0700",
                    "/tmp": f"rw,nosuid,nodev,size={limits.tmp_mb}m,uid=1000,gid=1000,mode=1777",  # noqa: S108 - inside the container
                },
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                volumes=volumes,
                working_dir=WORKDIR,
                environment={"HOME": WORKDIR, "PATH": "/usr/local/bin:/usr/bin:/bin", **self.env},
                labels={OWNER_LABEL: self.owner, PID_LABEL: str(os.getpid())},
                init=True,
            )
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"sandbox image {self.image!r} is not on this host (pull it, or run `viva sandbox build-base`)"
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine could not start a sandbox: {error}") from None

    async def exec(
        self,
        cmd: list[str],
        *,
        input: str | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        if input is not None:
            stdin_path = f"/tmp/.viva-stdin-{uuid.uuid4().hex[:8]}"  # noqa: S108 - a path inside the container
            await self.write_file(stdin_path, input.encode())
            cmd = ["sh", "-c", f'exec "$@" < {stdin_path}', "sh", *cmd]
        return await asyncio.to_thread(self._exec, cmd, cwd, env, user, timeout or self.limits.timeout_s)

    def _exec(  # noqa: PLR0917 - internal, called positionally through asyncio.to_thread
        self,
        cmd: list[str],
        cwd: str | None,
        env: dict[str, str] | None,
        user: str | None,
        timeout: float,
        output_cap: int | None = None,
    ) -> ExecResult:
        import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import docker.errors  # noqa: PLC0415 - as above
        import requests.exceptions  # noqa: PLC0415 - as above

        if self.container is None:
            raise SandboxError("the sandbox was not started")
        wrapped = ["timeout", "-s", "KILL", f"{timeout:g}s", *cmd]
        api = self.client.api
        started = time.monotonic()
        try:
            exec_id = api.exec_create(
                self.container.id, wrapped, user=user or "1000:1000", workdir=cwd or WORKDIR, environment=env or {}
            )["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=True)
            stdout, stderr, truncated = self._collect(stream, output_cap or self.limits.output_bytes)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine failed during exec: {error}") from None
        duration = time.monotonic() - started
        killed = code == 137
        timed_out = killed and duration >= timeout - 0.05
        return ExecResult(
            returncode=code if code is not None else -1,
            stdout=stdout,
            stderr=stderr,
            duration_s=duration,
            timed_out=timed_out,
            oom_killed=killed and not timed_out,
            truncated=truncated,
        )

    async def spawn(self, cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        """Start a long-running process in the background (a service, a bridge) and return at once. It has no
        time limit of its own: it dies with the container. Its output goes where `cmd` redirects it."""
        import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import docker.errors  # noqa: PLC0415 - as above
        import requests.exceptions  # noqa: PLC0415 - as above

        if self.container is None:
            raise SandboxError("the sandbox was not started")
        api = self.client.api

        def start() -> None:
            exec_id = api.exec_create(
                self.container.id, cmd, user="1000:1000", workdir=cwd or WORKDIR, environment=env or {}
            )
            api.exec_start(exec_id["Id"], detach=True)

        try:
            await asyncio.to_thread(start)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine failed to spawn a process: {error}") from None

    @staticmethod
    def _collect(stream: Any, cap: int) -> tuple[str, str, bool]:
        """Read both streams to the end, keeping at most `cap` bytes of each: a flood is drained, not stored."""
        kept = {0: bytearray(), 1: bytearray()}
        truncated = False
        for out, err in stream:
            for index, chunk in ((0, out), (1, err)):
                if not chunk:
                    continue
                room = cap - len(kept[index])
                if room > 0:
                    kept[index] += chunk[:room]
                if len(chunk) > max(room, 0):
                    truncated = True
        return kept[0].decode(errors="replace"), kept[1].decode(errors="replace"), truncated

    async def write_file(self, path: str, contents: bytes) -> None:
        """Files go in through exec (a read-only root refuses put_archive even into a tmpfs), base64 in chunks."""
        encoded = base64.b64encode(contents).decode()
        chunks = [encoded[i : i + _CHUNK] for i in range(0, len(encoded), _CHUNK)] or [""]
        for number, chunk in enumerate(chunks):
            redirect = ">" if number == 0 else ">>"
            result = await self.exec(
                ["sh", "-c", f'printf %s "$1" | base64 -d {redirect} "$2"', "sh", chunk, path], timeout=30
            )
            if result.returncode != 0:
                raise SandboxError(f"could not write {path!r} in the sandbox: {result.stderr.strip()[:200]}")

    async def read_file(self, path: str, limit: int | None = None) -> bytes:
        """A file's bytes (at most `limit`, default MAX_READ_BYTES); not subject to the exec output cap."""
        wanted = min(limit or MAX_READ_BYTES, MAX_READ_BYTES)
        command = ["sh", "-c", 'head -c "$1" "$2" | base64 -w0', "sh", str(wanted), path]
        cap = wanted * 4 // 3 + 8
        result = await asyncio.to_thread(
            self._exec, ["sh", "-c", 'test -r "$1" || exit 66', "sh", path], None, None, None, 30.0
        )
        if result.returncode == 0:
            result = await asyncio.to_thread(self._exec, command, None, None, None, 60.0, cap)
        if result.returncode != 0:
            raise SandboxError(f"could not read {path!r} in the sandbox: {result.stderr.strip()[:200]}")
        return base64.b64decode(result.stdout)

    async def cleanup(self) -> None:
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.to_thread(_remove, container)


def _remove(container: Any) -> None:
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(f"could not remove sandbox container {container.name}: {error}") from None


def make_readable(root: Path) -> None:
    """Let the sandbox user (uid 1000) read a directory tree Viva created (a snapshot is ours; never a host dir)."""
    for directory, _, files in os.walk(root, followlinks=False):
        os.chmod(directory, 0o755)  # noqa: S103 - read and traverse only; nothing becomes writable
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


def reap(client: docker.DockerClient, owner: str = "viva") -> list[str]:
    """Remove containers of `owner` whose creating process is gone (a crash or Ctrl-C left them). Returns names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"}):
        pid = container.labels.get(PID_LABEL, "")
        if pid.isdigit() and _alive(int(pid)):
            continue
        _remove(container)
        removed.append(container.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
