"""A model call that is budgeted, failed over, priced and recorded: the one way Viva's agents call models."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from llm.budget import BudgetBook, CallRecord, Purpose, SharedAccounts
from llm.pricing import per_token_prices, price_usd
from llm.select import Router

if TYPE_CHECKING:
    from pydantic_ai.models import Model


class _HasUsage(Protocol):
    @property
    def usage(self) -> Any: ...


@dataclass
class MeteredCaller:
    """Reserve the worst case on every payer, run down the fallback chain, settle at the real price.

    The worst case assumes every one of `max_requests` model requests (an agent run with tool calls makes
    several) uses `max_output_tokens` and an input of `prompt_chars / 2` tokens plus a margin, at the most
    expensive model of the chain. Callers pass the same limits to the agent (UsageLimits, max_tokens), so the
    reservation is a bound, not a guess.
    """

    router: Router
    book: BudgetBook
    max_output_tokens: int = 800
    max_requests: int = 4
    shared: SharedAccounts | None = None
    """Accounts other processes spend from too (the server's database): reserved after the book's, settled with it."""

    def worst_case_usd(self, prompt_chars: int) -> float:
        input_tokens = prompt_chars // 2 + 2_000
        prices = [per_token_prices(choice.spec.provider, choice.spec.model) for choice in self.router.chain]
        per_request = max(inp * input_tokens + out * self.max_output_tokens for inp, out in prices)
        return per_request * self.max_requests

    async def run(
        self, purpose: Purpose, payers: list[str], prompt_chars: int, call: Callable[[Model], Awaitable[_HasUsage]]
    ) -> Any:
        worst = self.worst_case_usd(prompt_chars)
        reservation = self.book.reserve(payers, worst)
        if self.shared is not None:
            try:
                refused = await self.shared.reserve(payers, worst)
            except BaseException:
                self.book.release(reservation)
                raise
            if refused is not None:
                self.book.release(reservation)
                raise self.book.refuse(refused, worst)
        started = time.perf_counter()
        try:
            result, spec = await self.router.run(call)
        except Exception as error:
            self.book.settle(
                reservation,
                CallRecord("none", purpose, payers, 0, 0, 0.0, time.perf_counter() - started, False, str(error)[:200]),
            )
            if self.shared is not None:
                await self.shared.settle(payers, worst, 0.0)
            raise
        usage = result.usage
        cost = price_usd(spec.provider, spec.model, usage.input_tokens, usage.output_tokens)
        self.book.settle(
            reservation,
            CallRecord(
                spec.label,
                purpose,
                payers,
                usage.input_tokens,
                usage.output_tokens,
                cost,
                time.perf_counter() - started,
                True,
            ),
        )
        if self.shared is not None:
            await self.shared.settle(payers, worst, cost)
        return result
