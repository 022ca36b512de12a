"""llm/: model strings, prices, budgets that concurrent calls cannot overshoot, alerts, fail-over with cooldowns."""

from __future__ import annotations

import asyncio

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from llm.budget import BudgetBook, CallRecord
from llm.errors import BudgetExceeded, ModelStringError, NoModelAvailable
from llm.metered import MeteredCaller
from llm.pricing import is_known, price_usd
from llm.select import ModelChoice, ProviderKeys, Router, build_chain, chosen_model_string, default_model_string
from llm.spec import ModelSpec, parse_model_string


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("offline", [ModelSpec("offline", "offline")]),
        ("anthropic:claude-3-5-haiku-latest", [ModelSpec("anthropic", "claude-3-5-haiku-latest")]),
        ("openai:gpt-4o-mini,offline", [ModelSpec("openai", "gpt-4o-mini"), ModelSpec("offline", "offline")]),
        (
            "openai-compatible:llama3.1:8b@http://127.0.0.1:11434/v1",
            [ModelSpec("openai-compatible", "llama3.1:8b", "http://127.0.0.1:11434/v1")],
        ),
        (
            "openai-compatible:org/model@v2@https://h.example/v1/",
            [ModelSpec("openai-compatible", "org/model@v2", "https://h.example/v1")],
        ),
    ],
)
def test_model_strings(text: str, expected: list[ModelSpec]) -> None:
    assert parse_model_string(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "gpt-4o", "mystery:model", "openai-compatible:llama", "openai-compatible:m@ftp://x", "offline,,openai:x"],
)
def test_bad_model_strings(text: str) -> None:
    with pytest.raises(ModelStringError):
        parse_model_string(text)


def test_real_providers_need_keys() -> None:
    with pytest.raises(ModelStringError, match="VIVA_LLM_ANTHROPIC_API_KEY"):
        build_chain(
            "anthropic:claude-3-5-haiku-latest", lambda: FunctionModel(lambda m, i: ModelResponse([])), ProviderKeys()
        )


def test_default_model_is_offline_without_keys_and_offline_last_with_them() -> None:
    assert default_model_string(ProviderKeys()) == "offline"
    assert default_model_string(ProviderKeys(openai_api_key="k")) == "openai:gpt-4o-mini,offline"


def test_prices_from_genai_prices() -> None:
    assert price_usd("openai", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert price_usd("offline", "x", 10**9, 10**9) == 0.0
    assert not is_known("openai-compatible", "my-local-model")
    assert price_usd("openai-compatible", "my-local-model", 1_000_000, 0) == pytest.approx(15.0)


def record(cost: float, payers: list[str]) -> CallRecord:
    return CallRecord("m", "other", payers, 1, 1, cost, 0.01, True)


def test_reserve_then_settle_at_the_real_price() -> None:
    book = BudgetBook()
    book.open_account("interview:1", 1.0)
    reservation = book.reserve(["interview:1", "org:a"], 0.6)
    with pytest.raises(BudgetExceeded):
        book.reserve(["interview:1"], 0.5)  # 0.6 reserved + 0.5 > 1.0
    book.settle(reservation, record(0.1, ["interview:1", "org:a"]))
    assert book.spent("interview:1") == pytest.approx(0.1)
    book.reserve(["interview:1"], 0.5)  # room again once settled


def test_refusal_reserves_nothing_anywhere() -> None:
    book = BudgetBook()
    book.open_account("org:a", 0.05)
    book.open_account("interview:1", 10.0)
    with pytest.raises(BudgetExceeded) as refused:
        book.reserve(["interview:1", "org:a"], 0.1)
    assert refused.value.account == "org:a"
    assert book.accounts["interview:1"].reserved_usd == 0.0


def test_concurrent_calls_cannot_overshoot_the_ceiling() -> None:
    """200 concurrent calls, each reserving $0.01 against a $0.50 ceiling while a slow call is in flight."""
    book = BudgetBook()
    book.open_account("interview:x", 0.50)

    async def call() -> bool:
        try:
            reservation = book.reserve(["interview:x"], 0.01)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0.001)
        book.settle(reservation, record(0.01, ["interview:x"]))
        return True

    async def all_calls() -> list[bool]:
        return await asyncio.gather(*(call() for _ in range(200)))

    outcomes = asyncio.run(all_calls())
    assert sum(outcomes) == 50
    assert book.spent("interview:x") == pytest.approx(0.50)
    assert book.metrics["alerts_total"] == 150


