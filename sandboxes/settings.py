"""Sandbox settings (VIVA_SANDBOX_*): which backend, which base image and how it is obtained, and the caps."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from sandboxes.base import SandboxLimits


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
