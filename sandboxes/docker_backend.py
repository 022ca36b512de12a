"""The Docker backend, the one that isolates: every container non-root, no capabilities, no new privileges, no
network at all (loopback only; a SandboxSpec's extra hosts are /etc/hosts lines naming it), read-only root with a
writable `exec` tmpfs for work, capped memory (no swap), CPU, pids, disk, output and time; the repository and every
other host path bind-mounted read-only; labelled with its owner so a reaper can remove what a crash left behind. The
host's environment never enters: a container gets only the variables passed to it. A pod's sidecars join a sandbox's
network namespace through its `netns_owner`."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandboxes.base import (
    MAX_READ_BYTES,
    ExecResult,
    Sandbox,
    SandboxImages,
    SandboxLimits,
    SandboxSpec,
    register_backend,
)
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.images import ensure_base_image
from sandboxes.layers import DependencyLayer, dependency_layer, image_python

if TYPE_CHECKING:
    from collections.abc import Mapping

    import docker

    from sandboxes.deps import ParsedRequirements
    from sandboxes.docker_pod import Pod
    from sandboxes.pod import PodPlan, ServiceLimits
    from sandboxes.service_images import ServiceImagePolicy
    from sandboxes.settings import SandboxSettings

# The Docker SDK (and requests) load inside the functions that talk to the engine: a grading imports this
# module whether or not it runs a sandbox, and the SDK takes a tenth of a second to import.

OWNER_LABEL = "viva.owner"
PID_LABEL = "viva.pid"
WORKDIR = "/work"
_CHUNK = 48 * 1024


ENGINE_TIMEOUT_S = 180


def docker_client() -> docker.DockerClient:
    """A client for the local engine, or SandboxUnavailable saying why there is none."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        # Committing a large dependency layer on a busy two-core host took longer than 30 s in the corpus run
        # (a read timeout became not_run); calls that should be quick carry their own, shorter, waits.
        client = docker.from_env(timeout=ENGINE_TIMEOUT_S)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(
            f"no Docker engine reachable on this host ({type(error).__name__}); start dockerd or switch sandboxes off"
        ) from None
    return client


