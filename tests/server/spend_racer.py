"""One server process's share of a spending race (run by tests/server/test_spend.py in a process of its own):
reserve on the organisation's account until refused, or spend in reserve-and-settle cycles until refused."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import select

from server.db.engine import make_engine, session_factory
from server.services.spend import DatabaseAccounts


def race(url: str, account: str, ceiling: float, amount: float, settle: bool, start: Any, results: Any) -> None:
    async def run() -> int:
        engine = make_engine(url)
        sessions = session_factory(engine)
        accounts = DatabaseAccounts(sessions, None, ceiling)
        async with sessions() as db:  # connected and warm before the start, so neither gets a head start
            await db.exec(select(1))  # type: ignore[call-overload]
        start.wait()  # a barrier: every process begins together
        granted = 0
        while await accounts.reserve([account], amount) is None:
            granted += 1
            if settle:
                await accounts.settle([account], amount, amount)  # the call cost its whole worst case
        await engine.dispose()
        return granted

    results.put(asyncio.run(run()))


def last_cent(url: str, account: str, ceiling: float, amount: float, rounds: int, barrier: Any, results: Any) -> None:
    """Round after round, with the account left room for one more call, try to take it at the same moment as the
    other process (the test resets the account between rounds, behind the same barrier)."""

    async def run() -> None:
        engine = make_engine(url)
        sessions = session_factory(engine)
        accounts = DatabaseAccounts(sessions, None, ceiling)
        async with sessions() as db:
            await db.exec(select(1))  # type: ignore[call-overload]
        for number in range(rounds):
            barrier.wait()  # the account is reset: go
            results.put((number, await accounts.reserve([account], amount) is None))
            barrier.wait()  # this round is over
        await engine.dispose()

    asyncio.run(run())
