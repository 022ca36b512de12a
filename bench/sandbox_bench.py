"""Container start to exit for a trivial command: Viva's DockerSandbox (start, exec, cleanup, all hardening on)
vs `docker run --rm` of the same image with the same hardening, in the same run. Issue 4's first benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import docker.errors

from sandboxes.deps import parse_requirements
from sandboxes.docker_backend import DockerSandbox, docker_client
from sandboxes.layers import dependency_layer
from sandboxes.settings import SandboxSettings

IMAGE = SandboxSettings().offline_image
REPO = Path(__file__).parents[1] / "examples" / "rag-assistant"
DOCKER_RUN = [
    "docker",
    "run",
    "--rm",
    "--network",
    "none",
    "--user",
    "1000:1000",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--read-only",
    "--tmpfs",
    "/work:rw,exec,size=512m",
    "--memory",
    "1g",
    "--pids-limit",
    "256",
    "--cpus",
    "1",
    IMAGE,
    "echo",
    "hi",
]


async def _viva_once() -> float:
    started = time.perf_counter()
    async with DockerSandbox(IMAGE) as sandbox:
        result = await sandbox.exec(["echo", "hi"])
    assert result.stdout == "hi\n", result
    return time.perf_counter() - started


def _cli_once() -> float:
    started = time.perf_counter()
    subprocess.run(DOCKER_RUN, check=True, capture_output=True)
    return time.perf_counter() - started


def _layer_cold_and_warm(requirements_text: str) -> tuple[float, float, int]:
    """Install the same requirements twice: cold (no wheelhouse, no layer image) and warm (the cached layer)."""
    client = docker_client()
    requirements = parse_requirements(requirements_text)
    tag = f"viva-deps:{requirements.cache_key(str(client.images.get(IMAGE).id))}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, force=True)
    with tempfile.TemporaryDirectory(prefix="viva-layer-bench-") as cache:
        cold = dependency_layer(client, IMAGE, requirements, Path(cache))
        warm = dependency_layer(client, IMAGE, requirements, Path(cache))
    assert cold.install_ok and warm.cached, cold.log_tail
    return cold.seconds, warm.seconds, len(requirements.requirements)


def run(mode: str) -> bool:
    docker_client().images.get(IMAGE)  # the base image must exist (make sandbox-base)
    runs = 3 if mode == "smoke" else 20
    viva = [asyncio.run(_viva_once()) for _ in range(runs)]
    cli = [_cli_once() for _ in range(runs)]
    viva_ms, cli_ms = statistics.median(viva) * 1000, statistics.median(cli) * 1000
    print(
        f"{runs} runs each: DockerSandbox start→exec→cleanup median {viva_ms:.0f} ms; "
        f"docker run --rm median {cli_ms:.0f} ms; ratio {viva_ms / cli_ms:.2f}x"
    )
    requirements = "six==1.16.0\n" if mode == "smoke" else (REPO / "requirements.txt").read_text()
    cold, warm, count = _layer_cold_and_warm(requirements)
    print(
        f"dependency layer, {count} requirement(s): cold {cold:.1f} s (download + install + commit), "
        f"warm {warm:.2f} s (cached layer): {cold / warm:.0f}x"
    )
    return True
