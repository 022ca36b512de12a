"""Agreement metrics, checked against values worked out by hand and the properties the notes state."""

from __future__ import annotations

import random

import pytest

from grader.agreement import (
    Interval,
    Row,
    bootstrap_draws,
    largest_disagreements,
    measure_agreement,
    measure_with_intervals,
    percentile_interval,
    quadratic_weighted_kappa,
    spearman,
)


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


# --- intervals, base rates and disagreements (measure_with_intervals, largest_disagreements) -----------------------


def _noisy_rows(repositories: int, seed: int = 5) -> list[Row]:
    """Three criteria per repository; the grader is right about two times in three and otherwise one level off."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for number in range(repositories):
        for criterion in ("evals", "cost", "latency"):
            human = rng.randrange(4)
            grader = human if rng.random() < 0.66 else min(3, max(0, human + rng.choice([-1, 1])))
            rows.append((f"repo-{number:02}", criterion, human, grader))
    return rows


def test_the_bootstrap_is_deterministic_with_its_seed() -> None:
    rows = _noisy_rows(30)
    first = measure_with_intervals(rows, resamples=400, seed=3)
    assert measure_with_intervals(rows, resamples=400, seed=3) == first
    assert measure_with_intervals(list(reversed(rows)), resamples=400, seed=3) == first, "row order changed it"
    other = measure_with_intervals(rows, resamples=400, seed=4)
    assert other.pooled.qwk == first.pooled.qwk, "the point estimate does not depend on the seed"
    assert other.pooled.qwk_interval != first.pooled.qwk_interval, "another seed should draw other resamples"


def test_intervals_contain_their_point_estimates_on_a_reasonable_sample() -> None:
    report = measure_with_intervals(_noisy_rows(40), resamples=1000, seed=11)
    assert report.repositories == 40 and report.pairs == 120
    for found in [*report.criteria, report.pooled]:
        low, high = found.qwk_interval.low, found.qwk_interval.high
        assert low <= found.qwk <= high, f"{found.criterion}: {found.qwk} outside [{low}, {high}]"
        assert low < high, f"{found.criterion}: a noisy sample should give an interval with some width"
    assert report.spearman_totals is not None and report.spearman_interval is not None
    assert report.spearman_interval.low <= report.spearman_totals <= report.spearman_interval.high
    assert report.pooled.qwk_interval.high - report.pooled.qwk_interval.low < 0.3, "40 repositories should pin it"


def test_perfect_agreement_gives_one_with_a_degenerate_interval() -> None:
    rows: list[Row] = [(f"r{i}", c, (i + j) % 4, (i + j) % 4) for i in range(12) for j, c in enumerate("abc")]
    report = measure_with_intervals(rows, resamples=300, seed=1)
    for found in [*report.criteria, report.pooled]:
        assert found.qwk == 1.0 and found.qwk_interval == Interval(1.0, 1.0), found
        assert found.exact == found.within_one == 1.0
    assert report.spearman_totals == 1.0 and report.spearman_interval == Interval(1.0, 1.0)


def test_base_rates_n_and_confusion_count_each_side() -> None:
    rows: list[Row] = [("a", "x", 0, 0), ("b", "x", 0, 2), ("c", "x", 3, None), ("d", "x", 1, 1)]
    found = measure_with_intervals(rows, resamples=50).criteria[0]
    assert found.n == 4 and found.not_run_counted_as_zero == 1
    assert found.human_rates == [0.5, 0.25, 0.0, 0.25]
    assert found.grader_rates == [0.5, 0.25, 0.25, 0.0], "not run counts as level 0"
    assert found.confusion == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]


def test_spearman_is_undefined_rather_than_zero_for_a_single_repository() -> None:
    report = measure_with_intervals([("only", "x", 2, 1), ("only", "y", 0, 0)], resamples=50)
    assert report.spearman_totals is None and report.spearman_interval is None


def test_percentile_interval_interpolates_between_order_statistics() -> None:
    assert percentile_interval([float(v) for v in range(101)]) == Interval(2.5, 97.5)
    assert bootstrap_draws(5, 3, seed=9) == bootstrap_draws(5, 3, seed=9)
    assert all(len(draw) == 5 and set(draw) <= set(range(5)) for draw in bootstrap_draws(5, 20, seed=9))


def test_disagreements_come_largest_gap_first_then_heaviest_criterion() -> None:
    rows: list[Row] = [
        ("a", "light", 3, 2),
        ("a", "heavy", 3, 2),
        ("b", "light", 0, 3),
        ("c", "heavy", 1, None),  # not run: a gap of 1 from level 0
        ("d", "heavy", 2, 2),  # agrees: never listed
        ("e", "light", 3, 1),
    ]
    worst = largest_disagreements(rows, {"heavy": 0.3, "light": 0.1})
    assert [(row[0], row[1]) for row in worst] == [
        ("b", "light"),
        ("e", "light"),
        ("a", "heavy"),
        ("c", "heavy"),
        ("a", "light"),
    ]
    many: list[Row] = [(f"r{i:02}", "x", 3, 0) for i in range(15)]
    assert len(largest_disagreements(many, {})) == 10
