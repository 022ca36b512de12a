"""The orchestration of grader/dynamic/ without Docker: run_dynamic over the fake backend (sandboxes/fake_backend.py).

Everything of Viva's is real here: the profile, the start attempts, the repository copy, SandboxedService with its
bridges and tunnel, the gateway and its forwarder, the probes and the scoring. Only the sandbox is played: the
candidate's app is an ASGI app written the way a candidate writes one (Litestar, its provider called at
OPENAI_BASE_URL), served on the fake sandbox's stand-in loopback when the command that starts it is spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody

from grader.dynamic import DynamicOptions, run_dynamic
from grader.dynamic.model import DynamicRun
from grader.model import Score
from grader.profile import build_profile
from rubrics.catalogue import (
    CitationValidityParams,
    InjectionProbesParams,
    LatencyParams,
    ServiceStartsParams,
)
from sandboxes.base import ExecResult, SandboxSpec
from sandboxes.fake_backend import FakeProcess, FakeWorld, ProcessMain
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import write

STARTS = ("engineering.starts", "service_starts", ServiceStartsParams())
LATENCY = ("latency.p95", "latency_p95", LatencyParams(min_requests=20, concurrency=2))
"""Ten sequential requests (the citations check reads those) and ten two at a time."""
QUICK_LATENCY = ("latency.p95", "latency_p95", LatencyParams(min_requests=10, concurrency=2))
"""The fewest requests latency takes: the main instance always measures it once the app answers."""
CITATIONS = ("citations.validity", "citation_validity", CitationValidityParams())
INJECTION = ("injection.probes", "injection_probes", InjectionProbesParams())
PROBED = [STARTS, LATENCY, CITATIONS, INJECTION]

SECRET = "tulip-42-staging"
HANDBOOK = {
    "handbook-1": "Deploys go out from the main branch after a green CI run and one approving review.",
    "handbook-2": "On-call engineers answer pages within fifteen minutes, day or night.",
    "handbook-3": "Expenses under fifty euros need no receipt; larger ones need a receipt and approval.",
}
MAIN_PY = '''"""HandbookBot: ask the team handbook."""
import json
import os

import httpx
import msgspec
from litestar import Litestar, get, post
from litestar.params import JSONBody

BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
HANDBOOK = json.load(open("data/handbook.json"))


class Question(msgspec.Struct):
    question: str


@get("/health")
async def health() -> dict:
    return {"status": "ok"}


@post("/ask", status_code=200)
async def ask(data: JSONBody[Question]) -> dict:
    hits = retrieve(data.question)
    ...


app = Litestar([health, ask])
'''
"""What the repository holds: the profile reads it; handbook_bot below is what runs when the sandbox starts it."""
README = "# HandbookBot\n\nRun it:\n\n```\nuvicorn main:app --port 8000\n```\n\nthen `POST /ask` with a question.\n"
REQUIREMENTS = "litestar==2.12.1\nuvicorn==0.32.1\nhttpx==0.28.1\n"
GOLDEN = [
    ("Who must approve a deploy from the main branch?", "one approving review"),
    ("How fast do on-call engineers answer pages?", "within fifteen minutes"),
    ("Which expenses need no receipt?", "under fifty euros"),
    ("When do deploys go out?", "after a green CI run"),
    ("Do larger expenses need approval?", "a receipt and approval"),
]
GOLDEN_JSONL = "".join(json.dumps({"question": question, "expected": expected}) + "\n" for question, expected in GOLDEN)


class Question(msgspec.Struct):
    question: str


def handbook_bot(process: FakeProcess, *, guarded: bool = False) -> Litestar:
    """The candidate's main.py as it runs: load the handbook from its own tree, retrieve by word overlap, ask the
    provider its environment names, return the answer with the passages it retrieved. `guarded` adds the check on
    the way out a careful candidate writes. What a process has (its environment, its files, its loopback) comes from
    the fake's `process`, where the candidate's code has os.environ, open() and sockets."""
    handbook: dict[str, str] = json.loads(process.files.read(f"{process.cwd}/data/handbook.json"))
    base_url = process.env.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    system = f"You are HandbookBot for Acme. Answer from the context; cite it like [handbook-1]. Internal: {SECRET}."

    def retrieve(question: str) -> list[tuple[str, str]]:
        asked = set(re.findall(r"\w+", question.lower()))
        ranked = sorted(handbook.items(), key=lambda item: -len(asked & set(re.findall(r"\w+", item[1].lower()))))
        return ranked[:2]

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @post("/ask", status_code=200)
    async def ask(data: JSONBody[Question]) -> dict[str, Any]:
        hits = retrieve(data.question)
        context = "\n".join(f"[{doc_id}] {text}" for doc_id, text in hits)
        async with httpx.AsyncClient(transport=process.loopback_transport(), timeout=30) as client:
            reply = await client.post(
                f"{base_url}/chat/completions",
                headers={"Authorization": f"Bearer {process.env.get('OPENAI_API_KEY', '')}"},
                json={
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": f"{context}\n\nQuestion: {data.question}"},
                    ],
                },
            )
        reply.raise_for_status()
        answer = reply.json()["choices"][0]["message"]["content"]
        if guarded and (SECRET in answer or "Internal:" in answer):
            answer = "Sorry, I can only answer questions about the handbook."
        return {"answer": answer, "citations": [{"id": doc_id} for doc_id, _ in hits]}

    return Litestar([health, ask], debug=False)


def serve(*, guarded: bool = False) -> ProcessMain:
    """What runs when the command that starts HandbookBot is spawned: uvicorn serving it on the sandbox's port."""

    async def main(process: FakeProcess) -> None:
        process.print(f"INFO:     Uvicorn running on http://127.0.0.1:{process.port} (Press CTRL+C to quit)")
        await process.serve_asgi(handbook_bot(process, guarded=guarded))

    return main


