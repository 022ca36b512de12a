"""Latency under the golden queries: sequential, then at a small concurrency; end to end and net of the model."""

from __future__ import annotations

import asyncio
import math

import httpx

from grader.dynamic.client import Breaker, Reply, ask, busy_seconds, calls_between
from grader.dynamic.model import AppInterface, HistogramBin, LatencyResult, Percentiles, Sample
from sandboxes.gateway.app import GENERATION_ENDPOINTS, Gateway

HISTOGRAM_BINS = 12
KEPT_SAMPLES = 400


async def measure_latency(
    client: httpx.AsyncClient,
    found: AppInterface,
    gateway: Gateway,
    *,
    min_requests: int,
    concurrency: int,
    timeout: float,
) -> tuple[LatencyResult, list[Reply]]:
    """At least `min_requests` requests: half one at a time (these replies feed the citation and cost checks, whose
    model calls are unambiguous), half `concurrency` at a time. Failed requests count at their full duration."""
    queries = found.golden_queries
    total = max(min_requests, 10)
    sequential_count = math.ceil(total / 2)
    replies: list[Reply] = []
    samples: list[Sample] = []
    breaker = Breaker()
    for number in range(sequential_count):
        reply = await ask(client, found, gateway, queries[number % len(queries)], timeout)
        replies.append(reply)
        samples.append(_sample("sequential", reply, reply.calls))
        if not breaker.record(reply):
            break

    remaining = 0 if breaker.tripped else total - sequential_count
    pending = [queries[(sequential_count + n) % len(queries)] for n in range(remaining)]
    gate = asyncio.Semaphore(concurrency)

    async def one(question: str) -> Sample:
        async with gate:
            reply = await ask(client, found, gateway, question, timeout)
        # Under concurrency, a request's model calls are the ones that began in its window and carried its question.
        return _sample("concurrent", reply, calls_between(gateway, reply.started, reply.ended, question))

    samples += await asyncio.gather(*(one(question) for question in pending))
    calls = [call for reply in replies for call in reply.calls if call.endpoint in GENERATION_ENDPOINTS]
    result = LatencyResult(
        requests=len(samples),
        errors=sum(1 for sample in samples if sample.error or sample.status != 200),
        concurrency=concurrency,
        end_to_end=percentiles([sample.seconds for sample in samples]),
        net_of_model=percentiles([sample.net_seconds for sample in samples]),
        sequential_p95=_p95([s.seconds for s in samples if s.phase == "sequential"]),
        concurrent_p95=_p95([s.seconds for s in samples if s.phase == "concurrent"]),
        histogram=histogram([sample.seconds for sample in samples]),
        samples=samples[:KEPT_SAMPLES],
        model_calls_per_request=len(calls) / max(len(replies), 1),
        modelled_seconds_per_call=sum(call.modelled_latency_s for call in calls) / max(len(calls), 1),
        queries_source=found.golden_path or "Viva's generic questions",
        stopped_early=breaker.tripped,
    )
    return result, replies


def _sample(phase: str, reply: Reply, calls: list) -> Sample:  # type: ignore[type-arg]
    model = busy_seconds(calls, reply.started, reply.ended)
    return Sample(
        phase=phase,  # type: ignore[arg-type]
        seconds=reply.seconds,
        net_seconds=max(0.0, reply.seconds - model),
        status=reply.status,
        error=reply.error,
    )


def percentiles(values: list[float]) -> Percentiles | None:
    if not values:
        return None
    ordered = sorted(values)
    return Percentiles(p50=_rank(ordered, 0.50), p95=_rank(ordered, 0.95), p99=_rank(ordered, 0.99))


def _p95(values: list[float]) -> float | None:
    return _rank(sorted(values), 0.95) if values else None


def _rank(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def histogram(values: list[float], bins: int = HISTOGRAM_BINS) -> list[HistogramBin]:
    """Equal-width bins from 0 to the slowest request (what the report draws)."""
    if not values:
        return []
    top = max(values) or 1e-6
    width = top / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value / width))] += 1
    return [HistogramBin(upper_s=width * (index + 1), count=count) for index, count in enumerate(counts)]
