"""Interview spend in the database: an organisation's ceiling that several server processes cannot overspend
together, each interview's spend kept across processes, and refusals counted in the alert metric."""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

import msgspec
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from grader.profile import build_profile
from interviewer.agent import interviewer_agent
from interviewer.factory import new_session
from llm.budget import BudgetBook
from llm.errors import BudgetExceeded
from llm.metered import MeteredCaller
from llm.select import ModelChoice, Router
from llm.spec import ModelSpec
from rubrics.registry import resolve_rubric
from server.db.engine import database_url as database_url_of
from server.db.engine import upgrade
from server.db.models import Interview, Organisation, OrganisationSpend
from server.metrics import METRICS
from server.settings import Settings
from tests.fixtures import repos
from tests.server.conftest import database
from tests.server.spend_racer import last_cent, race
from tests.server.test_interviews import SCRAPER_TOKEN, _open_interview

CEILING = 1.0
AMOUNT = 0.0125  # 80 reservations fit under the ceiling, the 81st does not
FITS = 80


async def _organisation(settings: Settings) -> int:
    async with database(settings) as db:
        organisation = Organisation(name="Acme")
        db.add(organisation)
        await db.commit()
        await db.refresh(organisation)
        assert organisation.id is not None
        return organisation.id


async def _spend_row(settings: Settings, organisation_id: int) -> OrganisationSpend:
    async with database(settings) as db:
        row = await db.get(OrganisationSpend, organisation_id)
        assert row is not None
        return row


@pytest.mark.parametrize("settle", [False, True], ids=["reserve", "reserve-and-settle"])
def test_two_server_processes_racing_on_one_organisation_cannot_overspend(settings: Settings, settle: bool) -> None:
    """Two OS processes, each with its own engine on the same database, reserve on one organisation's account as
    fast as they can from the same moment until refused. Together they get exactly what fits under the ceiling —
    not one reservation more (an overspend) and not one less (a lost update)."""
    url = database_url_of(settings)
    upgrade(url)
    organisation_id = asyncio.run(_organisation(settings))
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=race, args=(url, f"org:{organisation_id}", CEILING, AMOUNT, settle, start, results))
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    granted = [results.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    assert sum(granted) == FITS, granted
    assert all(count > 0 for count in granted), f"both processes took part: {granted}"
    row = asyncio.run(_spend_row(settings, organisation_id))
    committed = row.spent_usd + row.reserved_usd
    assert committed == pytest.approx(FITS * AMOUNT) and committed <= CEILING
    assert (row.spent_usd, row.reserved_usd) == (
        pytest.approx(FITS * AMOUNT if settle else 0.0),
        pytest.approx(0.0 if settle else FITS * AMOUNT),
    )


def test_only_one_of_two_processes_gets_the_last_room_under_the_ceiling(settings: Settings) -> None:
    """The boundary itself, many times: the organisation's account is left room for exactly one call, and two
    processes ask for it at the same moment. In every round exactly one gets it (a check-then-write would let both
    through now and then)."""
    url = database_url_of(settings)
    upgrade(url)
    organisation_id = asyncio.run(_organisation(settings))
    rounds = 30
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    racers = [
        context.Process(
            target=last_cent, args=(url, f"org:{organisation_id}", CEILING, AMOUNT, rounds, barrier, results)
        )
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()

    async def leave_room_for_one() -> None:
        async with database(settings) as db:
            row = await db.get(OrganisationSpend, organisation_id)
            row = row or OrganisationSpend(organisation_id=organisation_id)
            row.spent_usd, row.reserved_usd = CEILING - 1.5 * AMOUNT, 0.0
            db.add(row)
            await db.commit()

    winners = []
    for _ in range(rounds):
        asyncio.run(leave_room_for_one())
        barrier.wait(timeout=60)
        barrier.wait(timeout=60)
        outcomes = [results.get(timeout=60)[1] for _ in racers]
        winners.append(sum(outcomes))
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    assert winners == [1] * rounds, winners


def priced_caller(live: Any, *, tokens: tuple[int, int] = (1_000, 200)) -> MeteredCaller:
    """The server's own book and database accounts behind a model priced like a real provider's (a FunctionModel
    stands in for the vendor, which cannot be reached from here)."""

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(
            parts=[TextPart("ok")], usage=RequestUsage(input_tokens=tokens[0], output_tokens=tokens[1])
        )

    chain = [ModelChoice(ModelSpec("anthropic", "claude-sonnet-4-5"), FunctionModel(reply))]
    return MeteredCaller(Router(chain), live.book, shared=live.session.interviewer.shared)


def test_each_interviews_spend_is_kept_in_the_database(settings: Settings) -> None:
    with _open_interview(settings) as (client, _, live, interview_id):
        caller = priced_caller(live)
        portal = client.blocking_portal

        async def call(model: Any) -> Any:
            return await interviewer_agent.run("hello", model=model, deps=None)  # type: ignore[arg-type]

        for _ in range(2):
            portal.call(caller.run, "interview_turn", live.session.payers, 100, call)
        expected = live.book.spent(f"interview:{interview_id}")
        assert expected > 0

        async def row() -> Interview:
            async with database(settings) as db:
                found = await db.get(Interview, interview_id)
                assert found is not None
                return found

        saved = asyncio.run(row())
        assert saved.spent_usd == pytest.approx(expected) and saved.reserved_usd == pytest.approx(0.0)


def test_a_refused_interview_call_is_counted_in_the_budget_alert_metric(settings: Settings) -> None:
    """The database refuses a call whose worst case does not fit under the interview's ceiling: nothing is sent,
    the book's alert hooks fire (viva_budget_alerts_total{account="interview"} grows by one)."""
    with _open_interview(settings) as (client, _, live, interview_id):
        caller = priced_caller(live)
        before = METRICS.budget_alerts["interview"]
        sent = []

        async def call(model: Any) -> Any:
            sent.append(model)
            raise AssertionError("a refused call never reaches the model")

        with pytest.raises(BudgetExceeded) as refused:
            client.blocking_portal.call(caller.run, "interview_turn", live.session.payers, 5_000_000, call)
        assert refused.value.account == f"interview:{interview_id}" and not sent
        assert METRICS.budget_alerts["interview"] == before + 1
        metrics = client.get("/metrics", headers={"authorization": f"Bearer {SCRAPER_TOKEN}"})
        assert f'viva_budget_alerts_total{{account="interview"}} {before + 1}' in metrics.text


def test_the_saved_interview_carries_its_calls_to_another_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The report's cost counts every call, whichever process made it: the calls travel in the saved state."""
    root = repos.make_excellent_repo(tmp_path / "repo", git=False)
    profile, rubric = build_profile(root), resolve_rubric("ai-engineer-interview")
    first = new_session(root, profile, rubric, book=BudgetBook(), interview_id="7")
    asyncio.run(first.start())
    asyncio.run(first.answer("a1", "We chunk by paragraph, because tables stayed whole; it costs 5% recall."))
    calls = first.interviewer.book.records_for("interview:7")
    assert len(calls) >= 3
    state = msgspec.json.decode(msgspec.json.encode(first.state()), type=type(first.state()))
    second = new_session(root, profile, rubric, book=BudgetBook(), interview_id="7")
    second.restore(state)
    second.restore(state)  # restoring twice counts nothing twice
    assert second.interviewer.book.records_for("interview:7") == calls
