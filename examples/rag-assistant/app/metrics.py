"""End-to-end latency percentiles over a sliding window of requests."""

from __future__ import annotations

import statistics
from collections import deque


P95_TARGET_SECONDS = 3.0
"""The end-to-end p95 the app is built to: past it, every request logs a warning until the window recovers."""


class LatencyRecorder:
    def __init__(self, window: int = 1000) -> None:
        self.samples: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        self.samples.append(seconds)

    def summary(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {"count": float(len(self.samples))}
        cuts = statistics.quantiles(self.samples, n=100)
        return {"count": float(len(self.samples)), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}

    def over_target(self) -> bool:
        p95 = self.summary().get("p95")
        return p95 is not None and p95 > P95_TARGET_SECONDS
