"""The nine candidate-style client fixtures (tests/fixtures/apps/clients/README.md), graded end to end in real Docker.

None has a viva.toml. Each reaches its model its own way — an SDK reading a base-URL variable, a hard-coded
`https://api.openai.com` through requests or httpx, Azure's deployment layout, the Responses API streaming,
LangChain, Ollama's own API, Anthropic streaming — and two need companion services from their compose file. Each
must start, answer, and be probed (latency, citations, injection, cost, faults), and the report must say which
client and wire API its calls came by. Every fixture is graded once for the module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from grader.dynamic import DynamicOptions, run_dynamic
from grader.pipeline import GradeOptions, grade
from grader.profile import build_profile
from grader.report.model import GradingReport
from grader.report.render_html import render_html
from grader.report.render_markdown import escape_markdown, render_markdown
from grader.scoring import ScoredCriterion, walk
from rubrics.catalogue import CitationValidityParams, LatencyParams
from rubrics.registry import resolve_rubric
from sandboxes.docker_backend import docker_client
from sandboxes.images import build_offline_base
from sandboxes.service_images import OFFLINE_IMAGES, build_service_image, service_image_current
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import make_app_repo

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BASE = SandboxSettings().offline_image
CHROMA_0_6 = "0.6.3"
"""The Chroma server generation `compose_chroma` names (chromadb/chroma:0.6.3): its 0.6 client speaks no other."""

# fixture → (how Viva should start it, the (client, wire API) pairs its calls must come by)
EXPECTED: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "compose_postgres_redis": ("compose service api", {("openai-python", "openai.chat")}),
    "compose_worker": ("compose service api", {("openai-python", "openai.chat")}),
    "compose_chroma": ("compose service api", {("openai-python", "openai.embeddings"), ("openai-python", "openai.chat")}),
    "requests_hardcoded": ("Dockerfile", {("python-requests", "openai.chat")}),
    "httpx_hardcoded": ("README", {("python-httpx", "openai.chat")}),
    "azure_openai": ("Dockerfile", {("azure-openai-python", "azure.chat")}),
    "responses_streaming": ("README", {("openai-python", "openai.responses")}),
    "langchain_openai": ("Dockerfile", {("openai-python", "openai.embeddings"), ("openai-python", "openai.chat")}),
    "ollama_client": ("Dockerfile", {("ollama-python", "ollama.chat")}),
    "anthropic_streaming": ("README", {("anthropic-python", "anthropic.messages")}),
}  # fmt: skip
PROBED = ("latency.p95", "citations.validity", "injection.probes", "cost.reported", "engineering.faults")


@pytest.fixture(scope="module")
def service_table(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Viva's offline postgres, redis and Chroma 0.6 images (built once, again only when their recipe changed),
    served by the operator's table as an air-gapped deployment would: this machine has no registry."""
    client = docker_client()
    try:
        client.images.get(BASE)
    except Exception:
        build_offline_base(client, BASE)
    cache = tmp_path_factory.mktemp("service-wheels")
    for kind in ("postgres", "redis"):
        if not service_image_current(client, kind):
            build_service_image(client, kind, base_image=BASE, cache_dir=cache)
    chroma = f"viva-svc-chroma:{CHROMA_0_6}"
    if not service_image_current(client, "chroma", chroma, chroma_version=CHROMA_0_6):
        build_service_image(client, "chroma", image=chroma, base_image=BASE, cache_dir=cache, chroma_version=CHROMA_0_6)
    return [
        f"postgres={OFFLINE_IMAGES['postgres']}",
        f"redis={OFFLINE_IMAGES['redis']}",
        f"chromadb/chroma:{CHROMA_0_6}={chroma}",
    ]


