"""A report's dynamic leaves scored again, from the measurements it recorded, by this version's scorers.

A full grading takes minutes a repository; the scorers that turn its measurements into scores are a few lines.
When only those lines change, `viva judge-eval --reports DIR --rescore` reads what every cached report measured
(report.dynamic) and scores it as today's code would, without running anything again. Static and judge leaves keep
what the report recorded, unless a static-only report of the same repository graded by today's code is given: then
theirs are today's too (`viva judge-eval` grades the checkouts statically in the same run)."""

from __future__ import annotations

import msgspec

from grader.dynamic.scores import score_dynamic_leaves
from grader.model import Score
from grader.report.model import GradingReport, not_run_items
from grader.scoring import ScoredCriterion, score_rubric, walk
from rubrics.loader import LoadedRubric, leaf_paths


def rescore(report: GradingReport, rubric: LoadedRubric, static: GradingReport | None = None) -> GradingReport:
    """`report` with its dynamic leaves rescored from report.dynamic, and its static and judge leaves taken from
    `static` when given. Unchanged when there is nothing to rescore from."""
    if report.dynamic is None and static is None:
        return report
    source = static if static is not None else report
    recorded = {node.path: node for node, _ in walk(source.criteria) if not node.children}
    dynamic_recorded = {node.path: node for node, _ in walk(report.criteria) if not node.children}
    scores: dict[str, Score] = {}
    dynamic = []
    for path, node in leaf_paths(rubric.rubric):
        if node.check is not None and node.check.kind == "dynamic":
            dynamic.append((path, node.check.name, rubric.params.get(path)))
        elif (kept := recorded.get(path)) is not None:
            scores[path] = _score(kept)
    if report.dynamic is not None:
        scores |= score_dynamic_leaves(dynamic, report.dynamic)
    else:  # nothing was measured (a static-only report): its dynamic leaves stay as recorded
        scores |= {path: _score(kept) for path, _, _ in dynamic if (kept := dynamic_recorded.get(path)) is not None}
    scored = score_rubric(rubric.rubric, scores)
    return msgspec.structs.replace(
        report,
        score=scored.score,
        coverage=scored.coverage,
        criteria=scored.criteria,
        not_run=not_run_items(scored.criteria),
    )


def _score(node: ScoredCriterion) -> Score:
    """A recorded leaf as the Score it was scored from."""
    return Score(
        status=node.status,
        explanation=node.explanation,
        value=node.score,
        basis=node.basis[0] if node.basis else "static",
        evidence=list(node.evidence),
    )
