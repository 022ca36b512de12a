"""Where budget alerts go besides the log line and the metric: a webhook a deployer configures."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import msgspec

from llm.budget import Alert, BudgetBook
from server.metrics import METRICS

log = logging.getLogger("viva.alerts")


def webhook_hook(url: str, timeout_seconds: float = 5.0) -> Callable[[Alert], None]:
    """A BudgetBook alert hook that POSTs the alert as JSON. A failing webhook is logged, never raised."""

    def post(alert: Alert) -> None:
        try:
            httpx.post(
                url,
                content=msgspec.json.encode(alert),
                headers={"content-type": "application/json"},
                timeout=timeout_seconds,
            )
        except httpx.HTTPError as error:
            log.warning("budget alert webhook failed: %s", error)

    return post


def budget_book(webhook_url: str | None) -> BudgetBook:
    """A BudgetBook as every server process and CLI makes one: its alerts counted in viva_budget_alerts_total and
    POSTed to the deployer's webhook when one is configured."""
    book = BudgetBook()
    book.alert_hooks.append(lambda alert: METRICS.count_alert(alert.account))
    if webhook_url:
        book.alert_hooks.append(webhook_hook(webhook_url))
    return book
