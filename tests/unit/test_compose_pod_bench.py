"""The compose pod bench (bench/compose_pod.py) from its reader's side: the script it times is valid bash, its
output becomes the per-phase figures printed, latency is split by whether another instance was starting, and a
host that cannot run it gets a line saying why instead of a traceback."""

from __future__ import annotations

import subprocess
from typing import Any

import docker.errors
import pytest

from bench import compose_pod
from sandboxes.errors import SandboxUnavailable


def test_the_baseline_script_is_valid_bash() -> None:
    checked = subprocess.run(["bash", "-n", str(compose_pod.SCRIPT)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_script_output_becomes_phases_latencies_and_cpu_per_instance() -> None:
    stdout = "\n".join(
        [
            "2 pod 102.5",
            "1 pod 102.0",
            "1 app 103.5",
            "1 latency 103.6:90.50 103.7:110.25",
            "1 probes 104.0",
            "1 cpu aaa 1500000000",
            "1 cpu bbb 70000000",
            "1 cpu ccc 2000000000",
            "1 down 104.25",
            "2 app 104.0",
            "2 latency 104.1:95.00",
            "2 probes 104.5",
            "2 down 105.0",
        ]
    )
    first, second = compose_pod.parse_script_output(stdout, epoch=100.0, calls=[2, 1])
    assert first.phases == {"pod": 2.0, "app": 1.5, "probes": 0.5, "down": 0.25}
    assert first.latencies_ms == [90.5, 110.25]
    assert first.ready_at == 103.5
    assert first.cpu_s == {"postgres": 1.5, "redis": 0.07, "app": 2.0}, "sidecars are printed first, then the app"
    assert (first.model_calls, second.model_calls) == (2, 1)
    assert second.phases["pod"] == 2.5 and second.cpu_s == {}


def test_requests_sent_while_another_instance_starts_are_counted_apart() -> None:
    early = compose_pod.InstanceRun({}, ready_at=10.0, asked=[(10.5, 100.0), (12.5, 95.0)])
    late = compose_pod.InstanceRun({}, ready_at=12.0, asked=[(12.1, 90.0)])
    run = compose_pod.Run("viva", 5.0, [early, late], host_cpu_s=0.0, own_cpu_s=0.0)
    during, after = compose_pod.split_by_contention([run])
    assert during == [100.0], "sent at 10.5, before the other instance answered at 12.0"
    assert sorted(after) == [90.0, 95.0]


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 21)]
    assert compose_pod.percentile(values, 0.95) == 19.0
    assert compose_pod.percentile(values, 0.5) == 10.0
    assert compose_pod.percentile([7.0], 0.95) == 7.0


def test_without_an_engine_the_bench_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_engine() -> Any:
        raise SandboxUnavailable("no Docker engine reachable on this host (DockerException)")

    monkeypatch.setattr(compose_pod, "docker_client", no_engine)
    assert compose_pod.run("smoke") is True
    out = capsys.readouterr().out
    assert "skipped" in out and "no Docker engine reachable" in out, out


def test_without_the_offline_images_the_bench_names_the_missing_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Images:
        def get(self, name: str) -> object:
            if name == "viva-svc-redis:offline":
                raise docker.errors.ImageNotFound(name)
            return object()

    class Client:
        images = Images()

    monkeypatch.setattr(compose_pod, "docker_client", Client)
    assert compose_pod.run("smoke") is True
    out = capsys.readouterr().out
    assert "viva-svc-redis:offline" in out and "viva sandbox build-service" in out, out
