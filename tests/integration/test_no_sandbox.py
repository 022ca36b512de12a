"""Without a Docker engine, grading still works: dynamic leaves are not_run with the reason, and the report's
coverage says how much of the rubric that leaves unscored."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.pipeline import GradeOptions, grade
from rubrics.registry import resolve_rubric
from tests.fixtures.repos import make_app_repo


def test_no_docker_engine_means_not_run_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")
    repo = make_app_repo("well_built", tmp_path / "repo")
    report = grade(
        str(repo), resolve_rubric("ai-engineer-capstone"), tmp_path / "scratch", GradeOptions(allow_local=True)
    )
    reasons = {item.path: item.reason for item in report.not_run}
    assert "latency.p95" in reasons and reasons["latency.p95"].startswith("No sandbox available on this host")
    assert report.dynamic is None and 0 < report.coverage < 1 and report.score is not None