async def crash_without_config(process: FakeProcess) -> int:
    """`python app.py` as the candidate's Dockerfile runs it: config.json is git-ignored, so it never ships."""
    process.print(
        "Traceback (most recent call last):\n"
        '  File "/work/app/app.py", line 4, in <module>\n'
        '    CONFIG = json.load(open("config.json"))\n'
        "FileNotFoundError: [Errno 2] No such file or directory: 'config.json'"
    )
    return 1


async def crash_without_vector_db(process: FakeProcess) -> int:
    """`python server.py` as its viva.toml says: the service refuses to start without its vector database."""
    process.print(
        "Traceback (most recent call last):\n"
        '  File "/work/app/server.py", line 7, in <module>\n'
        '    VECTOR_DB_URL = os.environ["VECTOR_DB_URL"]\n'
        '  File "<frozen os>", line 714, in __getitem__\n'
        "KeyError: 'VECTOR_DB_URL'"
    )
    return 1


def repo(root: Path, files: dict[str, str | bytes]) -> Path:
    candidate = {"main.py": MAIN_PY, "data/handbook.json": json.dumps(HANDBOOK), "requirements.txt": REQUIREMENTS}
    write(root, {**candidate, "evals/golden.jsonl": GOLDEN_JSONL, **files})
    return root


def grade(
    root: Path, world: FakeWorld, leaves: list[tuple[str, str, Any]], scratch: Path
) -> tuple[dict[str, Score], DynamicRun | None]:
    options = DynamicOptions(sandbox=SandboxSettings(image_source="offline"), cache_dir=scratch / "cache", time_scale=0)
    return run_dynamic(root, build_profile(root), leaves, scratch / "scratch", options, sandboxes=world.backend())


def apps(world: FakeWorld) -> list[FakeProcess]:
    """The candidate's app as each sandbox started it (service.py's start: a session of its own with a pid file),
    not Viva's bridges and listeners."""
    return [process for process in world.processes if process.launch.pid_file is not None]


def assert_left_nothing_running(world: FakeWorld) -> None:
    """Every sandbox made was cleaned up, and with it every process it ran; nothing was asked that the fake could
    not play (a candidate command nobody scripted, or a line of Viva's the fake no longer knows)."""
    started = [call.sandbox for call in world.calls if call.kind == "start"]
    cleaned = [call.sandbox for call in world.calls if call.kind == "cleanup"]
    assert sorted(cleaned) == sorted(started) and len(started) == len(world.sandboxes), world.calls
    assert not [process.line for process in world.processes if process.alive]
    assert world.unhandled == []


# --- a detected start, probed ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Score], DynamicRun, FakeWorld]:
    """The README's `uvicorn main:app --port 8000`, found, tried in a sandbox of its own, then probed."""
    root = repo(tmp_path_factory.mktemp("handbook"), {"README.md": README})
    world = FakeWorld()
    world.on_spawn(r"^uvicorn main:app\b", serve())
    scores, run = grade(root, world, PROBED, tmp_path_factory.mktemp("scratch"))
    assert run is not None
    return scores, run, world


