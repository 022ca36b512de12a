"""Scoring arithmetic: weighted means of scored children, not_run excluded, coverage as a share of weight."""

from __future__ import annotations

import pytest

from grader.model import Score
from grader.scoring import score_level, score_rubric, walk, weighted_mean
from rubrics.model import Check, Criterion, Rubric


def leaf(node_id: str, weight: float, kind: str = "static", name: str = "dockerfile") -> Criterion:
    return Criterion(id=node_id, title=node_id.title(), weight=weight, check=Check(kind=kind, name=name))  # type: ignore[arg-type]


def rubric(*criteria: Criterion) -> Rubric:
    return Rubric(id="r", version=1, title="R", criteria=list(criteria))


def test_weighted_mean_of_pairs() -> None:
    assert weighted_mean([(1.0, 3.0), (0.0, 1.0)]) == pytest.approx(0.75)
    assert weighted_mean([]) is None


def test_parent_is_weighted_mean_of_scored_children() -> None:
    tree = rubric(Criterion(id="a", title="A", weight=1, children=[leaf("x", 3), leaf("y", 1)]))
    result = score_rubric(tree, {"a.x": Score.scored(1.0, "ok"), "a.y": Score.scored(0.2, "weak")})
    assert result.score == pytest.approx(0.8)
    assert result.coverage == pytest.approx(1.0)
    assert result.criteria[0].score == pytest.approx(0.8)


def test_not_run_is_excluded_from_mean_and_lowers_coverage() -> None:
    tree = rubric(
        Criterion(id="a", title="A", weight=1, children=[leaf("x", 1), leaf("y", 1, "dynamic", "latency_p95")]),
        leaf("b", 2),
    )
    scores = {"a.x": Score.scored(0.5, "half"), "a.y": Score.not_run("no sandbox"), "b": Score.scored(1.0, "ok")}
    result = score_rubric(tree, scores)
    # a = 0.5 (only x scored); overall = (0.5*1 + 1.0*2) / 3
    assert result.criteria[0].score == pytest.approx(0.5)
    assert result.score == pytest.approx(2.5 / 3)
    # shares: a.x = 1/3 * 1/2, a.y = 1/6 (not run), b = 2/3
    assert result.coverage == pytest.approx(1 - 1 / 6)


def test_zero_is_a_score_not_an_absence() -> None:
    tree = rubric(leaf("x", 1), leaf("y", 1))
    result = score_rubric(tree, {"x": Score.scored(0.0, "absent"), "y": Score.scored(1.0, "ok")})
    assert result.score == pytest.approx(0.5)
    assert result.coverage == pytest.approx(1.0)


def test_missing_leaf_score_is_not_run_never_zero() -> None:
    tree = rubric(leaf("x", 1), leaf("y", 1))
    result = score_rubric(tree, {"x": Score.scored(0.4, "some")})
    y = result.criteria[1]
    assert (y.status, y.score) == ("not_run", None)
    assert result.score == pytest.approx(0.4)
    assert result.coverage == pytest.approx(0.5)


def test_parent_with_nothing_scored_is_not_run_and_everything_unscored_gives_none() -> None:
    tree = rubric(Criterion(id="a", title="A", weight=1, children=[leaf("x", 1)]))
    result = score_rubric(tree, {"a.x": Score.error("check crashed")})
    assert result.criteria[0].status == "not_run"
    assert result.score is None
    assert result.coverage == 0.0


def test_error_status_is_kept_on_the_leaf() -> None:
    result = score_rubric(rubric(leaf("x", 1)), {"x": Score.error("boom")})
    assert result.criteria[0].status == "error"
    assert result.criteria[0].explanation == "boom"


def test_basis_propagates_to_parents() -> None:
    tree = rubric(
        Criterion(id="a", title="A", weight=1, children=[leaf("x", 1), leaf("y", 1, "judge", "readme_clarity")])
    )
    scores = {"a.x": Score.scored(1.0, "ok"), "a.y": Score.scored(0.5, "ok", basis="judge")}
    assert score_rubric(tree, scores).criteria[0].basis == ["judge", "static"]


def test_shares_of_leaves_add_up_to_one() -> None:
    tree = rubric(
        Criterion(id="a", title="A", weight=2, children=[leaf("x", 1), leaf("y", 3)]),
        Criterion(id="b", title="B", weight=5, children=[leaf("z", 1)]),
    )
    result = score_rubric(tree, {})
    leaves = [node for node, _ in walk(result.criteria) if not node.children]
    assert sum(node.share for node in leaves) == pytest.approx(1.0)
    assert [node.path for node in leaves] == ["a.x", "a.y", "b.z"]


def test_score_clamped_and_level_mapping() -> None:
    assert Score.scored(1.7, "x").value == 1.0
    assert Score.scored(-1, "x").value == 0.0
    assert [score_level(v) for v in (0.0, 0.16, 0.17, 0.5, 0.84, 1.0, None)] == [0, 0, 1, 2, 3, 3, None]
