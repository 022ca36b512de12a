"""Sandbox settings (VIVA_SANDBOX_*): which backend, which base image and how it is obtained, and the caps."""

from __future__ import annotations

from typing import Literal

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
