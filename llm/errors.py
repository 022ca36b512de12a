"""Errors raised by the llm room."""

from __future__ import annotations


class LLMError(Exception):
    """Root of every error this room raises."""


class ModelStringError(LLMError):
    """Raised when a model string cannot be understood (you used the API wrong: fix the setting)."""


class NoModelAvailable(LLMError):
    """Raised when every model of a fallback chain failed or is cooling down; `failures` says why, per model."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__("no model could answer: " + "; ".join(failures))


class BudgetExceeded(LLMError):
    """Raised before a call when its worst-case cost does not fit under a budget's hard ceiling.
    Nothing was sent to the provider; `account` names the budget that refused."""

    def __init__(self, account: str, ceiling_usd: float, committed_usd: float, requested_usd: float) -> None:
        self.account = account
        self.ceiling_usd = ceiling_usd
        self.committed_usd = committed_usd
        self.requested_usd = requested_usd
        super().__init__(
            f"budget {account!r} would exceed its ceiling of ${ceiling_usd:.4f} "
            f"(spent or reserved ${committed_usd:.4f}, this call needs up to ${requested_usd:.4f})"
        )
