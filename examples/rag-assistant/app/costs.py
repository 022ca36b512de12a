"""Cost per request from token usage, and a hard budget ceiling that refuses work once it is spent."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("rag.costs")

# USD per million tokens (input, output), from the provider's price list.
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00)}


class BudgetExceeded(RuntimeError):
    """Raised when a request would take spending past the ceiling."""


def request_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    input_price, output_price = PRICES[model]
    return (input_tokens * input_price + output_tokens * output_price) / 1_000_000


class Budget:
    """Spend so far against a hard ceiling. Thread-safe; the ceiling is checked before each call."""

    def __init__(self, ceiling_usd: float) -> None:
        self.ceiling_usd = ceiling_usd
        self.spent_usd = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            if self.spent_usd >= self.ceiling_usd:
                log.error("budget ceiling reached: spent %.4f of %.4f USD", self.spent_usd, self.ceiling_usd)
                raise BudgetExceeded(f"budget of {self.ceiling_usd:.2f} USD is spent")

    def record(self, cost_usd: float) -> None:
        with self._lock:
            self.spent_usd += cost_usd