def test_alerts_reach_hooks_logs_and_metrics(caplog: pytest.LogCaptureFixture) -> None:
    book = BudgetBook()
    seen = []
    book.alert_hooks.append(seen.append)
    book.alert_hooks.append(lambda alert: 1 / 0)  # a broken hook is logged, not raised
    book.open_account("org:a", 0.0)
    with pytest.raises(BudgetExceeded):
        book.reserve(["org:a"], 0.01)
    assert seen[0].account == "org:a"
    assert "budget ceiling reached" in caplog.text
    assert book.metrics["alerts_total"] == 1


def failing(
    status: int, retry_after: float | None = None, calls: list[str] | None = None, name: str = "m"
) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if calls is not None:
            calls.append(name)
        raise ModelHTTPError(status, name, retry_after=retry_after)

    return FunctionModel(respond, model_name=name)


def answering(text: str, calls: list[str], name: str) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(name)
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(respond, model_name=name)


def test_fails_over_at_once_and_cools_down_a_rate_limited_model() -> None:
    now = [1000.0]
    calls: list[str] = []
    router = Router(
        [
            ModelChoice(ModelSpec("openai", "limited"), failing(429, retry_after=20, calls=calls, name="limited")),
            ModelChoice(ModelSpec("openai", "broken"), failing(500, calls=calls, name="broken")),
            ModelChoice(ModelSpec("offline", "offline"), answering("ok", calls, "good")),
        ],
        clock=lambda: now[0],
    )
    agent: Agent[None, str] = Agent()

    async def ask():
        return await router.run(lambda model: agent.run("hi", model=model))

    result, spec = asyncio.run(ask())
    assert (result.output, spec.model) == ("ok", "offline")
    assert calls == ["limited", "broken", "good"]
    calls.clear()
    now[0] += 10  # still cooling down: the rate-limited model is skipped, not retried in place
    asyncio.run(ask())
    assert calls == ["broken", "good"]
    calls.clear()
    now[0] += 11  # Retry-After has passed
    asyncio.run(ask())
    assert calls == ["limited", "broken", "good"]


def test_no_model_available_says_why() -> None:
    router = Router([ModelChoice(ModelSpec("openai", "a"), failing(500, name="a"))])
    agent: Agent[None, str] = Agent()
    with pytest.raises(NoModelAvailable, match="openai:a: HTTP 500"):
        asyncio.run(router.run(lambda model: agent.run("hi", model=model)))


def test_metered_call_records_tokens_price_and_refuses_at_the_ceiling() -> None:
    book = BudgetBook()
    book.open_account("grading:1", 0.02)
    calls: list[str] = []
    caller = MeteredCaller(
        Router([ModelChoice(ModelSpec("openai", "gpt-4o-mini"), answering("fine", calls, "g"))]),
        book,
        max_output_tokens=100,
        max_requests=1,
    )
    agent: Agent[None, str] = Agent()

    async def ask():
        return await caller.run("judge_leaf", ["grading:1"], 400, lambda model: agent.run("hi", model=model))

    result = asyncio.run(ask())
    assert result.output == "fine"
    [entry] = book.ledger
    assert entry.purpose == "judge_leaf" and entry.input_tokens > 0
    assert entry.cost_usd == pytest.approx(price_usd("openai", "gpt-4o-mini", entry.input_tokens, entry.output_tokens))
    tight = BudgetBook()
    tight.open_account("grading:1", caller.worst_case_usd(400) / 2)
    caller.book = tight
    with pytest.raises(BudgetExceeded):
        asyncio.run(ask())
    assert len(calls) == 1, "a refused call never reaches the model"


def test_cli_and_server_choose_the_interview_model_by_one_rule() -> None:
    """Configured providers first and offline last, unless a model string is configured; a blank one is none."""
    keys = ProviderKeys(anthropic_api_key="k")
    assert chosen_model_string(None, keys) == "anthropic:claude-3-5-haiku-latest,offline"
    assert chosen_model_string("  ", keys) == "anthropic:claude-3-5-haiku-latest,offline"
    assert chosen_model_string("openai:gpt-4o", keys) == "openai:gpt-4o"
    assert chosen_model_string(None, ProviderKeys()) == "offline"
