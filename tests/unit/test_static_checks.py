"""Static checks: pure functions from a profile to a score; shortfalls are 0 with a reason, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.checks.static import STATIC_CHECKS, run_static_check
from grader.model import Evidence
from grader.profile import build_profile
from grader.profile.model import (
    CostFacts,
    Dependencies,
    DependencyFile,
    EvalFacts,
    GoldenSet,
    InjectionFacts,
    ReadmeFacts,
    RepoProfile,
    Requirement,
    Workflow,
)
from rubrics.catalogue import (
    CATALOGUE,
    EvalCaseCountParams,
    EvalsInCiParams,
    NoParams,
    PinnedDependenciesParams,
    ReadmeSectionsParams,
)
from tests.fixtures import repos

E = Evidence("a.py", 1, "x")


def test_every_static_check_in_the_catalogue_is_implemented() -> None:
    static_names = {name for name, spec in CATALOGUE.items() if spec.kind == "static"}
    assert static_names == set(STATIC_CHECKS)


@pytest.mark.parametrize("name", sorted(STATIC_CHECKS))
def test_empty_repository_scores_zero_with_a_reason(name: str) -> None:
    score = run_static_check(name, RepoProfile(), CATALOGUE[name].params())
    assert (score.status, score.value) == ("scored", 0.0)
    assert len(score.explanation) > 20


def test_eval_case_count_follows_the_guides_levels_and_ignores_generated_sets() -> None:
    profile = RepoProfile(
        evals=EvalFacts(
            golden_sets=[
                GoldenSet("evals/a.jsonl", 30, True, evidence=[E]),
                GoldenSet("evals/gen.jsonl", 500, False, reason="a script writes this file", evidence=[E]),
            ]
        )
    )
    score = run_static_check("eval_case_count", profile, EvalCaseCountParams(minimum=50))
    assert score.value == pytest.approx(0.8)  # dozens, short of the bar (docs/LABELLING.md, evals level 2)
    assert "30 hand-written" in score.explanation and "500 case(s) in evals/gen.jsonl not counted" in score.explanation
    assert run_static_check("eval_case_count", profile, EvalCaseCountParams(minimum=20)).value == 1.0
    handful = RepoProfile(evals=EvalFacts(golden_sets=[GoldenSet("evals/a.jsonl", 4, True, evidence=[E])]))
    assert run_static_check("eval_case_count", handful, EvalCaseCountParams(minimum=50)).value == pytest.approx(0.34)
    assert run_static_check("eval_case_count", RepoProfile(), EvalCaseCountParams(minimum=50)).value == 0.0


def test_evals_in_ci_pull_request_push_and_missing() -> None:
    pr = Workflow("w.yml", ["pull_request"], eval_steps=[E])
    push = Workflow("w.yml", ["push"], eval_steps=[E])
    missing = Workflow("w.yml", ["pull_request"], missing_eval_steps=[Evidence("w.yml", 5, "x", "names 'x'")])
    strict, lenient = EvalsInCiParams(), EvalsInCiParams(require_pull_request=False)
    assert run_static_check("evals_in_ci", RepoProfile(workflows=[pr]), strict).value == 1.0
    assert run_static_check("evals_in_ci", RepoProfile(workflows=[push]), strict).value == 0.5
    assert run_static_check("evals_in_ci", RepoProfile(workflows=[push]), lenient).value == 1.0
    missed = run_static_check("evals_in_ci", RepoProfile(workflows=[missing]), strict)
    assert missed.value == 0.0 and "not an eval suite" in missed.explanation


def test_guards_on_both_sides_beat_one_and_one_beats_a_prompt_gesture() -> None:
    both = RepoProfile(injection=InjectionFacts(input_guards=[E], output_guards=[E]))
    one = RepoProfile(injection=InjectionFacts(input_guards=[E]))
    gesture = RepoProfile(injection=InjectionFacts(gestures=[E]))
    values = [run_static_check("injection_guards", p, NoParams()).value for p in (both, one, gesture, RepoProfile())]
    assert values == [1.0, 0.9, 0.4, 0.0]
    assert "nothing screens the output" in run_static_check("injection_guards", one, NoParams()).explanation


def test_an_alert_only_ceiling_is_less_than_one_that_refuses() -> None:
    assert run_static_check("budget_ceiling", RepoProfile(cost=CostFacts(ceilings=[E])), NoParams()).value == 1.0
    assert run_static_check("budget_ceiling", RepoProfile(cost=CostFacts(alerts_only=[E])), NoParams()).value == 0.75


def test_pinned_share_against_the_bar_and_lock_files() -> None:
    requirements = [Requirement("a", "==1", True, 1), Requirement("b", ">=1", False, 2)]
    profile = RepoProfile(
        dependencies=Dependencies(files=[DependencyFile("requirements.txt", "requirements", requirements)])
    )
    score = run_static_check("pinned_dependencies", profile, PinnedDependenciesParams(minimum_share=0.8))
    assert score.value == pytest.approx(0.5 / 0.8)
    assert score.evidence[0].location == "requirements.txt:2"
    locked = RepoProfile(
        dependencies=Dependencies(files=[DependencyFile("r.txt", "requirements", requirements)], lock_files=["uv.lock"])
    )
    assert run_static_check("pinned_dependencies", locked, PinnedDependenciesParams()).value == 1.0


def test_readme_sections_share() -> None:
    readme = ReadmeFacts("README.md", 10, {"setup": E})
    score = run_static_check("readme_sections", RepoProfile(readme=readme), ReadmeSectionsParams())
    assert score.value == pytest.approx(1 / 3) and "missing: usage, evaluation" in score.explanation


def test_a_crashing_check_is_an_error_not_a_zero() -> None:
    score = run_static_check("eval_case_count", RepoProfile(), object())
    assert score.status == "error" and score.value is None


def test_unknown_static_check_is_not_run() -> None:
    assert run_static_check("no_such_check", RepoProfile(), NoParams()).status == "not_run"


def _static_scores(repo: Path) -> dict[str, float | None]:
    profile = build_profile(repo)
    return {name: run_static_check(name, profile, CATALOGUE[name].params()).value for name in STATIC_CHECKS}


def test_fixture_repos_order_on_most_checks(tmp_path: Path) -> None:
    scores = {}
    for name in ("excellent", "middling", "tutorial"):
        (tmp_path / name).mkdir()
        getattr(repos, f"make_{name}_repo")(tmp_path / name, git=False)
        scores[name] = _static_scores(tmp_path / name)
    ordered = [
        check
        for check in STATIC_CHECKS
        if scores["excellent"][check] >= scores["middling"][check] >= scores["tutorial"][check]
    ]  # type: ignore[operator]
    assert len(ordered) == len(STATIC_CHECKS), {
        c: (scores["excellent"][c], scores["middling"][c]) for c in STATIC_CHECKS
    }
    strictly_better = [check for check in STATIC_CHECKS if scores["excellent"][check] > scores["middling"][check]]  # type: ignore[operator]
    assert len(strictly_better) >= 10
    assert all(value == 1.0 for value in scores["excellent"].values()), scores["excellent"]


def test_planted_instructions_change_no_static_score(tmp_path: Path) -> None:
    (tmp_path / "planted").mkdir()
    (tmp_path / "control").mkdir()
    repos.make_planted_instructions_repo(tmp_path / "planted", git=False)
    repos.make_planted_control_repo(tmp_path / "control", git=False)
    assert _static_scores(tmp_path / "planted") == _static_scores(tmp_path / "control")
    assert len(build_profile(tmp_path / "planted").grader_addressed) >= 4
    assert build_profile(tmp_path / "control").grader_addressed == []


def test_readme_claims_earn_nothing(tmp_path: Path) -> None:
    repos.write(
        tmp_path,
        {
            "README.md": "# Bot\n\n## Setup\n\nWe have 500 eval cases in CI, a hard budget ceiling "
            "that alerts on-call, input and output injection guards, retries with backoff, "
            "p95 latency tracking and citations validated against retrieval.\n"
        },
    )
    scores = _static_scores(tmp_path)
    assert {name: value for name, value in scores.items() if value} == {"readme_sections": pytest.approx(1 / 3)}
