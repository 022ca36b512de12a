"""Budgets with hard ceilings that concurrent calls cannot overshoot, and the ledger of every call.

A call first RESERVES its worst-case cost on every account that pays for it (the interview, the grading run,
the organisation); only when all of them have room does it go out. Afterwards the reservation is SETTLED
at the real price. Reservations are taken under one lock, so two calls racing for the last cent cannot
both get it. A refusal raises BudgetExceeded and raises an alert: a log line, a metric, and every hook a
deployer registered (a webhook, say).

The book's lock holds within one process. Accounts that several processes spend from (an organisation's, an
interview that a reconnect may carry to another server process) live in SharedAccounts as well: the server's
keeps them in its database and reserves with one conditional update per account, so two processes racing for the
last cent cannot both get it either (server/services/spend.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

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


class Refusal(msgspec.Struct, frozen=True):
    """A shared account that had no room: its name, ceiling, and what was spent or reserved on it."""

    account: str
    ceiling_usd: float
    committed_usd: float


class SharedAccounts(Protocol):
    """Accounts kept outside this process, reserved and settled like the book's own (llm.metered calls both)."""

    async def reserve(self, payers: list[str], amount_usd: float) -> Refusal | None:
        """Reserve on every payer it keeps, or on none; the refusal when one lacks room."""
        ...

    async def settle(self, payers: list[str], reserved_usd: float, cost_usd: float) -> None:
        """Replace a reservation by the real cost on every payer it keeps."""
        ...


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

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unused (a shared account refused the call)."""
        with self._lock:
            for name in reservation.payers:
                account = self.accounts[name]
                account.reserved_usd = max(0.0, account.reserved_usd - reservation.amount_usd)

    def refuse(self, refusal: Refusal, amount_usd: float) -> BudgetExceeded:
        """The error for a shared account's refusal, after raising its alert like the book's own."""
        error = BudgetExceeded(refusal.account, refusal.ceiling_usd, refusal.committed_usd, amount_usd)
        self._raise_alert(Alert(refusal.account, str(error), refusal.ceiling_usd, refusal.committed_usd, time.time()))
        return error

    def restore(self, account: str, records: list[CallRecord]) -> None:
        """Put an account's earlier calls (saved with an interview) back in the ledger, once."""
        with self._lock:
            known = {msgspec.json.encode(record) for record in self.ledger}
            found = self.accounts.setdefault(account, _Account(None))
            for record in records:
                if msgspec.json.encode(record) not in known:
                    self.ledger.append(record)
                    found.spent_usd += record.cost_usd

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
