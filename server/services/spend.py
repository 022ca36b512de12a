"""Interview spend kept in the database, so that every server process checks the same ceilings.

An interview may be carried on by any server process (a reconnect lands where it lands), and an organisation's
interviews run in all of them at once: a ceiling kept in one process's memory would let each process spend up to
it. Here each account is a row — `interview:<id>` the Interview row, `org:<id>` the OrganisationSpend row — and a
call's worst case is reserved with one conditional UPDATE per account:

    UPDATE … SET reserved_usd = reserved_usd + :amount
    WHERE id = :id AND spent_usd + reserved_usd + :amount <= :ceiling

in one transaction for all of a call's payers. The database serialises updates of a row (SQLite by its write lock,
PostgreSQL by the row lock, re-checking the WHERE after waiting), so two processes racing for the last cent cannot
both pass the check. After the call the reservation is replaced by the real cost. Accounts this module does not
keep (the CLI's `org:local`) are left to the in-process book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from llm.budget import Refusal
from server.db.models import Interview, OrganisationSpend

_ACCOUNT = re.compile(r"(interview|org):(\d+)")
EPSILON = 1e-9


@dataclass
class DatabaseAccounts:
    """llm.budget.SharedAccounts over the server's database."""

    sessions: async_sessionmaker[AsyncSession]
    interview_ceiling_usd: float | None
    organisation_ceiling_usd: float | None
    _known_organisations: set[int] = field(default_factory=set)
    """Organisations whose spend row this process has seen exist (rows are never deleted)."""

    async def reserve(self, payers: list[str], amount_usd: float) -> Refusal | None:
        kept = [(kind, number) for kind, number in map(_parse, payers) if kind]
        if not kept:
            return None
        for kind, number in kept:
            if kind == "org" and number not in self._known_organisations:
                await self._ensure_organisation_row(number)
                self._known_organisations.add(number)
        async with self.sessions() as db:
            for kind, number in kept:
                table, key, ceiling = self._account(kind)
                condition = [key == number]
                if ceiling is not None:
                    condition.append(table.spent_usd + table.reserved_usd + amount_usd <= ceiling + EPSILON)
                written: Any = await db.exec(
                    sa.update(table).where(*condition).values(reserved_usd=table.reserved_usd + amount_usd)
                )
                if written.rowcount != 1:
                    await db.rollback()
                    committed = await self._committed(db, kind, number)
                    return Refusal(f"{kind}:{number}", ceiling if ceiling is not None else 0.0, committed)
            await db.commit()
        return None

    async def settle(self, payers: list[str], reserved_usd: float, cost_usd: float) -> None:
        kept = [(kind, number) for kind, number in map(_parse, payers) if kind]
        if not kept:
            return
        async with self.sessions() as db:
            for kind, number in kept:
                table, key, _ = self._account(kind)
                remaining = table.reserved_usd - reserved_usd
                await db.exec(
                    sa.update(table)
                    .where(key == number)
                    .values(
                        reserved_usd=sa.case((remaining < 0, 0.0), else_=remaining),
                        spent_usd=table.spent_usd + cost_usd,
                    )
                )
            await db.commit()

    def _account(self, kind: str) -> tuple[Any, Any, float | None]:
        if kind == "interview":
            return Interview, col(Interview.id), self.interview_ceiling_usd
        return OrganisationSpend, col(OrganisationSpend.organisation_id), self.organisation_ceiling_usd

    async def _committed(self, db: AsyncSession, kind: str, number: int) -> float:
        table, key, _ = self._account(kind)
        row = (await db.exec(select(table.spent_usd, table.reserved_usd).where(key == number))).first()
        return float(row[0] + row[1]) if row is not None else 0.0

    async def _ensure_organisation_row(self, organisation_id: int) -> None:
        async with self.sessions() as db:
            if await db.get(OrganisationSpend, organisation_id) is not None:
                return
            db.add(OrganisationSpend(organisation_id=organisation_id))
            try:
                await db.commit()
            except IntegrityError:  # another process made it first
                await db.rollback()


def _parse(account: str) -> tuple[str, int]:
    match = _ACCOUNT.fullmatch(account)
    return (match.group(1), int(match.group(2))) if match else ("", 0)


async def spent(db: AsyncSession, account: str) -> float:
    """What an account has spent, as the database records it (0 for an account it does not keep)."""
    kind, number = _parse(account)
    if kind == "interview":
        row = await db.get(Interview, number)
        return row.spent_usd if row is not None else 0.0
    if kind == "org":
        found = await db.get(OrganisationSpend, number)
        return found.spent_usd if found is not None else 0.0
    return 0.0
