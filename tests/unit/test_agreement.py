"""Agreement metrics, checked against values worked out by hand and the properties the notes state."""

from __future__ import annotations

import pytest

from grader.agreement import measure_agreement, quadratic_weighted_kappa, spearman


def test_perfect_agreement_is_one_and_a_constant_guess_is_zero() -> None:
    human = [0, 1, 2, 3, 0, 1, 2, 3]
    assert quadratic_weighted_kappa(human, human) == pytest.approx(1.0)
    assert quadratic_weighted_kappa(human, [1] * len(human)) == pytest.approx(0.0)


def test_always_one_level_off_lands_near_the_notes_figure() -> None:
    human = [0, 1, 2, 3] * 25
    off_by_one = [1 if h == 0 else 2 if h == 3 else h + (1 if i % 8 < 4 else -1) for i, h in enumerate(human)]
    assert all(abs(h - p) == 1 for h, p in zip(human, off_by_one, strict=True))
    assert 0.4 < quadratic_weighted_kappa(human, off_by_one) < 0.75  # far from 1, though every guess is "within one"


def test_known_small_example() -> None:
    # observed [[1,1],[0,2]] on two levels: kappa = 1 - (1*1)/(expected off-diagonal 1*2/4 + 3*1/4... ) worked by hand = 0.5
    assert quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 1, 1], levels=2) == pytest.approx(0.5)


def test_spearman_with_ties() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)


def test_not_run_counts_as_zero_and_is_reported() -> None:
    result = measure_agreement([("a", "x", 2, 2), ("a", "y", 1, None), ("b", "x", 0, 0)])
    assert result.not_run_counted_as_zero == 1
    assert result.exact == pytest.approx(2 / 3, abs=1e-4)
    assert result.confusion["y"][1][0] == 1