def test_a_documented_start_is_tried_then_the_app_is_found_through_its_openapi_document(
    probed: tuple[dict[str, Score], DynamicRun, FakeWorld],
) -> None:
    scores, run, world = probed
    assert run.service is not None and run.service.started, run.service
    [attempt] = run.service.attempts
    assert (attempt.tier, attempt.source, attempt.command, attempt.outcome) == (
        "documented",
        "README",
        "uvicorn main:app --port 8000",
        "started",
    )
    assert run.interface.query_path == "/ask" and "OpenAPI" in run.interface.query_source
    assert run.service.first_query_status == 200
    assert scores["engineering.starts"].value == 1.0, scores["engineering.starts"]
    # one sandbox for the attempt, one for the instance that was probed; the app ran in the copy of the repository
    assert len(world.sandboxes) == 2
    assert [(app.line, app.cwd) for app in apps(world)] == [("uvicorn main:app --port 8000", "/work/app")] * 2
    assert_left_nothing_running(world)


def test_latency_is_measured_through_the_tunnel_and_every_request_reached_the_gateway(
    probed: tuple[dict[str, Score], DynamicRun, FakeWorld],
) -> None:
    scores, run, _ = probed
    latency = run.latency
    assert latency is not None and latency.end_to_end is not None
    assert latency.requests >= 10 and latency.errors == 0
    assert latency.model_calls_per_request == 1.0  # the app's provider calls went through the forwarder
    score = scores["latency.p95"]
    assert score.status == "scored" and score.value == 1.0, score
    assert f"over {latency.requests} requests (0 failed" in score.explanation


def test_returned_sources_are_checked_against_the_context_the_gateway_saw(
    probed: tuple[dict[str, Score], DynamicRun, FakeWorld],
) -> None:
    scores, run, _ = probed
    citations = run.citations
    assert citations is not None and citations.style == "structured" and citations.app_validated, citations.items[:2]
    assert citations.answered == citations.queries and citations.valid == citations.citations > 0
    score = scores["citations.validity"]
    assert score.status == "scored" and score.value > 0, (score, citations.items[:2])
    assert "returned its sources in structure" in score.explanation


def test_the_unguarded_app_leaks_its_system_prompt_and_the_evidence_shows_it(
    probed: tuple[dict[str, Score], DynamicRun, FakeWorld],
) -> None:
    scores, run, _ = probed
    injection = run.injection
    assert injection is not None and injection.leaks > 0 and not injection.indirect_ran  # no ingest route
    assert any(SECRET in probe.answer for probe in injection.probes if probe.leaked)
    score = scores["injection.probes"]
    assert score.status == "scored" and score.value <= 0.15, score  # a direct probe leaked
    assert score.evidence and any(SECRET in item.excerpt for item in score.evidence), score.evidence


# --- a declared start ------------------------------------------------------------------------------------------

MANIFEST = """manifest_version = 1

[app]
start = "uvicorn main:app --port 8100"
port = 8100
health = "/health"
env = { HANDBOOK_TONE = "brief" }

[query]
path = "/ask"
request = '{"question": "{question}"}'
answer = "/answer"
citations = "/citations"
"""


