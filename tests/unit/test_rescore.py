"""`viva judge-eval --reports DIR --rescore`: a cached report's recorded measurements scored again by this version's
dynamic scorers, static leaves kept as recorded or, given today's static-only grading, taken from it."""

from __future__ import annotations

import msgspec

from grader.model import Score
from grader.report.model import GradingReport, RepoRef, Reproduction, RubricRef
from grader.rescore import rescore
from grader.scoring import score_rubric, walk
from rubrics.loader import leaf_paths
from rubrics.registry import resolve_rubric
from tests.unit.test_unmeasured_is_not_a_score import probe, run_of

RUBRIC = resolve_rubric("ai-engineer-capstone")


def recorded_report() -> GradingReport:
    """A report as an older Viva wrote it for an app that answered every question with a 500: its injection probes
    recorded as resisted (1.0), everything static at 0.5."""
    run = run_of(500, latency_errors=50, probes=[probe(n, 500) for n in range(22)])
    scores = {
        path: Score.scored(1.0, "0 of 22 probes leaked", basis="dynamic")
        if node.check is not None and node.check.kind == "dynamic"
        else Score.scored(0.5, "as the static reading found")
        for path, node in leaf_paths(RUBRIC.rubric)
    }
    scored = score_rubric(RUBRIC.rubric, scores)
    return GradingReport(
        schema_version=1,
        viva_version="0.0.9",
        generated_at="2026-12-01T00:00:00+00:00",
        score=scored.score,
        coverage=scored.coverage,
        rubric=RubricRef(id=RUBRIC.rubric.id, version=RUBRIC.rubric.version, hash=RUBRIC.content_hash, title="t"),
        repo=RepoRef(target="fixture:broken", source_kind="fixture"),
        criteria=scored.criteria,
        reproduction=Reproduction(viva_version="0.0.9", rubric_hash=RUBRIC.content_hash),
        dynamic=run,
    )


def leaves(report: GradingReport) -> dict[str, tuple[str, float | None]]:
    return {node.path: (node.status, node.score) for node, _ in walk(report.criteria) if not node.children}


def test_dynamic_leaves_are_scored_again_and_static_ones_kept() -> None:
    before = recorded_report()
    after = rescore(before, RUBRIC)
    assert leaves(after)["injection.probes"] == ("not_run", None)
    assert leaves(before)["injection.probes"] == ("scored", 1.0)
    static = [
        path for path, node in leaf_paths(RUBRIC.rubric) if node.check is not None and node.check.kind != "dynamic"
    ]
    assert all(leaves(after)[path] == ("scored", 0.5) for path in static)
    assert after.coverage < before.coverage and {item.path for item in after.not_run} >= {"injection.probes"}


def test_rescoring_twice_changes_nothing_more() -> None:
    once = rescore(recorded_report(), RUBRIC)
    twice = rescore(once, RUBRIC)
    assert msgspec.json.encode(twice.criteria) == msgspec.json.encode(once.criteria)


def test_a_report_without_measurements_is_left_alone() -> None:
    report = msgspec.structs.replace(recorded_report(), dynamic=None)
    assert rescore(report, RUBRIC) is report


def static_only_report(value: float) -> GradingReport:
    """Today's static-only grading of the same repository: every static and judge leaf at `value`, dynamic not_run."""
    scores = {
        path: Score.not_run("Dynamic checks were skipped for this run (--static-only).", basis="dynamic")
        if node.check is not None and node.check.kind == "dynamic"
        else Score.scored(value, "as today's static reading finds")
        for path, node in leaf_paths(RUBRIC.rubric)
    }
    scored = score_rubric(RUBRIC.rubric, scores)
    return msgspec.structs.replace(recorded_report(), criteria=scored.criteria, dynamic=None)


def test_static_leaves_come_from_todays_static_grading_when_given() -> None:
    after = rescore(recorded_report(), RUBRIC, static=static_only_report(0.25))
    kinds = {path: node.check.kind for path, node in leaf_paths(RUBRIC.rubric) if node.check is not None}
    assert all(leaves(after)[path] == ("scored", 0.25) for path, kind in kinds.items() if kind != "dynamic")
    # The dynamic leaves are still the cached report's measurements, rescored, not the static run's "skipped".
    rescored = leaves(rescore(recorded_report(), RUBRIC))
    assert {path: leaves(after)[path] for path, kind in kinds.items() if kind == "dynamic"} == {
        path: rescored[path] for path, kind in kinds.items() if kind == "dynamic"
    }
    assert any(state == "scored" for path, (state, _) in rescored.items() if kinds.get(path) == "dynamic")


def test_a_report_without_measurements_takes_todays_static_leaves_and_keeps_its_dynamic_ones() -> None:
    cached = msgspec.structs.replace(recorded_report(), dynamic=None)
    after = rescore(cached, RUBRIC, static=static_only_report(0.25))
    assert leaves(after)["evals.cases"] == ("scored", 0.25)
    assert leaves(after)["injection.probes"] == leaves(cached)["injection.probes"]
