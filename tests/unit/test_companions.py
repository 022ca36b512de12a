"""What a grading does with a project's companion services and its model traffic, without Docker.

The compose files are written as candidates write them; the start comes from Viva's own detection (build_profile),
so what is tested is the path a real repository takes: detected compose start → pod plan → images → either a plan
to run or the reason Viva cannot (never the candidate's 0).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.dynamic.companions import Companions, built_sidecar, plan_companions, plan_pod, provider_traffic
from grader.dynamic.model import (
    AppInterface,
    DynamicRun,
    GatewaySettings,
    LatencyResult,
    Percentiles,
    ProviderTraffic,
    ProviderUse,
    SandboxInfo,
    ServiceResult,
)
from grader.dynamic.scores import dynamic_score
from grader.profile import build_profile
from grader.profile.model import StartCandidate
from rubrics.catalogue import EvalSuiteRunsParams, LatencyParams, ServiceStartsParams
from sandboxes.fake_backend import FakeImages, FakeWorld
from sandboxes.gateway.proxy import ProxyAttempt
from sandboxes.settings import SandboxSettings

APP = """\
from fastapi import FastAPI
import psycopg

app = FastAPI()

@app.post("/ask")
def ask(body: dict) -> dict:
    with psycopg.connect("postgresql://rag:rag@db:5432/rag") as conn:
        return {"answer": conn.execute("select 1").fetchone()[0]}
"""
DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
"""
COMPOSE = """\
services:
  api:
    build: .
    ports: ["8000:8000"]
    depends_on:
      db:
        condition: service_healthy
    environment:
      DATABASE_URL: postgresql://rag:rag@db:5432/rag
  db:
    image: postgres:16
{db_extra}    environment:
      POSTGRES_USER: rag
      POSTGRES_PASSWORD: rag
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U rag"]
      interval: 5s
    volumes:
      - pgdata:/var/lib/postgresql/data
{db_volume}  adminer:
    image: adminer
    depends_on: [db]
volumes:
  pgdata:
"""


class TableImages(FakeImages):
    """A backend whose only companion images are the operator's table: what an air-gapped deployment has."""

    def __init__(self, table: dict[str, str]) -> None:
        super().__init__(FakeWorld())
        self.table = table

    def service_images(self, plan, policy, built=None):  # type: ignore[no-untyped-def]
        found = {one.name: self.table[one.image] for one in plan.sidecars if one.image in self.table}
        found |= dict(built or {})
        missing = {one.name: f"{one.image} is not on this host" for one in plan.sidecars if one.name not in found}
        return found, missing


def repository(tmp_path: Path, db_extra: str = "", db_volume: str = "") -> tuple[Path, StartCandidate]:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "main.py").write_text(APP)
    (root / "requirements.txt").write_text("fastapi==0.115.6\nuvicorn==0.34.0\npsycopg[binary]==3.2.3\n")
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "docker-compose.yml").write_text(
        COMPOSE.format(db_extra=textwrap.indent(db_extra, "    "), db_volume=db_volume)
    )
    start = next(one for one in build_profile(root).starts if one.source == "compose service api")
    return root, start


def test_a_compose_start_gets_its_depends_on_closure_and_the_rest_is_listed(tmp_path: Path) -> None:
    root, start = repository(tmp_path)
    assert start.services == ["db"] and start.compose_service == "api"
    planned = plan_companions(root, start, TableImages({"postgres:16": "local-pg"}), SandboxSettings())
    assert isinstance(planned, Companions), planned
    assert planned.images == {"db": "local-pg"} and planned.names[0] == "db"
    assert planned.plan.sidecars[0].data_dirs == ["/var/lib/postgresql/data"]  # the named volume becomes tmpfs
    assert any(line.startswith("adminer: not started") for line in planned.not_started())


def test_a_start_without_services_needs_no_companions(tmp_path: Path) -> None:
    root, start = repository(tmp_path)
    bare = StartCandidate(tier="documented", source="README", command="uvicorn main:app", evidence=start.evidence)
    assert plan_companions(root, bare, TableImages({}), SandboxSettings()) is None


def test_an_image_this_host_cannot_have_is_named(tmp_path: Path) -> None:
    root, start = repository(tmp_path)
    reason = plan_companions(root, start, TableImages({}), SandboxSettings())
    assert isinstance(reason, str) and "db (postgres:16 is not on this host)" in reason


@pytest.mark.parametrize(
    ("db_extra", "said"),
    [
        ("privileged: true\n", "privileged"),
        ("network_mode: host\n", "network_mode"),
        ("pid: host\n", "pid"),
        ("devices: ['/dev/fuse:/dev/fuse']\n", "devices"),
        ("cap_add: [SYS_ADMIN]\n", "SYS_ADMIN"),
        ("      - /etc:/host-etc:ro\n", "outside the repository"),
        ("      - /var/run/docker.sock:/var/run/docker.sock\n", "Docker socket"),
    ],
)
def test_a_compose_file_asking_for_what_a_sandbox_does_not_give_is_refused_with_the_reason(
    tmp_path: Path, db_extra: str, said: str
) -> None:
    volume = db_extra.startswith(" ")
    root, start = repository(tmp_path, "" if volume else db_extra, db_extra if volume else "")
    reason = plan_companions(root, start, TableImages({"postgres:16": "local-pg"}), SandboxSettings())
    assert isinstance(reason, str) and "does not give" in reason, reason
    assert said.lower() in reason.lower(), reason


