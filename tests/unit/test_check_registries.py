"""Every check kind's registry, the catalogue and docs/RUBRICS.md name the same checks; a crashing check is an
error score, never a failed grading."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from grader.checks.registry import CheckRegistry
from grader.checks.static import STATIC_CHECKS
from grader.dynamic.model import AppInterface, DynamicRun, GatewaySettings, SandboxInfo, ServiceResult
from grader.dynamic.scores import SCORERS, score_dynamic_leaves
from grader.judge import run as judge_run
from grader.judge.aspects import ASPECTS
from grader.profile import build_profile
from grader.scoring import score_rubric
from interviewer import plan as interview_plan
from interviewer.plan import INTERVIEW_CHECKS
from rubrics.catalogue import CATALOGUE, JudgeParams, LatencyParams, ServiceStartsParams, default_params
from rubrics.loader import load_rubric_text
from rubrics.model import CheckKind

RUBRICS_MD = Path(__file__).parents[2] / "docs" / "RUBRICS.md"
REGISTRIES: dict[CheckKind, CheckRegistry[Any]] = {
    "static": STATIC_CHECKS,
    "dynamic": SCORERS,
    "judge": ASPECTS,
    "interview": INTERVIEW_CHECKS,
}
KINDS: list[CheckKind] = ["static", "dynamic", "judge", "interview"]


def _documented_checks() -> dict[str, dict[str, str]]:
    """{kind: {check name: its parameters cell}} from the tables under "### <Kind> checks" in docs/RUBRICS.md."""
    tables: dict[str, dict[str, str]] = {}
    kind = None
    for line in RUBRICS_MD.read_text().splitlines():
        heading = re.match(r"### (\w+) checks", line)
        if heading:
            kind = heading[1].lower()
            tables[kind] = {}
        row = re.match(r"\| `(\w+)` \| [^|]+ \| ([^|]+) \|$", line)
        if kind is not None and row:
            tables[kind][row[1]] = row[2].strip()
    return tables


def _catalogue_names(kind: CheckKind) -> set[str]:
    return {name for name, spec in CATALOGUE.items() if spec.kind == kind}


def _documented_defaults(name: str) -> str:
    defaults = CATALOGUE[name].params()
    fields = msgspec.structs.fields(defaults)
    shown = [f"`{field.name}` = `{msgspec.json.encode(getattr(defaults, field.name)).decode()}`" for field in fields]
    return ", ".join(shown) or "none"


@pytest.mark.parametrize("kind", KINDS)
def test_catalogue_registry_and_docs_name_the_same_checks(kind: CheckKind) -> None:
    catalogue = _catalogue_names(kind)
    registered = set(REGISTRIES[kind])
    documented = set(_documented_checks().get(kind, {}))
    assert registered == catalogue, f"{kind}: registered {sorted(registered)}, catalogued {sorted(catalogue)}"
    assert documented == catalogue, (
        f"{kind}: docs/RUBRICS.md lists {sorted(documented)}, catalogued {sorted(catalogue)}"
    )
    assert REGISTRIES[kind].kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_docs_show_each_checks_catalogue_defaults(kind: CheckKind) -> None:
    documented = _documented_checks().get(kind, {})
    wrong = {name: cell for name, cell in documented.items() if cell != _documented_defaults(name)}
    assert not wrong, f"docs/RUBRICS.md parameters differ from the catalogue's: {wrong}"


def test_default_params_come_from_the_catalogue() -> None:
    defaults = default_params("dynamic")
    assert set(defaults) == _catalogue_names("dynamic")
    assert defaults["latency_p95"] == LatencyParams()


def test_a_registry_refuses_a_name_the_catalogue_lacks_a_wrong_kind_and_a_second_entry() -> None:
    registry: CheckRegistry[int] = CheckRegistry("static")
    registry.add("dockerfile", 1)
    for name in ("no_such_check", "latency_p95", "dockerfile"):
        with pytest.raises(ValueError, match=name):
            registry.add(name, 2)


def _measured_run() -> DynamicRun:
    return DynamicRun(
        sandbox=SandboxInfo(base_image="viva-base:offline"),
        gateway=GatewaySettings("offline", 0.4, 80.0, 0.0, 1.0),
        interface=AppInterface(query_path="/ask", budget_env="BUDGET"),
        service=ServiceResult(started=True, ready_seconds=1.0, first_query_status=200),
    )


RUBRIC = """
id: crash
version: 1
title: A scorer crashes
criteria:
  - {id: starts, title: Starts, weight: 1, check: {kind: dynamic, name: service_starts}}
  - {id: p95, title: p95, weight: 1, check: {kind: dynamic, name: latency_p95}}