class DockerImages(SandboxImages):
    """The Docker backend's images: the base image pulled or found (sandboxes/images.py), a project's dependency
    layer built and cached as an image (sandboxes/layers.py)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def base_image(self, settings: SandboxSettings) -> str:
        return ensure_base_image(self.client, settings)

    def dependency_layer(
        self,
        base_image: str,
        requirements: ParsedRequirements,
        cache_dir: Path,
        index_url: str,
        *,
        extra_index_url: str = "",
        max_mb: int | None = None,
    ) -> DependencyLayer:
        return dependency_layer(
            self.client,
            base_image,
            requirements,
            cache_dir,
            index_url,
            extra_index_url=extra_index_url,
            max_mb=max_mb,
        )

    def python_version(self, image: str) -> str:
        return image_python(self.client, image)

    def module_dir(self, image: str, python: str, module: str) -> str | None:
        import docker.errors  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
        import requests.exceptions  # noqa: PLC0415 - as above

        where = f"import os, {module}; print(os.path.dirname(os.path.dirname({module}.__file__)))"
        try:
            output = self.client.containers.run(
                image,
                ["sh", "-c", '[ -x "$1" ] || exit 3; exec "$1" -c "$2"', "sh", python, where],  # no venv: None
                network_mode="none",
                user="1000:1000",
                remove=True,
                stderr=False,
            )
        except docker.errors.ContainerError:
            return None  # not installed there
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine did not answer: {error}") from None
        found = bytes(output).decode(errors="replace").strip().splitlines()
        return found[-1] if found and found[-1].startswith("/") else None

    def service_images(
        self, plan: PodPlan, policy: ServiceImagePolicy, built: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        from sandboxes.service_images import resolve_pod_images  # noqa: PLC0415 - only a pod needs it

        found, missing = resolve_pod_images(self.client, plan, policy, built)
        return {service: image.image for service, image in found.items()}, {
            item.service: f"{item.image}: {item.reason}" for item in missing
        }


@register_backend("docker")
class DockerSandbox(Sandbox):
    isolates = True

    def __init__(self, spec: SandboxSpec | str, *, client: docker.DockerClient | None = None, **fields: Any) -> None:
        """A sandbox of `spec`; an image name with SandboxSpec's other fields as keywords is short for
        `SandboxSpec(image=..., ...)`. Without a `client`, the sandbox opens its own and closes it at cleanup."""
        if isinstance(spec, str):
            spec = SandboxSpec(image=spec, **fields)
        elif fields:
            raise TypeError(f"give the fields in the spec, not beside it: {sorted(fields)}")
        super().__init__(spec)
        self._client = client
        self._own_client = client is None
        self.container: Any = None
        self._pod: Pod | None = None

    @classmethod
    def images(cls) -> DockerImages:
        return DockerImages(docker_client())

    @property
    def id(self) -> str:
        """The container's id: a sidecar joins this sandbox's network namespace with `network_mode=container:<id>`
        (see `netns_owner`)."""
        if self.container is None:
            raise SandboxError("the sandbox was not started")
        return str(self.container.id)

    @property
    def netns_owner(self) -> str:
        """The `network_mode` of a container that shares this sandbox's network namespace (its loopback only)."""
        return f"container:{self.id}"

    @property
    def limits(self) -> SandboxLimits:
        return self.spec.limits

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
        import docker.types  # noqa: PLC0415 - as above
        import requests.exceptions  # noqa: PLC0415 - as above

        spec, limits = self.spec, self.spec.limits
        volumes: dict[str, dict[str, str]] = {}
        if spec.repo_dir is not None:
            volumes[str(spec.repo_dir.resolve())] = {"bind": "/repo", "mode": "ro"}
        if spec.socket_dir is not None:
            # Read-only: the sandbox connects to the host's sockets there but can create nothing (no symlink for the
            # host to follow, no file to fill the host's disk). Connecting to a socket needs no write access.
            volumes[str(spec.socket_dir.resolve())] = {"bind": "/sock", "mode": "ro"}
        for host, inside in spec.mounts.items():
            volumes[str(host.resolve())] = {"bind": inside, "mode": "ro"}
        file_mounts = []
        for inside, host in spec.file_mounts.items():
            if not host.is_file():  # a bind of a missing path would make Docker create a directory on the host
                raise SandboxError(f"cannot mount {host} at {inside}: it is not a file on this host")
            file_mounts.append(docker.types.Mount(inside, str(host.resolve()), type="bind", read_only=True))
        try:
            self.client.images.get(spec.image)  # never let `run` pull: that would reach a registry from here
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"sandbox image {spec.image!r} is not on this host (pull it, or run `viva sandbox build-base`)"
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"the Docker engine did not answer: {error}") from None
        try:
            self.container = self.client.containers.run(
                spec.image,
                command=["sleep", "infinity"],
                detach=True,
                name=f"viva-{uuid.uuid4().hex[:12]}",
                user="1000:1000",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                network_mode="none",
                extra_hosts=dict(spec.extra_hosts),
                sysctls=dict(spec.sysctls) or None,
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
                mounts=file_mounts,
                working_dir=WORKDIR,
                environment={"HOME": WORKDIR, "PATH": "/usr/local/bin:/usr/bin:/bin", **spec.env},
                labels={OWNER_LABEL: spec.owner, PID_LABEL: str(os.getpid())},
                init=True,
            )
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"sandbox image {spec.image!r} is not on this host (pull it, or run `viva sandbox build-base`)"
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

    async def start_companions(
        self,
        plan: PodPlan,
        images: Mapping[str, str],
        *,
        limits: ServiceLimits,
        budget_s: float,
        time_scale: float = 1.0,
    ) -> list[str]:
        from sandboxes.docker_pod import start_sidecars  # noqa: PLC0415 - it imports this module

        if self._pod is not None:
            raise SandboxError("this sandbox's companions were started already")
        pod = await asyncio.to_thread(
            start_sidecars,
            self.client,
            plan,
            self.id,
            self.spec.owner,
            limits,
            images=images,
            start_budget_s=budget_s,
            time_scale=time_scale,
        )
        self._pod = pod
        return [f"{one.service}: {one.image}, {one.ready} after {one.seconds:.1f} s" for one in pod.started]

    async def companions_down(self) -> list[str]:
        if self._pod is None:
            return []
        down = await asyncio.to_thread(self._pod.check)
        lines = []
        for one in down:
            why = "killed for memory" if one.oom_killed else f"{one.status}, exit code {one.exit_code}"
            last = next((line for line in reversed(one.log_tail.splitlines()) if line.strip()), "")
            lines.append(f"{one.service} stopped ({why})" + (f"; its last words: {last[:200]}" if last else ""))
        return lines

    async def cleanup(self) -> None:
        if self._pod is not None:  # before the container whose network namespace they share
            pod, self._pod = self._pod, None
            await asyncio.to_thread(pod.remove)
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.to_thread(_remove, container)
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)


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
