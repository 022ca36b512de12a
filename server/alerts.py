"""Where budget alerts go besides the log line and the metric: a webhook a deployer configures."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import msgspec

from llm.budget import Alert

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
