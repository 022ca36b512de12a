"""How the dynamic checks run on this host, and the steps a run reports: light to import, as every grading (even
a static one) builds its options, while the run itself loads the sandbox, the gateway and the probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandboxes.settings import SandboxSettings

StepCallback = Callable[[str], None]
STEPS = ("dependencies", "start", "latency", "injection", "probes", "evals", "faults", "ceiling")
"""The steps a dynamic run reports through its StepCallback, in order (the progress bar's length)."""


@dataclass(frozen=True)
class DynamicOptions:
    """How the dynamic checks run on this host (VIVA_SANDBOX_* and VIVA_GRADING_*)."""

    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "viva")
    index_url: str = "https://pypi.org/simple"
    time_scale: float = 1.0
    """Scales the stand-in model's modelled latency (0 in tests; 1 feels like a real provider)."""
    time_to_first_token_s: float = 0.4
    tokens_per_second: float = 80.0
    fault_time_scale: float = 1.0
    """Scales played timeouts and slow answers; below 1 only in Viva's own tests (an app's timeout is real time)."""

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> DynamicOptions:
        return cls(
            sandbox=settings,
            cache_dir=Path(settings.cache_dir).expanduser(),
            index_url=settings.index_url,
            time_scale=settings.gateway_time_scale,
            time_to_first_token_s=settings.gateway_ttft_s,
            tokens_per_second=settings.gateway_tokens_per_second,
            fault_time_scale=settings.fault_time_scale,
        )
