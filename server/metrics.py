"""Prometheus metrics in the text exposition format, kept in process: requests, job durations, model spend."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(BUCKETS) if value <= bound), len(BUCKETS))
        self.counts[index] += 1
        self.total += value
        self.n += 1


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.request_seconds: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.jobs: dict[str, _Histogram] = defaultdict(_Histogram)
        self.spend_usd: dict[str, float] = defaultdict(float)
        self.budget_alerts: dict[str, int] = defaultdict(int)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.request_seconds[(method, route)].observe(seconds)

    def observe_job(self, state: str, seconds: float) -> None:
        with self._lock:
            self.jobs[state].observe(seconds)

    def add_spend(self, purpose: str, usd: float) -> None:
        with self._lock:
            self.spend_usd[purpose] += usd

    def count_alert(self, account: str) -> None:
        """A ceiling refused a model call; counted by the account's kind (`interview`, `org`, …), never its id."""
        with self._lock:
            self.budget_alerts[account.split(":", 1)[0]] += 1

    def render(self) -> str:
        lines = [
            "# HELP viva_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE viva_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(
                    f'viva_http_requests_total{{method="{method}",route="{_label(route)}",status="{status}"}} {count}'
                )
            lines += ["# HELP viva_http_request_seconds Request latency.", "# TYPE viva_http_request_seconds histogram"]
            for (method, route), histogram in sorted(self.request_seconds.items()):
                lines += _histogram(
                    "viva_http_request_seconds", f'method="{method}",route="{_label(route)}"', histogram
                )
            lines += ["# HELP viva_job_seconds Grading job durations by outcome.", "# TYPE viva_job_seconds histogram"]
            for state, histogram in sorted(self.jobs.items()):
                lines += _histogram("viva_job_seconds", f'state="{state}"', histogram)
            lines += [
                "# HELP viva_model_spend_usd_total Model spend by purpose.",
                "# TYPE viva_model_spend_usd_total counter",
            ]
            for purpose, usd in sorted(self.spend_usd.items()):
                lines.append(f'viva_model_spend_usd_total{{purpose="{_label(purpose)}"}} {usd:.6f}')
            lines += [
                "# HELP viva_budget_alerts_total Model calls a spending ceiling refused, by account kind.",
                "# TYPE viva_budget_alerts_total counter",
            ]
            for kind, count in sorted(self.budget_alerts.items()):
                lines.append(f'viva_budget_alerts_total{{account="{_label(kind)}"}} {count}')
        return "\n".join(lines) + "\n"


def _histogram(name: str, labels: str, histogram: _Histogram) -> list[str]:
    lines, running = [], 0
    for bound, count in zip((*BUCKETS, float("inf")), histogram.counts, strict=True):
        running += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {running}')
    lines += [f"{name}_sum{{{labels}}} {histogram.total:.6f}", f"{name}_count{{{labels}}} {histogram.n}"]
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


METRICS = Metrics()


def render_fleet(
    queued: dict[int, int],
    oldest_queued_seconds: float,
    running: int,
    hosts: list[tuple[str, bool, float, int, int, bool]],
) -> str:
    """The grading fleet as the database sees it, for any process to export: queue depth by priority, the oldest
    queued job's age, running gradings, and per worker host whether it is alive, its heartbeat's age and its free
    slots. `hosts` is (name, alive, heartbeat age in seconds, slots, busy, draining)."""
    lines = [
        "# HELP viva_jobs_queued Grading jobs waiting, by priority.",
        "# TYPE viva_jobs_queued gauge",
        *(f'viva_jobs_queued{{priority="{priority}"}} {count}' for priority, count in sorted(queued.items())),
        "# HELP viva_job_oldest_queued_seconds How long the oldest waiting grading has waited.",
        "# TYPE viva_job_oldest_queued_seconds gauge",
        f"viva_job_oldest_queued_seconds {oldest_queued_seconds:.1f}",
        "# HELP viva_jobs_running Gradings running on any worker.",
        "# TYPE viva_jobs_running gauge",
        f"viva_jobs_running {running}",
        "# HELP viva_worker_alive Whether a worker host's heartbeat is recent (1) or it is taken for dead (0).",
        "# TYPE viva_worker_alive gauge",
        "# HELP viva_worker_heartbeat_age_seconds Seconds since a worker host last reported.",
        "# TYPE viva_worker_heartbeat_age_seconds gauge",
        "# HELP viva_worker_free_slots Gradings a living worker host could start now (none while it drains).",
        "# TYPE viva_worker_free_slots gauge",
        "# HELP viva_worker_draining Whether a worker host is stopping: finishing its gradings, taking no more.",
        "# TYPE viva_worker_draining gauge",
    ]
    for name, alive, age, slots, busy, draining in hosts:
        label = f'worker="{_label(name)}"'
        lines += [
            f"viva_worker_alive{{{label}}} {int(alive)}",
            f"viva_worker_heartbeat_age_seconds{{{label}}} {age:.1f}",
            f"viva_worker_free_slots{{{label}}} {max(0, slots - busy) if alive and not draining else 0}",
            f"viva_worker_draining{{{label}}} {int(alive and draining)}",
        ]
    return "\n".join(lines) + "\n"