"""


def test_a_dynamic_scorer_that_raises_is_an_error_score_and_the_grading_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_scorer(params: Any, run: DynamicRun) -> Any:
        raise ZeroDivisionError("no requests to divide by")

    monkeypatch.setitem(SCORERS, "latency_p95", broken_scorer)
    leaves = [("starts", "service_starts", ServiceStartsParams()), ("p95", "latency_p95", LatencyParams())]
    scores = score_dynamic_leaves(leaves, _measured_run())
    crashed = scores["p95"]
    assert crashed.status == "error" and crashed.value is None and crashed.basis == "dynamic", crashed
    assert "latency_p95" in crashed.explanation and "ZeroDivisionError: no requests" in crashed.explanation
    assert scores["starts"].status == "scored" and scores["starts"].value == 1.0, scores["starts"]
    scored = score_rubric(load_rubric_text(RUBRIC).rubric, scores)
    assert scored.score == 1.0 and scored.coverage == 0.5, f"expected the crash left out of the mean, got {scored}"


def test_a_judge_that_raises_is_an_error_score(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def unreadable(root: Path) -> Any:
        raise PermissionError("README.md is unreadable")

    monkeypatch.setattr(judge_run, "documentation", unreadable)
    score = asyncio.run(judge_run.run_judge_check("readme_clarity", JudgeParams(), tmp_path, [], []))
    assert score.status == "error" and score.basis == "judge", score
    assert "PermissionError: README.md is unreadable" in score.explanation


INTERVIEW_RUBRIC = """
id: ops-interview
version: 1
title: Operations interview
criteria:
  - id: observability
    title: Observability
    weight: 2
    check: {kind: interview, name: interview_dimension, params: {topics: ["tracing", "alerts"]}}
  - id: team_process
    title: Team process
    weight: 1
    check: {kind: interview, name: interview_dimension}
"""


def test_an_interview_check_or_topic_builder_that_raises_still_leaves_every_dimension_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_check(path: str, title: str, params: object, anchor: Any) -> Any:
        raise KeyError("topics")

    def broken_builder(profile: Any, anchor: Any) -> Any:
        raise IndexError("no README headings")

    monkeypatch.setitem(INTERVIEW_CHECKS, "interview_dimension", broken_check)
    monkeypatch.setattr(interview_plan, "BUILDERS", [broken_builder, *interview_plan.BUILDERS])
    rubric = load_rubric_text(INTERVIEW_RUBRIC)  # dimensions no topic builder covers: their checks' topics are asked
    (tmp_path / "README.md").write_text("# notes bot\n\nA weekend prototype.\n")
    profile = build_profile(tmp_path)
    plan = interview_plan.build_plan(profile, rubric, max_topics=20)
    asked = {topic.dimension for topic in plan.topics}
    assert asked >= {"observability", "team_process"}
    fallbacks = [topic for topic in plan.topics if "failed inside Viva" in topic.reason]
    assert fallbacks, "no dimension fell back to its title"
    assert all("KeyError" in topic.reason and topic.question.startswith("Tell me about") for topic in fallbacks)
