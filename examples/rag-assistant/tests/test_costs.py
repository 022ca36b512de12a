import pytest

from app.costs import Budget, BudgetExceeded, request_cost


def test_cost_from_tokens() -> None:
    assert request_cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert request_cost("gpt-4o", 0, 1_000_000) == pytest.approx(10.0)


def test_ceiling_refuses_after_spend() -> None:
    budget = Budget(0.01)
    budget.check()
    budget.record(0.011)
    with pytest.raises(BudgetExceeded):
        budget.check()