def _run(**parts: object) -> DynamicRun:
    timing = Percentiles(p50=0.1, p95=0.2, p99=0.3)
    base = {
        "sandbox": SandboxInfo(base_image="viva-base:offline"),
        "gateway": GatewaySettings("offline", 0.4, 80.0, 0.0, 1.0),
        "interface": AppInterface(query_path="/ask", snippet="manifest_version = 1"),
        "service": ServiceResult(started=True, ready_seconds=1.0, first_query_status=502),
        "latency": LatencyResult(requests=50, errors=50, concurrency=4, end_to_end=timing),
    }
    return DynamicRun(**{**base, **parts})  # type: ignore[arg-type]


def test_an_app_on_a_provider_viva_does_not_serve_is_not_run_naming_it() -> None:
    traffic = ProviderTraffic(refused=["generativelanguage.googleapis.com:443 CONNECT: …"], unserved=["Google Gemini"])
    run = _run(providers=traffic)
    latency = dynamic_score("latency_p95", LatencyParams(), run)
    assert latency.status == "not_run" and "Google Gemini" in latency.explanation
    # The service started: that is still the candidate's to earn (its 502 is Viva's), as is an eval suite.
    starts = dynamic_score("service_starts", ServiceStartsParams(), run)
    assert starts.status == "scored" and starts.value == 1.0, starts.explanation
    assert dynamic_score("service_starts", ServiceStartsParams(), _run()).value == 0.5  # a 502 of its own
    evals = dynamic_score("eval_suite_runs", EvalSuiteRunsParams(), run)
    assert "Google Gemini" not in evals.explanation  # not_run here only because no suite was found


def test_a_served_provider_alongside_a_refused_one_is_still_measured() -> None:
    traffic = ProviderTraffic(
        uses=[ProviderUse("openai-python", "openai.chat", 50)], unserved=["Cohere"], refused=["api.cohere.com:443"]
    )
    timing = Percentiles(p50=0.1, p95=0.2, p99=0.3)
    answered = LatencyResult(requests=50, errors=0, concurrency=4, end_to_end=timing)
    assert dynamic_score("latency_p95", LatencyParams(), _run(providers=traffic, latency=answered)).status == "scored"


def test_a_companion_that_stopped_under_the_app_makes_its_measurements_not_run() -> None:
    run = _run(companions_down=["main instance: db stopped (exited, exit code 137)"])
    latency = dynamic_score("latency_p95", LatencyParams(), run)
    assert latency.status == "not_run" and "db stopped" in latency.explanation


class _Proxy:
    def __init__(self, refused: list[ProxyAttempt]) -> None:
        self.refused, self.failed_handshakes = refused, []


def test_the_traffic_names_unserved_providers_among_refused_hosts() -> None:
    refused = [
        ProxyAttempt("generativelanguage.googleapis.com", 443, "CONNECT", "proxy", "not a provider Viva serves", 0.0),
        ProxyAttempt("generativelanguage.googleapis.com", 443, "CONNECT", "proxy", "not a provider Viva serves", 1.0),
        ProxyAttempt("example.com", 443, "CONNECT", "proxy", "not a provider Viva serves", 2.0),
    ]
    traffic = provider_traffic([], [_Proxy(refused)])  # type: ignore[list-item]
    assert traffic.unserved == ["Google Gemini"]
    assert traffic.refused[0].endswith("(×2)") and len(traffic.refused) == 2


WORKER_COMPOSE = """\
services:
  api:
    build: .
    depends_on: [embedder, ingest]
  embedder:
    build: ./embedder
    environment:
      MODEL_NAME: tiny
  ingest:
    build:
      context: ./jobs
      dockerfile: Dockerfile.ingest
    command: ingest.py --once
"""


def test_sidecars_built_from_the_repository_run_their_own_command_as_the_sandbox_user(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for path, text in {
        "main.py": APP,
        "Dockerfile": DOCKERFILE,
        "requirements.txt": "fastapi==0.115.6\nuvicorn==0.34.0\n",
        "docker-compose.yml": WORKER_COMPOSE,
        "embedder/Dockerfile": 'FROM python:3.11-slim\nWORKDIR /srv\nCOPY . .\nENV PORT=9000\nCMD ["python", "serve.py"]\n',
        "embedder/serve.py": "print('serving')\n",
        "jobs/Dockerfile.ingest": 'FROM python:3.11-slim\nCOPY . .\nENTRYPOINT ["python"]\nCMD ["run.py"]\n',
        "jobs/ingest.py": "print('ingested')\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    start = next(one for one in build_profile(root).starts if one.source == "compose service api")
    plan = plan_pod(root, start)
    assert plan is not None and not isinstance(plan, str), plan
    embedder, ingest = (plan.sidecar(name) for name in ("embedder", "ingest"))
    made = built_sidecar(root, embedder, "viva-deps:abc", {"OPENAI_BASE_URL": "http://127.0.0.1:18080/v1"})
    assert not isinstance(made, str)
    assert made.command == ["sh", "-c", "python serve.py"] and made.user == "1000:1000"
    assert made.working_dir == "/work/app" and made.copied[-1].source == "embedder"
    assert made.environment["PORT"] == "9000" and made.environment["MODEL_NAME"] == "tiny"
    assert made.environment["OPENAI_BASE_URL"].startswith("http://127.0.0.1")
    # compose's `command` replaces the Dockerfile's CMD and keeps its ENTRYPOINT, as Docker does
    job = built_sidecar(root, ingest, "viva-deps:def", {})
    assert not isinstance(job, str) and job.command == ["sh", "-c", "python ingest.py --once"]
    unbuilt = plan_companions(root, start, TableImages({}), SandboxSettings())
    assert isinstance(unbuilt, str) and "built from the repository" in unbuilt
    ready = plan_companions(root, start, TableImages({}), SandboxSettings(), {"embedder": made, "ingest": job})
    assert isinstance(ready, Companions) and ready.images == {"embedder": "viva-deps:abc", "ingest": "viva-deps:def"}
