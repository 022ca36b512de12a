"""A report's dynamic leaves scored again, from the measurements it recorded, by this version's scorers.

A full grading takes minutes a repository; the scorers that turn its measurements into scores are a few lines.
When only those lines change, `viva judge-eval --reports DIR --rescore` reads what every cached report measured
(report.dynamic) and scores it as today's code would, without running anything again. Static and judge leaves keep
what the report recorded (rescoring them would need the repository)."""

from __future__ import annotations

import msgspec

from grader.dynamic.scores import score_dynamic_leaves
from grader.model import Score
from grader.report.model import GradingReport, not_run_items
from grader.scoring import score_rubric, walk
from rubrics.loader import LoadedRubric, leaf_paths


def rescore(report: GradingReport, rubric: LoadedRubric) -> GradingReport:
    """`report` with its dynamic leaves rescored from report.dynamic (unchanged when it has no measurements)."""
    if report.dynamic is None:
        return report
    recorded = {node.path: node for node, _ in walk(report.criteria) if not node.children}
    scores: dict[str, Score] = {}
    dynamic = []
    for path, node in leaf_paths(rubric.rubric):
        if node.check is not None and node.check.kind == "dynamic":
            dynamic.append((path, node.check.name, rubric.params.get(path)))
        elif (kept := recorded.get(path)) is not None:
            scores[path] = Score(
                status=kept.status,
                explanation=kept.explanation,
                value=kept.score,
                basis=kept.basis[0] if kept.basis else "static",
                evidence=list(kept.evidence),
            )
    scores |= score_dynamic_leaves(dynamic, report.dynamic)
    scored = score_rubric(rubric.rubric, scores)
    return msgspec.structs.replace(
        report,
        score=scored.score,
        coverage=scored.coverage,
        criteria=scored.criteria,
        not_run=not_run_items(scored.criteria),
    )