def dynamic_options(service_table: list[str], cache: Path) -> DynamicOptions:
    return DynamicOptions(
        sandbox=SandboxSettings(
            image_source="offline",
            service_images=service_table,
            service_pull_policy="never",
            service_time_scale=0.05,
        ),
        cache_dir=cache,
        time_scale=0.05,
        fault_time_scale=0.2,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reports(
    service_table: list[str], cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, GradingReport]:
    options = GradeOptions(allow_local=True, dynamic=dynamic_options(service_table, cache))
    rubric = resolve_rubric("ai-engineer-capstone")
    graded = {}
    for name in [*EXPECTED, "gemini_requests"]:
        repo = make_app_repo(f"clients/{name}", tmp_path_factory.mktemp(name) / "repo")
        graded[name] = grade(str(repo), rubric, tmp_path_factory.mktemp(f"{name}-scratch"), options)
    return graded


def leaf(report: GradingReport, path: str) -> ScoredCriterion:
    return next(item for item, _ in walk(report.criteria, 0) if item.path == path)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_client_starts_answers_and_is_probed(reports: dict[str, GradingReport], name: str) -> None:
    report, (source, _) = reports[name], EXPECTED[name]
    run = report.dynamic
    assert run is not None and run.service is not None
    attempts = [(attempt.source, attempt.outcome, attempt.reason[:200]) for attempt in run.service.attempts]
    assert run.service.started, (run.service.reason, attempts)
    assert any(attempt.outcome == "started" and attempt.source == source for attempt in run.service.attempts), attempts
    for path in PROBED:
        scored = leaf(report, path)
        assert scored.status == "scored", (path, scored.status, scored.explanation)
        assert scored.evidence or scored.explanation, path


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_report_says_which_client_and_wire_api_the_app_used(reports: dict[str, GradingReport], name: str) -> None:
    run = reports[name].dynamic
    assert run is not None and run.providers is not None
    used = {(use.client, use.wire_api) for use in run.providers.uses}
    assert EXPECTED[name][1] <= used, used
    assert not run.providers.refused and not run.providers.failed_handshakes, run.providers
    page, text = render_html(reports[name]), render_markdown(reports[name])
    for client, wire_api in EXPECTED[name][1]:
        said = f"{client} over {wire_api}"
        assert said in page and escape_markdown(said) in text, said


def test_hard_coded_provider_urls_came_through_the_proxy_and_nothing_else_was_reached(
    reports: dict[str, GradingReport],
) -> None:
    for name in ("requests_hardcoded", "httpx_hardcoded"):
        run = reports[name].dynamic
        assert run is not None and run.providers is not None
        assert sum(use.calls for use in run.providers.uses) >= 20, (name, run.providers)


def test_companions_ran_beside_the_app_and_the_rest_were_listed(reports: dict[str, GradingReport]) -> None:
    run = reports["compose_postgres_redis"].dynamic
    assert run is not None
    started = [line for line in run.companions if "not started" not in line]
    assert [line.split(":")[0] for line in started] == ["postgres", "redis"], run.companions
    assert "healthy" in started[0]  # the app started only once pg_isready passed
    assert any(line.startswith("pgadmin: not started") for line in run.companions), run.companions
    assert not run.companions_down
    chroma = reports["compose_chroma"].dynamic
    assert chroma is not None and chroma.companions and chroma.companions[0].startswith("chroma:")
    worker = reports["compose_worker"].dynamic  # `build: ./reranker`: its own dependency layer, its Dockerfile's CMD
    assert worker is not None and worker.companions[0].startswith("reranker: viva-deps:"), worker.companions
    assert "healthy" in worker.companions[0]
    assert "Companion services" in render_html(reports["compose_postgres_redis"])


def test_the_cache_the_candidate_built_on_redis_is_seen_by_the_grading(reports: dict[str, GradingReport]) -> None:
    """The postgres+redis app answers a repeated question from its Redis cache: fewer model calls than answers."""
    run: Any = reports["compose_postgres_redis"].dynamic
    assert run.latency is not None and run.latency.requests >= 20
    calls = sum(use.calls for use in run.providers.uses)
    assert calls < run.latency.requests + len(run.faults) * 3 + 40, calls


def test_an_app_on_a_provider_viva_does_not_serve_is_not_run_naming_it(reports: dict[str, GradingReport]) -> None:
    """gemini_requests posts to generativelanguage.googleapis.com with requests: the proxy refuses the CONNECT and
    records it; the app starts (that is the candidate's) but no model answer can reach it (that is Viva's)."""
    report = reports["gemini_requests"]
    run = report.dynamic
    assert run is not None and run.service is not None and run.service.started
    assert run.providers is not None and run.providers.unserved == ["Google Gemini"], run.providers
    assert any(line.startswith("generativelanguage.googleapis.com:443 CONNECT") for line in run.providers.refused)
    for path in PROBED:
        assert leaf(report, path).status == "not_run" and "Google Gemini" in leaf(report, path).explanation, path
    starts = leaf(report, "engineering.starts")
    assert starts.status == "scored" and starts.score == 1.0, starts.explanation


def test_a_companion_killed_mid_grading_is_reported_not_hung_on(
    service_table: list[str], cache: Path, tmp_path: Path
) -> None:
    """Postgres is killed as latency begins: the grading finishes promptly, says which companion stopped and how,
    and makes what it measured afterwards not_run instead of scoring the app on a database Viva lost."""
    repo = make_app_repo("clients/compose_postgres_redis", tmp_path / "repo")
    client = docker_client()
    killed: list[str] = []

    def step(name: str) -> None:
        if name == "latency" and not killed:
            for container in client.containers.list(filters={"label": "viva.service=postgres"}):
                container.kill()
                killed.append(container.name)

    leaves = [
        ("latency.p95", "latency_p95", LatencyParams()),
        ("citations.validity", "citation_validity", CitationValidityParams()),
    ]
    began = time.monotonic()
    scores, run = run_dynamic(
        repo, build_profile(repo), leaves, tmp_path / "scratch", dynamic_options(service_table, cache), step=step
    )
    assert killed and run is not None
    assert time.monotonic() - began < 240
    assert any("postgres stopped" in line for line in run.companions_down), run.companions_down
    for path in ("latency.p95", "citations.validity"):
        assert scores[path].status == "not_run" and "postgres stopped" in scores[path].explanation, scores[path]


def test_no_fixture_left_a_container_behind(reports: dict[str, GradingReport]) -> None:
    assert reports
    client = docker_client()
    left = client.containers.list(all=True, filters={"label": "viva.pod"})
    assert not left, [container.name for container in left]


def test_a_report_exists_for_every_fixture(reports: dict[str, GradingReport], tmp_path: Path) -> None:
    for name, report in reports.items():
        (tmp_path / f"{name}.html").write_text(render_html(report))
        assert (tmp_path / f"{name}.html").stat().st_size > 10_000, name