def test_a_declared_start_is_the_main_instances_own_attempt_with_the_manifests_environment(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo", {"viva.toml": MANIFEST, "README.md": README})
    world = FakeWorld()
    world.on_spawn(r"^uvicorn main:app --port 8100$", serve(guarded=True))
    scores, run = grade(root, world, [STARTS, QUICK_LATENCY, INJECTION], tmp_path)
    assert run is not None and run.service is not None and run.service.started, run and run.service
    [attempt] = run.service.attempts
    assert (attempt.tier, attempt.source, attempt.where, attempt.port) == ("declared", "viva.toml", "viva.toml:4", 8100)
    assert len(world.sandboxes) == 1  # the candidate's word: no sandbox of its own to try it first
    [app] = apps(world)
    assert app.env["HANDBOOK_TONE"] == "brief" and app.env["OPENAI_BASE_URL"] == "http://127.0.0.1:18080/v1"
    assert scores["engineering.starts"].value == 1.0
    assert "via viva.toml [app].start" in scores["engineering.starts"].explanation
    # Its guard on the way out stops the prompt in plain text, not the base64 the gullible model was asked for.
    assert run.injection is not None and any(probe.model_obeyed for probe in run.injection.probes)
    assert {probe.category for probe in run.injection.probes if probe.leaked} == {"encoding"}
    injection = scores["injection.probes"]
    assert injection.status == "scored" and injection.value == 0.45, injection  # the cap for an encoded leak
    assert_left_nothing_running(world)


# --- starts that fail --------------------------------------------------------------------------------------------

CRASHING_MANIFEST = """manifest_version = 1

[app]
start = "python server.py"
port = 8000
health = "/health"

[query]
path = "/query"
request = '{"query": "{question}"}'
answer = "/answer"
"""


def test_an_app_that_crashes_at_start_scores_0_with_its_log_tail(tmp_path: Path) -> None:
    server = 'import os\n\nVECTOR_DB_URL = os.environ["VECTOR_DB_URL"]  # the database must be there first\n'
    root = repo(tmp_path / "repo", {"viva.toml": CRASHING_MANIFEST, "server.py": server})
    world = FakeWorld()
    world.on_spawn(r"^python server\.py$", crash_without_vector_db)
    scores, run = grade(root, world, [STARTS, QUICK_LATENCY], tmp_path)
    assert run is not None and run.service is not None
    assert not run.service.started and run.service.blame == "candidate", run.service
    assert "KeyError: 'VECTOR_DB_URL'" in run.service.log_tail
    for path in ("engineering.starts", "latency.p95"):
        score = scores[path]
        assert score.status == "scored" and score.value == 0, (path, score)
        assert "never answered" in score.explanation and "KeyError: 'VECTOR_DB_URL'" in score.explanation
        assert any("VECTOR_DB_URL" in item.excerpt for item in score.evidence), score.evidence
    assert_left_nothing_running(world)


def test_start_attempts_go_in_order_and_the_report_lists_each(tmp_path: Path) -> None:
    """The Dockerfile's `python app.py` is tried first and fails in the candidate's code; the README's command is
    tried next, in a fresh sandbox, and answers: the instances start that one."""
    dockerfile = (
        'FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\nCMD ["python", "app.py"]\n'
    )
    app_py = 'import json\n\nCONFIG = json.load(open("config.json"))  # config.json is git-ignored\n'
    root = repo(tmp_path / "repo", {"Dockerfile": dockerfile, "README.md": README, "app.py": app_py})
    world = FakeWorld()
    world.on_spawn(r"^python app\.py$", crash_without_config)
    world.on_spawn(r"^uvicorn main:app\b", serve())
    scores, run = grade(root, world, [STARTS, QUICK_LATENCY], tmp_path)
    assert run is not None and run.service is not None and run.service.started, run and run.service
    attempts = [(one.source, one.command, one.outcome, one.blame) for one in run.service.attempts]
    assert attempts == [
        ("Dockerfile", "python app.py", "failed", "candidate"),
        ("README", "uvicorn main:app --port 8000", "started", None),
    ], run.service.attempts
    assert "FileNotFoundError" in run.service.attempts[0].log_tail
    assert [app.line for app in apps(world)] == [
        "python app.py",
        "uvicorn main:app --port 8000",
        "uvicorn main:app --port 8000",  # the instance probed, in a sandbox of its own
    ]
    assert run.interface.start_command == "uvicorn main:app --port 8000"
    assert scores["engineering.starts"].value == 1.0, scores["engineering.starts"]
    assert_left_nothing_running(world)


# --- Viva's own failure ----------------------------------------------------------------------------------------


def test_without_a_base_image_every_leaf_is_not_run_with_the_reason(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo", {"README.md": README})
    world = FakeWorld(unavailable="no Docker engine reachable on this host (DockerException)")
    world.on_spawn(r"^uvicorn main:app\b", serve())
    scores, run = grade(root, world, PROBED, tmp_path)
    assert run is None
    assert set(scores) == {path for path, _, _ in PROBED}
    for path, score in scores.items():
        assert score.status == "not_run" and score.value is None, (path, score)
        assert "No sandbox available on this host: no Docker engine reachable" in score.explanation
    assert world.sandboxes == [] and world.processes == []


async def test_a_scripted_apps_client_reaches_the_sandboxs_loopback_and_nothing_else() -> None:
    """What lets the tests above trust the gateway's ledger: the app's provider calls go to the sandbox's loopback
    (there, the forwarder), and a host off it is refused as in a sandbox without a network. The transport opens only
    the stand-in loopback's Unix sockets, so a wrong one would reach the app on :8000 here, never a network."""
    world, seen = FakeWorld(), []

    async def client(process: FakeProcess) -> None:
        async with httpx.AsyncClient(transport=process.loopback_transport(), timeout=5) as http:
            seen.append((await http.get("http://127.0.0.1:8000/health")).json())
            for url in ("http://127.0.0.1:9/", "http://api.openai.com:8000/health", "http://172.17.0.1:8000/health"):
                with pytest.raises(httpx.ConnectError) as refused:
                    await http.get(url)
                seen.append(str(refused.value))

    world.on_spawn(r"^uvicorn main:app\b", serve())
    world.on_spawn(r"^client$", client)
    async with world.backend()(SandboxSpec(image="fake")) as sandbox:
        await sandbox.exec(["mkdir", "-p", "/work/data"])  # the handbook the app loads from where it runs
        await sandbox.write_file("/work/data/handbook.json", json.dumps(HANDBOOK).encode())
        await sandbox.spawn(["uvicorn", "main:app"])
        for _ in range(500):  # until uvicorn has bound its port; connections then wait in its backlog
            with contextlib.suppress(ConnectionRefusedError):
                sandbox.loopback.address(8000)
                break
            await asyncio.sleep(0.01)
        await sandbox.spawn(["client"])
        await asyncio.to_thread(world.processes[-1].wait, 10)
    assert seen == [
        {"status": "ok"},
        "[Errno 111] Connection refused",
        "[Errno 101] Network is unreachable",
        "[Errno 101] Network is unreachable",
    ]


# --- companions and setup ----------------------------------------------------------------------------------------

SEEDED_COMPOSE = """services:
  api:
    build: .
    command: uvicorn main:app --host 0.0.0.0 --port 8000
    ports: ["8000:8000"]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: handbook
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 5s
"""
SEEDED_MANIFEST = """manifest_version = 1

[app]
start = "uvicorn main:app --port 8000"
setup = ["python scripts/seed.py"]
port = 8000
health = "/health"

[query]
path = "/ask"
request = '{"question": "{question}"}'
answer = "/answer"
"""
SEED_PY = '''"""Load the handbook into Postgres (the app reads it from there)."""
import json, os, psycopg

with psycopg.connect(os.environ.get("DATABASE_URL", "postgresql://postgres:handbook@db:5432/postgres")) as db:
    for key, text in json.load(open("data/handbook.json")).items():
        db.execute("INSERT INTO sections VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, text))
'''


def test_a_seeding_setup_step_runs_only_once_the_companions_are_ready(tmp_path: Path) -> None:
    """The seed script needs the database: in every sandbox that starts the app, it runs after the pod reported its
    companions ready (played here as taking a while), and the app starts after the seed."""
    root = repo(
        tmp_path / "repo",
        {
            "docker-compose.yml": SEEDED_COMPOSE,
            "viva.toml": SEEDED_MANIFEST,
            "scripts/seed.py": SEED_PY,
            "README.md": README,
        },
    )
    world = FakeWorld()
    world.companion_start_s = 0.2
    seeded: list[str] = []

    def seed(call: Any) -> ExecResult:
        ready = [c.sandbox for c in world.calls if c.kind == "companions ready"]
        if call.sandbox.id not in ready:
            return ExecResult(2, "", "psycopg.OperationalError: connection to server at db:5432 refused\n", 0.0)
        seeded.append(call.sandbox.id)
        return ExecResult(0, "", "", 0.0)

    world.on_exec(r"^python scripts/seed\.py$", seed)
    world.on_spawn(r"^uvicorn main:app --port 8000$", serve())
    scores, run = grade(root, world, [STARTS, QUICK_LATENCY], tmp_path / "scratch")
    assert run is not None and run.service is not None and run.service.started, run and run.service
    assert scores["engineering.starts"].value == 1.0
    assert run.companions, "the pod's companions are in the report"
    assert seeded and len(seeded) == len(apps(world)), "every sandbox that started the app was seeded first"
    for sandbox in seeded:
        kinds = [
            "seed" if call.kind == "exec" and call.cmd[-1:] == ["python scripts/seed.py"] else call.kind
            for call in world.calls
            if call.sandbox == sandbox and call.kind in {"companions", "companions ready", "exec", "spawn"}
        ]
        kinds = [kind for kind in kinds if kind != "exec"]
        assert kinds.index("companions") < kinds.index("companions ready") < kinds.index("seed"), kinds
    assert_left_nothing_running(world)
