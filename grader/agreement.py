"""Agreement between the grader and human labels (shared/notes/MEASURING-GRADERS.md): quadratic weighted kappa
first, then exact and within-one agreement, Spearman rank correlation of totals, and per-criterion confusion
matrices. Pure functions; levels are 0..3.

`measure_with_intervals` adds what an honest report needs beside the point figures: per criterion and pooled,
a bootstrap 95% interval (repositories resampled with replacement, seeded, percentile interval), each level's base
rate for the human and the grader, and n. Repositories, not rows, are resampled, because one repository's labels
are not independent of each other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import msgspec

LEVELS = 4
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 17
POOLED = "pooled"

Row = tuple[str, str, int, int | None]
"""(repository, criterion path, human level, grader level or None when not run — counted as 0)."""


class Agreement(msgspec.Struct, frozen=True):
    pairs: int
    qwk: float
    exact: float
    within_one: float
    spearman_totals: float
    not_run_counted_as_zero: int
    confusion: dict[str, list[list[int]]]
    """Per criterion: rows are human levels 0..3, columns the grader's."""


class Interval(msgspec.Struct, frozen=True):
    """A bootstrap percentile interval; `low == high` when every resample gave the same figure."""

    low: float
    high: float


class CriterionAgreement(msgspec.Struct, frozen=True):
    """Agreement on one criterion (or on every row pooled, `criterion == "pooled"`)."""

    criterion: str
    n: int
    qwk: float
    qwk_interval: Interval
    exact: float
    within_one: float
    confusion: list[list[int]]
    """Rows are human levels 0..3, columns the grader's."""
    human_rates: list[float]
    """The share of the human's labels at each level 0..3."""
    grader_rates: list[float]
    not_run_counted_as_zero: int


class AgreementReport(msgspec.Struct, frozen=True):
    repositories: int
    pairs: int
    criteria: list[CriterionAgreement]
    pooled: CriterionAgreement
    spearman_totals: float | None
    """None when it is undefined: fewer than two repositories, or every total tied on one side."""
    spearman_interval: Interval | None
    resamples: int
    seed: int
    confidence: float = 0.95


def quadratic_weighted_kappa(human: Sequence[int], predicted: Sequence[int], levels: int = LEVELS) -> float:
    """1 for perfect agreement, 0 for chance; a constant guess gives 0."""
    observed = [[0] * levels for _ in range(levels)]
    for h, p in zip(human, predicted, strict=True):
        observed[h][p] += 1
    return kappa_from_confusion(observed)


def kappa_from_confusion(observed: Sequence[Sequence[int]]) -> float:
    """Quadratic weighted kappa of a square confusion matrix (rows human, columns grader); 0 when it is empty."""
    levels = len(observed)
    n = sum(sum(row) for row in observed)
    if n == 0:
        return 0.0
    human_counts = [sum(row) for row in observed]
    predicted_counts = [sum(observed[i][j] for i in range(levels)) for j in range(levels)]
    numerator = denominator = 0.0
    for i in range(levels):
        for j in range(levels):
            weight = (i - j) ** 2 / (levels - 1) ** 2
            expected = human_counts[i] * predicted_counts[j] / n
            numerator += weight * observed[i][j]
            denominator += weight * expected
    return 1.0 - numerator / denominator if denominator else 1.0 if numerator == 0 else 0.0


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 2:
        return 0.0
    ranks_a, ranks_b = _ranks(a), _ranks(b)
    mean_a, mean_b = sum(ranks_a) / len(a), sum(ranks_b) / len(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(ranks_a, ranks_b, strict=True))
    var_a = sum((x - mean_a) ** 2 for x in ranks_a)
    var_b = sum((y - mean_b) ** 2 for y in ranks_b)
    return cov / (var_a * var_b) ** 0.5 if var_a and var_b else 0.0


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks, ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def measure_agreement(rows: list[Row]) -> Agreement:
    """rows: (repository, criterion path, human level, grader level or None when not run — counted as 0)."""
    human = [h for _, _, h, _ in rows]
    predicted = [p if p is not None else 0 for _, _, _, p in rows]
    confusion: dict[str, list[list[int]]] = {}
    for (_, criterion, h, _), p in zip(rows, predicted, strict=True):
        matrix = confusion.setdefault(criterion, [[0] * LEVELS for _ in range(LEVELS)])
        matrix[h][p] += 1
    totals = repository_totals(rows)
    n = len(rows) or 1
    return Agreement(
        pairs=len(rows),
        qwk=round(quadratic_weighted_kappa(human, predicted), 4),
        exact=round(sum(h == p for h, p in zip(human, predicted, strict=True)) / n, 4),
        within_one=round(sum(abs(h - p) <= 1 for h, p in zip(human, predicted, strict=True)) / n, 4),
        spearman_totals=round(spearman([t[0] for t in totals.values()], [t[1] for t in totals.values()]), 4),
        not_run_counted_as_zero=sum(1 for row in rows if row[3] is None),
        confusion=confusion,
    )


def repository_totals(rows: Sequence[Row]) -> dict[str, tuple[int, int]]:
    """Each repository's (human total, grader total) over its rows, not-run counted as 0."""
    totals: dict[str, tuple[int, int]] = {}
    for repo, _, human, grader in rows:
        h, p = totals.get(repo, (0, 0))
        totals[repo] = (h + human, p + (grader or 0))
    return totals


