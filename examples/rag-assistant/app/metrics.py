"""End-to-end latency percentiles over a sliding window of requests."""

from __future__ import annotations

import statistics
from collections import deque


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
