"""The bad-input probe in the real Docker sandbox, on fixture apps a candidate could have written: the product's
sample (validates its question), the middling standard-library service (answers anything) and StudyBuddy
(`tests/fixtures/apps/brittle`, found with no manifest, crashes on what it did not expect). One grading each, with
a rubric that names only this check, shared by the module."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.dynamic import DynamicOptions
from grader.pipeline import GradeOptions, grade
from grader.report.model import GradingReport
from grader.report.render_html import render_html
from rubrics.loader import load_rubric_text
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import make_app_repo

pytestmark = pytest.mark.docker

RUBRIC = """
id: robustness
version: 1
title: Robustness to bad input
criteria:
  - id: bad_input
    title: Bad questions get a clean refusal
    weight: 1
    check: {kind: dynamic, name: bad_input_rejected, params: {oversized_chars: 50000}}
"""
APPS = ("well_built", "middling", "brittle")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradingReport]:
    options = GradeOptions(
        allow_local=True,
        dynamic=DynamicOptions(
            sandbox=SandboxSettings(image_source="offline"),
            cache_dir=tmp_path_factory.mktemp("cache"),
            time_scale=0.02,
        ),
    )
    rubric = load_rubric_text(RUBRIC)
    graded = {}
    for name in APPS:
        repo = make_app_repo(name, tmp_path_factory.mktemp(name) / "repo")
        graded[name] = grade(str(repo), rubric, tmp_path_factory.mktemp(f"{name}-scratch"), options)
    return graded


def _statuses(report: GradingReport) -> dict[str, int]:
    assert report.dynamic is not None
    probe = report.dynamic.probe("bad_input_rejected")
    assert probe is not None, report.dynamic
    return {exchange.case: exchange.status for exchange in probe.exchanges}


def test_the_app_that_validates_its_question_refuses_each_bad_one_with_a_4xx(
    reports: dict[str, GradingReport],
) -> None:
    report = reports["well_built"]
    assert _statuses(report) == {"empty": 422, "blank": 422, "oversized": 422}
    assert report.score == 1.0


def test_the_app_that_answers_anything_gets_half(reports: dict[str, GradingReport]) -> None:
    report = reports["middling"]
    assert set(_statuses(report).values()) == {200}
    assert report.score == 0.5


def test_the_app_that_crashes_on_bad_input_scores_0_with_its_500s_in_the_report(
    reports: dict[str, GradingReport], tmp_path: Path
) -> None:
    report = reports["brittle"]
    assert report.dynamic is not None and report.dynamic.interface.query_path == "/chat"  # found without viva.toml
    assert set(_statuses(report).values()) == {500}
    assert report.score == 0.0
    (leaf,) = report.criteria
    assert "a server error" in leaf.explanation
    html = render_html(report)
    assert "Probe <code>bad_input_rejected</code>" in html and "a question of 50,000 characters" in html
