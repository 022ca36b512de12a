"""A candidate's eval results are self-reported: these regression tests plant the classic forgeries in a pytest
suite's conftest.py and show the cross-checks catch each one (real Docker, real pytest in the sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.dynamic import DynamicOptions, run_dynamic
from grader.dynamic.model import EvalsResult
from grader.model import Score
from grader.profile import build_profile
from rubrics.catalogue import EvalSuiteRunsParams
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import commit_all, write

pytestmark = pytest.mark.docker

CASES = """
import pytest

@pytest.mark.parametrize("n", list(range(10)))
def test_case(n):
    assert n % 3 != 0  # n = 0, 3, 6, 9 fail: 6 of 10 pass
"""
FORGES_RESULTS = """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"  # every failure becomes a pass
"""
EXITS_EARLY = """
import os

def pytest_runtest_setup(item):
    if item.nodeid.endswith("[5]"):
        os._exit(0)  # leave with success before the failures to come
"""
FORGES_EXIT_STATUS = """
def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 0
"""
LEAF = [("evals.runs", "eval_suite_runs", EvalSuiteRunsParams(runs=2, minimum_cases=10))]


def grade_evals(tmp_path: Path, conftest: str | None) -> tuple[Score, EvalsResult]:
    repo = tmp_path / "repo"
    files = {"requirements.txt": "pytest==8.3.4\n", "evals/test_cases.py": CASES}
    if conftest is not None:
        files["evals/conftest.py"] = conftest
    write(repo, files)
    commit_all(repo)
    options = DynamicOptions(
        sandbox=SandboxSettings(image_source="offline"), cache_dir=tmp_path / "cache", time_scale=0
    )
    scores, run = run_dynamic(repo, build_profile(repo), LEAF, tmp_path / "scratch", options)
    assert run is not None and run.evals is not None
    return scores["evals.runs"], run.evals


def test_an_honest_suite_is_counted_as_it_is(tmp_path: Path) -> None:
    score, evals = grade_evals(tmp_path, None)
    assert evals.collected == 10 and evals.reproducible and not evals.problems
    assert [(run.passed, run.failed) for run in evals.runs] == [(6, 4), (6, 4)]
    assert score.value == pytest.approx(0.6)


def test_regression_a_conftest_that_forges_results_is_caught(tmp_path: Path) -> None:
    score, evals = grade_evals(tmp_path, FORGES_RESULTS)
    assert all(len(run.forged) == 4 for run in evals.runs)
    assert any("rewritten by a hook" in problem for problem in evals.problems)
    assert score.value == 0 and "cannot be trusted" in score.explanation


def test_regression_a_conftest_that_exits_early_is_caught(tmp_path: Path) -> None:
    score, evals = grade_evals(tmp_path, EXITS_EARLY)
    assert evals.collected == 10  # the separate collection run saw every case
    assert all(run.exit_code == 0 and not run.finished for run in evals.runs)
    assert any("early exit" in problem for problem in evals.problems)
    assert score.value == 0


def test_regression_a_conftest_that_forges_the_exit_status_is_caught(tmp_path: Path) -> None:
    score, evals = grade_evals(tmp_path, FORGES_EXIT_STATUS)
    assert all(run.exit_code == 0 and run.failed == 4 for run in evals.runs)
    assert any("exit status is forged" in problem for problem in evals.problems)
    assert score.value == 0


def test_an_unreachable_package_index_is_vivas_failure_not_the_candidates(tmp_path: Path) -> None:
    """The same missing wheel means two things: with the index reachable the project does not build (0, with the
    install log); with no index at all Viva could not try (not_run, with the reason). Traffic stays on loopback."""
    repo = tmp_path / "repo"
    write(repo, {"requirements.txt": "viva-no-such-package-xyz==0.0.1\n", "evals/test_cases.py": CASES})
    commit_all(repo)
    settings = SandboxSettings(image_source="offline")
    dead_index = DynamicOptions(sandbox=settings, cache_dir=tmp_path / "a", index_url="http://127.0.0.1:9/simple")
    scores, run = run_dynamic(repo, build_profile(repo), LEAF, tmp_path / "s1", dead_index)
    assert run is None and scores["evals.runs"].status == "not_run"
    assert "package index http://127.0.0.1:9/simple is not reachable" in scores["evals.runs"].explanation

    live_index = DynamicOptions(sandbox=settings, cache_dir=tmp_path / "b", time_scale=0)
    scores, run = run_dynamic(repo, build_profile(repo), LEAF, tmp_path / "s2", live_index)
    assert run is not None and not run.sandbox.install_ok and run.sandbox.missing_wheels
    assert scores["evals.runs"].status == "scored" and scores["evals.runs"].value == 0
