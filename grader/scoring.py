"""Scoring arithmetic: leaf scores in, a scored tree out. Pure functions, no I/O.

Rules (the same everywhere):
- a parent's score is the weighted mean of its children that were scored;
- `not_run` and `error` children are left out of that mean, and a parent with no scored child is `not_run`;
- coverage is the share of the rubric's weight that was actually scored: each leaf's share of the whole
  is its weight over its siblings' total, times its parent's share.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from grader.model import Basis, Evidence, Score, ScoreStatus
from rubrics.model import Criterion, Rubric


class ScoredCriterion(msgspec.Struct, frozen=True, omit_defaults=True):
    """One node of a scored rubric tree, as it appears in report.json."""

    id: str
    path: str
    title: str
    weight: float
    status: ScoreStatus
    score: float | None
    explanation: str
    share: float
    """This node's share of the whole rubric's weight (0..1); the shares of all leaves add up to 1."""
    basis: list[Basis] = msgspec.field(default_factory=list)
    """Which kinds of evidence the score rests on (static, dynamic, judge, interview)."""
    check: str | None = None
    level: int | None = None
    """The score mapped to a level 0..3 with round(score * 3), for comparison with human labels."""
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    children: list[ScoredCriterion] = msgspec.field(default_factory=list)


class ScoredRubric(msgspec.Struct, frozen=True):
    """The whole tree with the overall score and coverage."""

    score: float | None
    coverage: float
    criteria: list[ScoredCriterion]


def weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    """Mean of (value, weight) pairs; None when there is nothing to average."""
    total_weight = sum(weight for _, weight in pairs)
    if total_weight <= 0:
        return None
    return sum(value * weight for value, weight in pairs) / total_weight


def score_level(score: float | None) -> int | None:
    """Map a 0..1 score to an ordinal level 0..3 (shared/notes/MEASURING-GRADERS.md)."""
    return None if score is None else round(score * 3)


def score_rubric(rubric: Rubric, leaf_scores: Mapping[str, Score]) -> ScoredRubric:
    """Score `rubric` from `leaf_scores`, keyed by each leaf's dotted path ("latency.p95").

    A leaf with no entry is `not_run` ("no check produced a score"): a missing score is never a zero.
    """
    criteria = _score_siblings(rubric.criteria, "", 1.0, leaf_scores)
    overall = weighted_mean([(node.score, node.weight) for node in criteria if node.score is not None])
    coverage = sum(_scored_share(node) for node in criteria)
    return ScoredRubric(score=overall, coverage=round(min(1.0, coverage), 6), criteria=criteria)


def _score_siblings(
    siblings: list[Criterion], prefix: str, parent_share: float, leaf_scores: Mapping[str, Score]
) -> list[ScoredCriterion]:
    total_weight = sum(node.weight for node in siblings)
    return [
        _score_node(node, f"{prefix}{node.id}", parent_share * node.weight / total_weight, leaf_scores)
        for node in siblings
    ]


def _score_node(node: Criterion, path: str, share: float, leaf_scores: Mapping[str, Score]) -> ScoredCriterion:
    if node.is_leaf:
        return _score_leaf(node, path, share, leaf_scores.get(path))
    children = _score_siblings(node.children, f"{path}.", share, leaf_scores)
    scored = [child for child in children if child.score is not None]
    value = weighted_mean([(child.score, child.weight) for child in scored if child.score is not None])
    basis = sorted({kind for child in scored for kind in child.basis})
    if value is None:
        explanation = "No sub-criterion could be scored."
    else:
        explanation = f"Weighted mean of {len(scored)} of {len(children)} sub-criteria."
    return ScoredCriterion(
        id=node.id,
        path=path,
        title=node.title,
        weight=node.weight,
        status="scored" if value is not None else "not_run",
        score=value,
        explanation=explanation,
        share=share,
        basis=basis,
        level=score_level(value),
        children=children,
    )


def _score_leaf(node: Criterion, path: str, share: float, result: Score | None) -> ScoredCriterion:
    if result is None:
        result = Score.not_run("No check produced a score for this criterion.")
    value = result.value if result.status == "scored" else None
    return ScoredCriterion(
        id=node.id,
        path=path,
        title=node.title,
        weight=node.weight,
        status=result.status,
        score=value,
        explanation=result.explanation,
        share=share,
        basis=[result.basis] if value is not None else [],
        check=f"{node.check.kind}:{node.check.name}" if node.check else None,
        level=score_level(value),
        evidence=list(result.evidence),
    )


def _scored_share(node: ScoredCriterion) -> float:
    if not node.children:
        return node.share if node.score is not None else 0.0
    return sum(_scored_share(child) for child in node.children)


def walk(criteria: list[ScoredCriterion], depth: int = 0) -> list[tuple[ScoredCriterion, int]]:
    """Every node of a scored tree with its depth (0 for top-level criteria), depth first."""
    found: list[tuple[ScoredCriterion, int]] = []
    for node in criteria:
        found.append((node, depth))
        found.extend(walk(node.children, depth + 1))
    return found
