"""Budgets with hard ceilings that concurrent calls cannot overshoot, and the ledger of every call.

A call first RESERVES its worst-case cost on every account that pays for it (the interview, the grading run,
the organisation); only when all of them have room does it go out. Afterwards the reservation is SETTLED
at the real price. Reservations are taken under one lock, so two calls racing for the last cent cannot
both get it. A refusal raises BudgetExceeded and raises an alert: a log line, a metric, and every hook a
deployer registered (a webhook, say).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from llm.errors import BudgetExceeded

log = logging.getLogger("viva.llm.budget")

Purpose = Literal["interview_turn", "interview_assessment", "judge_leaf", "other"]


class Alert(msgspec.Struct, frozen=True):
    """Something a person must hear about: a ceiling refused a call."""

    account: str
    message: str
    ceiling_usd: float
    committed_usd: float
    at: float


class CallRecord(msgspec.Struct, frozen=True):
    """One model call: who called, why, with what, what it cost and how long it took."""

    model: str
    purpose: Purpose
    payers: list[str]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    ok: bool
    error: str = ""


@dataclass
class _Account:
    ceiling_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0


@dataclass(frozen=True)
class Reservation:
    payers: tuple[str, ...]
    amount_usd: float


@dataclass
class BudgetBook:
    """Accounts, reservations, the ledger and alert hooks. Thread-safe; usable from asyncio code."""

    accounts: dict[str, _Account] = field(default_factory=dict)
    ledger: list[CallRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    alert_hooks: list[Callable[[Alert], None]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=lambda: {"alerts_total": 0.0, "spend_usd_total": 0.0})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def open_account(self, name: str, ceiling_usd: float | None) -> None:
        """Create an account (or change its ceiling); None means no ceiling."""
        with self._lock:
            account = self.accounts.setdefault(name, _Account(ceiling_usd))
            account.ceiling_usd = ceiling_usd

    def reserve(self, payers: list[str], amount_usd: float) -> Reservation:
        """Reserve `amount_usd` on every payer, or on none. Raises BudgetExceeded (and alerts) when one lacks room."""
        with self._lock:
            for name in payers:
                account = self.accounts.setdefault(name, _Account(None))
                committed = account.spent_usd + account.reserved_usd
                if account.ceiling_usd is not None and committed + amount_usd > account.ceiling_usd + 1e-12:
                    refusal = BudgetExceeded(name, account.ceiling_usd, committed, amount_usd)
                    alert = Alert(name, str(refusal), account.ceiling_usd, committed, time.time())
                    break
            else:
                for name in payers:
                    self.accounts[name].reserved_usd += amount_usd
                return Reservation(tuple(payers), amount_usd)
        self._raise_alert(alert)
        raise refusal

    def settle(self, reservation: Reservation, record: CallRecord) -> None:
        """Replace a reservation by the real cost and add the call to the ledger."""
        with self._lock:
            for name in reservation.payers:
                account = self.accounts[name]
                account.reserved_usd = max(0.0, account.reserved_usd - reservation.amount_usd)
                account.spent_usd += record.cost_usd
            self.ledger.append(record)
            self.metrics["spend_usd_total"] += record.cost_usd

    def spent(self, account: str) -> float:
        with self._lock:
            found = self.accounts.get(account)
            return found.spent_usd if found else 0.0

    def records_for(self, account: str) -> list[CallRecord]:
        with self._lock:
            return [record for record in self.ledger if account in record.payers]

    def _raise_alert(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)
            self.metrics["alerts_total"] += 1
        log.error("budget ceiling reached: %s", alert.message)
        for hook in list(self.alert_hooks):
            try:
                hook(alert)
            except Exception:  # a broken hook must not hide the refusal from the caller
                log.exception("budget alert hook failed")
