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
MEETS_THE_OTHER_RUN = """
import os, pathlib, time

def test_starts_from_a_clean_tree_and_meets_the_other_run():
    mark = pathlib.Path("left-by-a-run")
    assert not mark.exists(), "a previous run's file is in this tree"
    mark.write_text("x")
    meeting = pathlib.Path("/tmp/viva-eval-meeting")
    meeting.mkdir(exist_ok=True)
    (meeting / os.path.basename(os.getcwd())).write_text("here")
    deadline = time.monotonic() + 20
    while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(meeting.iterdir())) == 2, "the other run was not running meanwhile"
"""
LEAF = [("evals.runs", "eval_suite_runs", EvalSuiteRunsParams(runs=2, minimum_cases=10))]


def grade_evals(
    tmp_path: Path,
    conftest: str | None,
    *,
    cases: str = CASES,
    extra: dict[str, str] | None = None,
    settings: SandboxSettings | None = None,
) -> tuple[Score, EvalsResult]:
    repo = tmp_path / "repo"
    files = {"requirements.txt": "pytest==8.3.4\n", "evals/test_cases.py": cases, **(extra or {})}
    if conftest is not None:
        files["evals/conftest.py"] = conftest
    write(repo, files)
    commit_all(repo)
    options = DynamicOptions(
        sandbox=settings or SandboxSettings(image_source="offline"), cache_dir=tmp_path / "cache", time_scale=0
    )
    scores, run = run_dynamic(repo, build_profile(repo), LEAF, tmp_path / "scratch", options)
    assert run is not None and run.evals is not None
    return scores["evals.runs"], run.evals


def test_an_honest_suite_is_counted_as_it_is(tmp_path: Path) -> None:
    score, evals = grade_evals(tmp_path, None)
    assert evals.collected == 10 and evals.reproducible and not evals.problems
    assert [(run.passed, run.failed) for run in evals.runs] == [(6, 4), (6, 4)]
    assert score.value == pytest.approx(0.6)


def test_the_runs_go_at_once_each_in_a_clean_copy_of_the_tree(tmp_path: Path) -> None:
    """Each run's test passes only if its tree holds nothing a run wrote and the other run is running meanwhile:
    one after another in one tree, the first would wait 20 s in vain and the second would find the first's file."""
    _, evals = grade_evals(tmp_path, None, cases=MEETS_THE_OTHER_RUN)
    assert [(run.passed, run.failed) for run in evals.runs] == [(1, 0), (1, 0)], evals.runs
    assert evals.reproducible and not evals.problems and "at once" in evals.runs_note


def test_with_no_room_for_copies_the_runs_go_one_after_another_in_the_apps_tree(tmp_path: Path) -> None:
    """A 10 MB file in a 24 MB work disk: the app's tree fits, two more copies of it do not."""
    ballast = {"data/ballast.txt": "0123456789abcdef" * 655_360}
    small_disk = SandboxSettings(image_source="offline", disk_mb=24)
    _, evals = grade_evals(tmp_path, None, extra=ballast, settings=small_disk)
    assert "one after another" in evals.runs_note
    assert [(run.passed, run.failed) for run in evals.runs] == [(6, 4), (6, 4)]
    assert evals.collected == 10 and evals.reproducible and not evals.problems


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