def bootstrap_draws(count: int, resamples: int, seed: int) -> list[list[int]]:
    """`resamples` lists of `count` indices into 0..count-1, drawn with replacement; the same for the same seed."""
    if count == 0:
        return []
    rng = random.Random(seed)  # noqa: S311 - a reproducible statistical resample, not a secret
    population = range(count)
    return [rng.choices(population, k=count) for _ in range(resamples)]


def percentile_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The central `confidence` share of `values` (linear interpolation between order statistics)."""
    if not values:
        return Interval(low=0.0, high=0.0)
    ordered = sorted(values)
    tail = (1 - confidence) / 2
    return Interval(low=round(_quantile(ordered, tail), 4), high=round(_quantile(ordered, 1 - tail), 4))


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def measure_with_intervals(
    rows: Sequence[Row],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> AgreementReport:
    """Per criterion and pooled agreement with bootstrap intervals, and Spearman of totals with its interval.

    Every statistic is computed on the same resamples of repositories (sorted by name first, so the row order
    does not change the result)."""
    repos = sorted({row[0] for row in rows})
    index = {repo: i for i, repo in enumerate(repos)}
    draws = bootstrap_draws(len(repos), resamples, seed)
    pairs_by_criterion: dict[str, list[list[tuple[int, int]]]] = {}
    for repo, criterion, human, grader in rows:
        per_repo = pairs_by_criterion.setdefault(criterion, [[] for _ in repos])
        per_repo[index[repo]].append((human, grader or 0))
    pooled_pairs = [
        [pair for per_repo in pairs_by_criterion.values() for pair in per_repo[i]] for i in range(len(repos))
    ]

    def summarise(criterion: str, selected: Sequence[Row], per_repo: list[list[tuple[int, int]]]) -> CriterionAgreement:
        resampled = [kappa_from_confusion(_confusion(per_repo, draw)) for draw in draws]
        return _criterion_agreement(criterion, selected, percentile_interval(resampled, confidence))

    criteria = [
        summarise(criterion, [row for row in rows if row[1] == criterion], per_repo)
        for criterion, per_repo in sorted(pairs_by_criterion.items())
    ]
    totals = repository_totals(rows)
    human_totals = [totals[repo][0] for repo in repos]
    grader_totals = [totals[repo][1] for repo in repos]
    spearman_resampled = _defined(
        lambda draw: _spearman_or_none([human_totals[i] for i in draw], [grader_totals[i] for i in draw]), draws
    )
    return AgreementReport(
        repositories=len(repos),
        pairs=len(rows),
        criteria=criteria,
        pooled=summarise(POOLED, rows, pooled_pairs),
        spearman_totals=_round(_spearman_or_none(human_totals, grader_totals)),
        spearman_interval=percentile_interval(spearman_resampled, confidence) if spearman_resampled else None,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


def _confusion(per_repo: Sequence[Sequence[tuple[int, int]]], draw: Sequence[int]) -> list[list[int]]:
    matrix = [[0] * LEVELS for _ in range(LEVELS)]
    for i in draw:
        for human, grader in per_repo[i]:
            matrix[human][grader] += 1
    return matrix


def _criterion_agreement(criterion: str, rows: Sequence[Row], qwk_interval: Interval) -> CriterionAgreement:
    human = [row[2] for row in rows]
    grader = [row[3] or 0 for row in rows]
    matrix = [[0] * LEVELS for _ in range(LEVELS)]
    for h, p in zip(human, grader, strict=True):
        matrix[h][p] += 1
    n = len(rows)
    share = 1 / n if n else 0.0
    return CriterionAgreement(
        criterion=criterion,
        n=n,
        qwk=round(kappa_from_confusion(matrix), 4),
        qwk_interval=qwk_interval,
        exact=round(sum(h == p for h, p in zip(human, grader, strict=True)) * share, 4),
        within_one=round(sum(abs(h - p) <= 1 for h, p in zip(human, grader, strict=True)) * share, 4),
        confusion=matrix,
        human_rates=[round(human.count(level) * share, 4) for level in range(LEVELS)],
        grader_rates=[round(grader.count(level) * share, 4) for level in range(LEVELS)],
        not_run_counted_as_zero=sum(1 for row in rows if row[3] is None),
    )


def _spearman_or_none(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho, or None when it is undefined (a resample whose totals are all tied on one side)."""
    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return spearman(a, b)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _defined(statistic: Callable[[list[int]], float | None], draws: Sequence[list[int]]) -> list[float]:
    values = (statistic(draw) for draw in draws)
    return [value for value in values if value is not None]


def largest_disagreements(rows: Sequence[Row], weight: Mapping[str, float], limit: int = 10) -> list[Row]:
    """The `limit` rows where human and grader differ most: |human - grader| first, then the criterion's weight
    (its share of the rubric), then repository and criterion so that the order is stable."""
    differing = [row for row in rows if row[2] != (row[3] or 0)]
    differing.sort(key=lambda row: (-abs(row[2] - (row[3] or 0)), -weight.get(row[1], 0.0), row[0], row[1]))
    return differing[:limit]
