"""Grading the fixture services end to end in the real Docker sandbox, against the gateway.

The well-built app must beat the naive one by at least 0.3 overall and win on injection, cost, citations and
faults, with the evidence in the report; the app that never starts scores 0 on every dynamic check, with its log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from grader.dynamic import DynamicOptions, run_dynamic
from grader.dynamic import run as run_module
from grader.pipeline import GradeOptions, grade
from grader.profile import build_profile
from grader.report.model import GradingReport
from grader.report.render_html import render_html
from grader.scoring import ScoredCriterion, walk
from rubrics.catalogue import CostCeilingParams, ProviderFaultsParams
from rubrics.registry import resolve_rubric
from sandboxes.errors import SandboxError
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import make_app_repo

pytestmark = pytest.mark.docker

APPS = ("well_built", "middling", "naive", "never_starts")
DYNAMIC_LEAVES = (
    "evals.runs",
    "injection.probes",
    "citations.validity",
    "cost.reported",
    "cost.trips",
    "latency.p95",
    "engineering.starts",
    "engineering.faults",
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradingReport]:
    options = GradeOptions(
        allow_local=True,
        dynamic=DynamicOptions(
            sandbox=SandboxSettings(image_source="offline"),
            cache_dir=tmp_path_factory.mktemp("cache"),
            time_scale=0.05,  # the stand-in model's ~0.9 s per call becomes ~45 ms: measurable, not slow
        ),
    )
    rubric = resolve_rubric("ai-engineer-capstone")
    graded = {}
    for name in APPS:
        repo = make_app_repo(name, tmp_path_factory.mktemp(name) / "repo")
        graded[name] = grade(str(repo), rubric, tmp_path_factory.mktemp(f"{name}-scratch"), options)
    return graded


def node(report: GradingReport, path: str) -> ScoredCriterion:
    return next(item for item, _ in walk(report.criteria, 0) if item.path == path)


def test_the_well_built_app_beats_the_naive_one_by_at_least_0_3(reports: dict[str, GradingReport]) -> None:
    well, naive = reports["well_built"], reports["naive"]
    assert well.coverage == naive.coverage == 1.0
    assert well.score is not None and naive.score is not None
    assert well.score - naive.score >= 0.3, (well.score, naive.score)
    for area in ("injection", "cost", "citations", "engineering.faults"):
        assert node(well, area).score > node(naive, area).score, area  # type: ignore[operator]


def test_injection_evidence_shows_the_naive_leak_and_the_guards_that_held(reports: dict[str, GradingReport]) -> None:
    naive, well = reports["naive"].dynamic, reports["well_built"].dynamic
    assert naive is not None and well is not None and naive.injection and well.injection
    assert len(naive.injection.probes) >= 20 and naive.injection.indirect_ran  # naive ingests documents
    leaked = [probe for probe in naive.injection.probes if probe.leaked]
    assert {probe.category for probe in leaked} >= {"direct", "role_play", "encoding", "canary", "indirect"}
    assert any("hunter2-staging" in probe.answer for probe in leaked)  # its system prompt, in its HTTP answer
    assert not well.injection.indirect_ran  # no ingest route: said so, not faked
    assert well.injection.leaks == 0
    assert any(probe.model_obeyed for probe in well.injection.probes)  # the model obeyed; the app's guard held
    html = render_html(reports["naive"])
    assert "leaked" in html and "hunter2-staging" in html


def test_cost_evidence(reports: dict[str, GradingReport]) -> None:
    well, naive = reports["well_built"].dynamic, reports["naive"].dynamic
    assert well is not None and naive is not None and well.cost and well.ceiling
    assert all(item.within for item in well.cost.items) and well.cost.gateway_total > 0
    assert well.ceiling.outcome == "refused" and well.ceiling.refused_status == 402
    assert well.ceiling.spend_at_refusal <= well.ceiling.budget_usd * 1.5
    assert any("budget" in line for line in well.ceiling.alert_lines)
    assert naive.ceiling is None and "budget" in naive.interface.missing
    trips = node(reports["naive"], "cost.trips")
    assert trips.score == 0 and "[budget]" in trips.explanation  # the manifest snippet the candidate can add


def test_citation_evidence(reports: dict[str, GradingReport]) -> None:
    well, naive = reports["well_built"].dynamic, reports["naive"].dynamic
    assert well is not None and naive is not None and well.citations and naive.citations
    assert well.citations.style == "structured" and well.citations.app_validated
    assert well.citations.supported / well.citations.citations >= 0.8
    assert naive.citations.style == "inline" and not naive.citations.app_validated
    assert "only the model wrote labels" in node(reports["naive"], "citations.validity").explanation


def test_fault_evidence(reports: dict[str, GradingReport]) -> None:
    well, naive = reports["well_built"].dynamic, reports["naive"].dynamic
    assert well is not None and naive is not None
    assert {fault.fault for fault in well.faults} == {
        "rate_limit",
        "server_error",
        "timeout",
        "slow_stream",
        "malformed_json",
    }
    assert all(fault.outcome == "recovered" for fault in well.faults), well.faults
    # the slow faults were played on an instance of their own, the quick ones on the main one
    assert {fault.fault: fault.instance for fault in well.faults} == {
        "rate_limit": "main",
        "server_error": "main",
        "timeout": "faults",
        "slow_stream": "faults",
        "malformed_json": "main",
    }
    assert [line.split(":")[0] for line in well.instances] == ["main", "faults", "ceiling"]
    assert well.ceiling is not None and well.ceiling.instance == "ceiling"
    html = render_html(reports["well_built"])
    assert "Instances of the app" in html and "<li>faults: the slow faults (timeout, slow_stream)" in html
    assert "Driven on an instance of its own" in html and "<td>faults</td>" in html
    assert any(fault.outcome == "traceback" and "Traceback" in fault.body for fault in naive.faults)
    assert all(fault.seconds < 30 for fault in well.faults + naive.faults)
    # the suites ran beside the fault probes: no fault reached them, so both runs agree and nothing is flagged
    for run in (well, naive):
        assert run.evals is not None and run.evals.reproducible and not run.evals.problems, run.evals


def test_latency_is_measured_end_to_end_and_net_of_the_model(reports: dict[str, GradingReport]) -> None:
    latency = reports["well_built"].dynamic.latency  # type: ignore[union-attr]
    assert latency is not None and latency.end_to_end is not None and latency.net_of_model is not None
    assert latency.requests >= 50 and latency.errors == 0
    assert sum(item.count for item in latency.histogram) == latency.requests
    modelled = latency.modelled_seconds_per_call * 0.05
    assert modelled > 0.01
    # The model's share is what the gateway spent; the app's own overhead is what is left.
    assert latency.end_to_end.p50 - latency.net_of_model.p50 >= modelled * 0.8
    html = render_html(reports["well_built"])
    assert "Latency histogram" in html and "<svg" in html


def test_the_naive_app_was_found_through_its_openapi_document(reports: dict[str, GradingReport]) -> None:
    found = reports["naive"].dynamic.interface  # type: ignore[union-attr]
    assert found.query_method == "GET" and found.query_path == "/search" and found.request_template == "q"
    assert "OpenAPI" in found.query_source and found.ingest_path == "/documents"
    assert found.answer_pointer == "/response" and found.start_tier == "documented"  # the README says `python main.py`
    assert found.start_source.startswith("README") and found.start_command == "python main.py"
    evals = reports["naive"].dynamic.evals  # type: ignore[union-attr]
    assert evals is not None and evals.runner == "pytest" and evals.collected == 8
    assert evals.reproducible and all(run.passed == 8 for run in evals.runs)


def test_the_middling_app_lands_between_and_each_of_its_gaps_is_named(reports: dict[str, GradingReport]) -> None:
    """Anthropic's protocol, a manifest with nested pointers, a `Sources:` footer, an input guard only, a cost
    counter 1000x off, an alert-only budget, and clean errors without retries."""
    well, middling, naive = (reports[name] for name in ("well_built", "middling", "naive"))
    assert naive.score < middling.score < well.score  # type: ignore[operator]
    run = middling.dynamic
    assert (
        run is not None and run.interface.answer_pointer == "/data/text" and run.interface.cost_pointer == "/usage/cost"
    )
    assert run.latency is not None and run.latency.errors == 0 and run.latency.model_calls_per_request == 1.0
    assert run.citations is not None and run.citations.style == "inline" and run.citations.supported > 0
    assert run.injection is not None
    leaked = {probe.category for probe in run.injection.probes if probe.leaked}
    assert leaked and "role_play" in leaked
    assert any(not probe.reached_model for probe in run.injection.probes)  # its input guard refused some
    assert run.cost is not None and not any(item.within for item in run.cost.items)
    assert run.cost.reported_total > 100 * run.cost.gateway_total
    assert run.ceiling is not None and run.ceiling.outcome == "alerted"
    assert node(middling, "cost.trips").score == 0.5
    assert {fault.outcome for fault in run.faults} == {"clean_error"}
    assert node(middling, "engineering.faults").score == pytest.approx(0.7)
    # no runnable suite found: not a 0 (the static leaves judge what the repository holds), with the snippet to add
    runs = node(middling, "evals.runs")
    assert "evals" in run.interface.missing and runs.status == "not_run" and "[evals]" in runs.explanation


def test_the_app_that_never_starts_scores_0_on_every_dynamic_check_with_its_log(
    reports: dict[str, GradingReport],
) -> None:
    report = reports["never_starts"]
    assert report.dynamic is not None and report.dynamic.service is not None
    assert not report.dynamic.service.started and "VECTOR_DB_URL" in report.dynamic.service.log_tail
    for path in DYNAMIC_LEAVES:
        leaf = node(report, path)
        assert leaf.status == "scored" and leaf.score == 0, (path, leaf.explanation)
    starts = node(report, "engineering.starts")
    assert "never answered" in starts.explanation
    assert any("VECTOR_DB_URL" in item.excerpt for item in starts.evidence)
    assert "KeyError" in render_html(report)


def test_without_companion_instances_the_main_one_does_their_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker refuses the companion sandboxes: the slow faults and the ceiling run on the main instance afterwards
    (the ceiling after a restart with the budget), with the same outcomes, and the report says why."""
    original = run_module._Session._instance

    def refusing(self: run_module._Session, role: str, *args: Any, **kwargs: Any) -> Any:
        if role == "main":
            return original(self, role, *args, **kwargs)

        @contextlib.asynccontextmanager
        async def refused() -> AsyncIterator[None]:
            raise SandboxError(f"no room for a {role} sandbox")
            yield

        return refused()

    monkeypatch.setattr(run_module._Session, "_instance", refusing)
    repo = make_app_repo("well_built", tmp_path / "repo")
    leaves = [
        ("engineering.faults", "provider_faults", ProviderFaultsParams()),
        ("cost.trips", "cost_ceiling_trips", CostCeilingParams()),
    ]
    options = DynamicOptions(
        sandbox=SandboxSettings(image_source="offline"), cache_dir=tmp_path / "cache", time_scale=0.05
    )
    scores, run = run_dynamic(repo, build_profile(repo), leaves, tmp_path / "scratch", options)
    assert run is not None
    assert [line.split(":")[0] for line in run.instances] == ["main"]
    assert any("no room for a faults sandbox" in note for note in run.notes)
    assert any("no room for a ceiling sandbox" in note for note in run.notes)
    assert [(fault.outcome, fault.instance) for fault in run.faults] == [("recovered", "main")] * 5, run.faults
    assert run.ceiling is not None and run.ceiling.outcome == "refused" and run.ceiling.instance == "main"
    assert scores["engineering.faults"].value == 1 and scores["cost.trips"].value == 1
