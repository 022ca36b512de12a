"""Sandbox settings (VIVA_SANDBOX_*): which backend, which base image and how it is obtained, and the caps."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from sandboxes.base import SandboxLimits
from sandboxes.pod import ServiceLimits


class SandboxSettings(msgspec.Struct, frozen=True, kw_only=True):
    backend: str = "docker"
    image_source: Literal["pull", "offline"] = "pull"
    """`pull` takes `pull_image` from a registry; `offline` uses `offline_image`, built by `viva sandbox
    build-base` (debootstrap + docker import). Nothing probes a registry to decide: this setting does."""
    pull_image: str = "python:3.12-slim"
    offline_image: str = "viva-base:offline"
    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 256
    disk_mb: int = 512
    output_bytes: int = 1_000_000
    timeout_s: float = 120.0
    cache_dir: str = "~/.cache/viva"
    """Where downloaded wheels are kept for dependency layers (the layers themselves are Docker images)."""
    index_url: str = "https://pypi.org/simple"
    """The package index wheels and source archives are fetched from (on the host, never from the sandbox)."""
    extra_index_url: str = ""
    """A second index searched after `index_url` (e.g. CPU-only builds of large ML stacks); empty for none."""
    layer_max_mb: Annotated[int, msgspec.Meta(ge=50, le=100_000)] = 4000
    """The largest dependency layer a grading may build; a project past it is not_run with its size, never 0."""
    start_attempt_s: Annotated[float, msgspec.Meta(gt=0, le=900)] = 60.0
    """How long one start attempt may take to answer (each in a fresh sandbox); a viva.toml's own wins."""
    start_total_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 180.0
    """The most all start attempts of one grading may take together (at most four attempts)."""
    model_cache_dir: str = ""
    """A host directory of downloaded models (Hugging Face hub / sentence-transformers layout) mounted read-only
    into every sandbox at /models, with HF_HOME and friends pointing there and offline mode on; empty for none."""
    gateway_time_scale: float = 1.0
    """Scales the stand-in model's modelled latency: 1 feels like a real provider; tests use 0."""
    gateway_ttft_s: float = 0.4
    gateway_tokens_per_second: float = 80.0
    fault_time_scale: float = 1.0
    """Scales played provider timeouts and slow answers. Keep 1 in production: the app's own timeouts are real time."""
    instances: Annotated[int, msgspec.Meta(ge=1, le=3)] = 3
    """The most instances of a candidate's app one grading runs at once, each a container of its own: 1 runs every
    probe on one; 2 adds one for the slow faults; 3 one more for the cost ceiling."""

    service_images: list[str] = msgspec.field(default_factory=list)
    """The operator's table for companion services' images, `IMAGE=LOCAL_IMAGE` entries (comma-separated in the
    variable): `postgres:16=viva-svc-postgres:offline` serves postgres:16 (and 16.x, 16-alpine) from a local build.
    Served before any registry. Matching rules: sandboxes/service_images.py `table_match`, docs/SIDECARS.md."""
    service_pull_policy: Literal["always", "if-missing", "never"] = "if-missing"
    """How a companion image not in the table is had: pulled every time, pulled when missing, or never pulled."""
    service_registries: list[str] = msgspec.field(default_factory=lambda: ["docker.io", "ghcr.io"])
    """Registries companion images may be pulled from (an image name without a registry is docker.io)."""
    service_max_image_mb: Annotated[int, msgspec.Meta(ge=10, le=100_000)] = 2000
    """A pulled companion image larger than this is removed again; its service is not_run with the size."""
    service_memory_mb: Annotated[int, msgspec.Meta(ge=32, le=65_536)] = 512
    """Memory of each companion container (no swap); its tmpfs data directories count against it."""
    service_cpus: Annotated[float, msgspec.Meta(gt=0, le=64)] = 1.0
    service_pids: Annotated[int, msgspec.Meta(ge=16, le=65_536)] = 256
    service_data_mb: Annotated[int, msgspec.Meta(ge=8, le=65_536)] = 256
    """Size of each companion's tmpfs data directory (a named volume, a data bind mount)."""
    service_start_s: Annotated[float, msgspec.Meta(gt=0, le=900)] = 90.0
    """How long all companions of one app instance may take to start and become ready, together."""
    service_time_scale: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    """Companions' healthcheck intervals, retries' waits and start periods are multiplied by this: tests poll a
    `5s` interval every quarter second. The startup budget is not scaled."""

    def __post_init__(self) -> None:
        for entry in self.service_images:
            image, equals, local = entry.partition("=")
            if not (equals and image.strip() and local.strip()):
                raise ValueError(f"service_images entry {entry!r} is not IMAGE=LOCAL_IMAGE")

    @property
    def image(self) -> str:
        return self.pull_image if self.image_source == "pull" else self.offline_image

    def limits(self) -> SandboxLimits:
        return SandboxLimits(
            memory_mb=self.memory_mb,
            cpus=self.cpus,
            pids=self.pids,
            disk_mb=self.disk_mb,
            output_bytes=self.output_bytes,
            timeout_s=self.timeout_s,
        )

    def service_limits(self) -> ServiceLimits:
        return ServiceLimits(
            memory_mb=self.service_memory_mb,
            cpus=self.service_cpus,
            pids=self.service_pids,
            data_mb=self.service_data_mb,
        )
