"""Agreement between the grader and human labels (shared/notes/MEASURING-GRADERS.md): quadratic weighted kappa
first, then exact and within-one agreement, Spearman rank correlation of totals, and per-criterion confusion
matrices. Pure functions; levels are 0..3."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

LEVELS = 4


class Agreement(msgspec.Struct, frozen=True):
    pairs: int
    qwk: float
    exact: float
    within_one: float
    spearman_totals: float
    not_run_counted_as_zero: int
    confusion: dict[str, list[list[int]]]
    """Per criterion: rows are human levels 0..3, columns the grader's."""


def quadratic_weighted_kappa(human: Sequence[int], predicted: Sequence[int], levels: int = LEVELS) -> float:
    """1 for perfect agreement, 0 for chance; a constant guess gives 0."""
    n = len(human)
    if n == 0:
        return 0.0
    observed = [[0.0] * levels for _ in range(levels)]
    for h, p in zip(human, predicted, strict=True):
        observed[h][p] += 1
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


def measure_agreement(rows: list[tuple[str, str, int, int | None]]) -> Agreement:
    """rows: (repository, criterion path, human level, grader level or None when not run — counted as 0)."""
    human = [h for _, _, h, _ in rows]
    predicted = [p if p is not None else 0 for _, _, _, p in rows]
    confusion: dict[str, list[list[int]]] = {}
    totals: dict[str, list[float]] = {}
    for (repo, criterion, h, _), p in zip(rows, predicted, strict=True):
        matrix = confusion.setdefault(criterion, [[0] * LEVELS for _ in range(LEVELS)])
        matrix[h][p] += 1
        pair = totals.setdefault(repo, [0.0, 0.0])
        pair[0] += h
        pair[1] += p
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
