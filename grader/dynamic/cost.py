"""Cost: the app's reported cost per request against the gateway's ledger, and the ceiling driven until it trips."""

from __future__ import annotations

import re
import statistics
from collections.abc import Awaitable, Callable

import httpx

from grader.dynamic.client import Reply, ask
from grader.dynamic.model import AppInterface, CeilingResult, CostItem, CostResult
from sandboxes.gateway.app import Gateway

REFUSAL_WORDS = re.compile(r"budget|ceiling|limit|quota|spend|cost|exceeded|insufficient", re.I)
ALERT_WORDS = re.compile(r"budget|ceiling|spend(ing)? limit|cost limit|over ?spend", re.I)
REFUSAL_STATUSES = {402, 403, 429, 503}
MIN_BUDGET_USD = 1e-6
REQUESTS_TO_TRIP = 10
"""The ceiling is set to about this many requests' worth of spend, so driving it takes seconds, not hours."""


def compare_costs(replies: list[Reply], tolerance: float) -> CostResult:
    items = []
    for reply in replies:
        if not reply.ok:
            continue
        ledger = sum(call.price_usd for call in reply.calls)
        reported = reply.cost
        within = reported is not None and abs(reported - ledger) <= tolerance * max(ledger, 1e-12)
        items.append(CostItem(query=reply.question[:200], reported_usd=reported, gateway_usd=ledger, within=within))
    return CostResult(
        tolerance=tolerance,
        items=items,
        reported_total=sum(item.reported_usd or 0.0 for item in items),
        gateway_total=sum(item.gateway_usd for item in items),
    )


def trip_budget(replies: list[Reply], cap_usd: float) -> float:
    """The ceiling to configure: about REQUESTS_TO_TRIP requests' worth at the median price the ledger saw."""
    prices = [sum(call.price_usd for call in reply.calls) for reply in replies if reply.ok]
    median = statistics.median(prices) if prices else 0.0
    return max(MIN_BUDGET_USD, min(cap_usd, median * REQUESTS_TO_TRIP)) if median > 0 else cap_usd


async def drive_ceiling(
    client: httpx.AsyncClient,
    found: AppInterface,
    gateway: Gateway,
    *,
    budget_usd: float,
    max_requests: int,
    timeout: float,
    read_log: Callable[[], Awaitable[str]],
) -> CeilingResult:
    """Send questions until the app refuses, up to `max_requests`; the app was started with the ceiling set.
    Refusing counts when it comes by the time the ledger passes the budget plus one request's price."""
    assert found.budget_env is not None
    start_index = len(gateway.calls)
    result = CeilingResult(outcome="never", budget_env=found.budget_env, budget_usd=budget_usd)
    price_each = 0.0
    for number in range(1, max_requests + 1):
        reply = await ask(client, found, gateway, found.golden_queries[number % len(found.golden_queries)], timeout)
        result.requests = number
        spent = sum(call.price_usd for call in gateway.calls[start_index:])
        if reply.ok:
            price_each = max(price_each, sum(call.price_usd for call in reply.calls))
            continue
        if reply.status == 0:
            result.outcome, result.note = "broken", f"request {number} got no answer: {reply.error}"
            break
        refusal = reply.status in REFUSAL_STATUSES or bool(REFUSAL_WORDS.search(reply.text))
        if not refusal:
            result.outcome = "broken"
            result.note = f"request {number} failed with {reply.status} before any refusal"
            result.refused_body = reply.text[:400]
            break
        result.refused_after, result.refused_status = number, reply.status
        result.refused_body, result.spend_at_refusal = reply.text[:400], spent
        late = spent > budget_usd + 2 * max(price_each, 1e-12)
        result.outcome = "refused_late" if late else "refused"
        break
    log = await read_log()
    pattern = re.compile(re.escape(found.alert_pattern), re.I) if found.alert_pattern else ALERT_WORDS
    result.alert_lines = [line.strip()[:300] for line in log.splitlines() if pattern.search(line)][:10]
    if result.outcome in ("never", "broken") and result.alert_lines:
        result.outcome = "alerted"
    return result
