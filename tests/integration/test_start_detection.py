"""Starting projects from what their files say, in the real Docker sandbox: the fixtures in
tests/fixtures/apps/starts (their README holds the table asserted here), one per way a candidate tells how the
project starts (Dockerfile in a subfolder, an entrypoint script, compose with an env file, a Makefile target, a
Poetry script, `python -m`, a Flask command in the README), one that downloads a model at start, one broken by its
author per tier, and a command-line tool with no web service at all.

Each fixture is graded once per module, the first time a test asks for it, with a rubric naming only
`service_starts` and `latency_p95` (so the query route is exercised too)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import pytest

from grader.dynamic import DynamicOptions
from grader.dynamic.model import ServiceResult, StartAttempt
from grader.pipeline import GradeOptions, grade
from grader.profile.model import StartCandidate
from grader.report.model import GradingReport
from grader.scoring import ScoredCriterion, walk
from rubrics.loader import load_rubric_text
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import APPS, commit_all

pytestmark = pytest.mark.docker

STARTS = APPS / "starts"
RUBRIC = """
id: start-detection
version: 1
title: The project starts as its files say
criteria:
  - id: starts
    title: The service starts
    weight: 1
    check: {kind: dynamic, name: service_starts}
  - id: p95
    title: Latency
    weight: 1
    check: {kind: dynamic, name: latency_p95, params: {min_requests: 10}}
"""

Outcome = Literal["started", "candidate", "not_run"]
"""started: an attempt started (service_starts scored > 0); candidate: every attempt failed and the failure is
the candidate's (service_starts 0); not_run: Viva could not start it through no fault of the candidate."""


@dataclass(frozen=True)
class Expected:
    """One row of tests/fixtures/apps/starts/README.md."""

    outcome: Outcome
    tier: str | None = None
    source: str | None = None
    where: str | None = None
    command: str | None = None
    """The exact command; None with `command_prefix` set when the command is Viva's own guess."""
    command_prefix: str | None = None
    workdir: str = ""
    port: int | None = None
    says: tuple[str, ...] = ()
    """What the failure's reason or log must mention (case-insensitive), for the failed and not_run rows."""
    alternatives: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
    """Other acceptable winners as (tier, source, where), with the same workdir and port (poetry_script)."""


TABLE: dict[str, Expected] = {
    "docker_subdir_exec": Expected(
        "started",
        tier="packaged",
        source="Dockerfile service/Dockerfile",
        where="service/Dockerfile:12",
        command="uvicorn app.main:app --host 0.0.0.0 --port 8080",
        workdir="service",
        port=8080,
    ),
    "entrypoint_script": Expected(
        "started",
        tier="packaged",
        source="Dockerfile",
        where="Dockerfile:11",
        command="./docker-entrypoint.sh",
        port=7000,
    ),
    "compose_env_file": Expected(
        "started",
        tier="packaged",
        source="compose service api",
        where="docker-compose.yml:4",
        command="uvicorn main:app --host 0.0.0.0 --port 9000",
        port=9000,
    ),
    "makefile_run": Expected(
        "started",
        tier="documented",
        source="Makefile target run",
        where="Makefile:10",
        command="python -m uvicorn server:app --port 7100",
        workdir="src",
        port=7100,
    ),
    "poetry_script": Expected(
        "started",
        tier="documented",
        source="README",
        where="README.md:10",
        command="poetry run serve",
        port=8300,
        alternatives=(("inferred", "pyproject script serve", "pyproject.toml:17"),),
    ),
    "python_m_package": Expected(
        "started", tier="documented", source="README", where="README.md:12", command="python -m notesbot", port=8500
    ),
    "flask_readme": Expected(
        "started",
        tier="documented",
        source="README",
        where="README.md:13",
        command="flask --app wiki run --port 5050",
        port=5050,
    ),
    "downloads_model": Expected(
        "not_run",
        tier="documented",
        source="README",
        where="README.md:18",
        command="uvicorn main:app --port 8000",
        port=8000,
        says=("download", "model"),
    ),
    "broken_declared": Expected(
        "candidate",
        tier="declared",
        source="viva.toml",
        where="viva.toml:4",
        command="uvicorn api:app --host 127.0.0.1 --port 8000",
        port=8000,
        says=("ModuleNotFoundError", "retriever"),
    ),
    "broken_packaged": Expected(
        "candidate",
        tier="packaged",
        source="Dockerfile",
        where="Dockerfile:7",
        command="python app.py",
        port=8000,
        says=("FileNotFoundError", "config.json"),
    ),
    "broken_documented": Expected(
        "candidate",
        tier="documented",
        source="README",
        where="README.md:15",
        command="uvicorn service:app --port 8000",
        port=8000,
        says=("tiktoken",),
    ),
    "broken_inferred": Expected(
        "candidate",
        tier="inferred",
        source="app object",
        where="main.py:21",
        command_prefix="uvicorn main:app",
        port=8000,
        says=("ValueError", "no documents found in kb/"),
    ),
    "wrong_guess_inferred": Expected("not_run", says=("web service",)),
    "needs_ingest": Expected(
        "started", tier="documented", source="README", where="README.md:6", command="python main.py", port=8000
    ),
    "needs_vector_store": Expected(
        "not_run",
        tier="packaged",
        source="compose service api",
        where="docker-compose.yml:9",
        command="uvicorn main:app --host 0.0.0.0 --port 8000",
        port=8000,
        says=("qdrant",),
    ),
    "node_frontend": Expected(
        "not_run",
        tier="packaged",
        source="Dockerfile",
        where="Dockerfile:7",
        command="npm start",
        port=3000,
        says=("npm",),
    ),
    "git_requirement": Expected(
        "not_run",
        tier="documented",
        source="README",
        where="README.md:4",
        command="uvicorn app:app --port 8000",
        port=8000,
        says=("ragkit", "could not be installed"),
    ),
}
STARTED = [name for name, row in TABLE.items() if row.outcome == "started"]
FAILED = [name for name, row in TABLE.items() if row.outcome == "candidate"]
NOT_RUN = [name for name, row in TABLE.items() if row.outcome == "not_run"]


class Graded:
    """Each fixture graded at most once per module, on first use (so `-k compose` grades one project)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.options = GradeOptions(
            allow_local=True,
            dynamic=DynamicOptions(
                sandbox=SandboxSettings(image_source="offline"),
                cache_dir=factory.mktemp("cache"),
                time_scale=0.02,
            ),
        )
        self.rubric = load_rubric_text(RUBRIC)
        self.reports: dict[str, GradingReport] = {}

    def __getitem__(self, name: str) -> GradingReport:
        if name not in self.reports:
            repo = self.factory.mktemp(name) / "repo"
            shutil.copytree(STARTS / name, repo)
            commit_all(repo)
            self.reports[name] = grade(str(repo), self.rubric, self.factory.mktemp(f"{name}-scratch"), self.options)
        return self.reports[name]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return Graded(tmp_path_factory)


def _service(report: GradingReport) -> ServiceResult | None:
    assert report.dynamic is not None, "the dynamic checks did not run"
    return report.dynamic.service


def _attempts(report: GradingReport) -> list[StartAttempt]:
    service = _service(report)
    return service.attempts if service is not None else []


def _winner(report: GradingReport) -> StartAttempt:
    """The attempt that started (the last, when one did), else the first one tried."""
    attempts = _attempts(report)
    assert attempts, f"no start was attempted: {_service(report)}"
    started = [attempt for attempt in attempts if attempt.outcome == "started"]
    if started:
        assert started == [attempts[-1]], [(a.source, a.outcome) for a in attempts]
        return started[0]
    return attempts[0]


def _leaf(report: GradingReport, path: str) -> ScoredCriterion:
    return next(item for item, _ in walk(report.criteria, 0) if item.path == path)


def _candidates(report: GradingReport) -> list[StartCandidate]:
    return msgspec.convert(report.profile.get("starts", []), list[StartCandidate])


def _failure_text(report: GradingReport) -> str:
    service = _service(report)
    parts = [_leaf(report, "starts").explanation]
    if service is not None:
        parts += [service.reason, service.log_tail]
        parts += [text for attempt in service.attempts for text in (attempt.reason, attempt.log_tail)]
    return "\n".join(parts).lower()


def _summary(report: GradingReport) -> str:
    return "\n".join(
        f"{a.tier} | {a.source} | {a.where} | {a.command} | {a.workdir!r} | {a.port} | {a.outcome} | {a.blame} | "
        f"{a.reason[:200]}"
        for a in _attempts(report)
    )


@pytest.mark.parametrize("name", [name for name in TABLE if TABLE[name].tier is not None])
def test_the_attempt_that_counts_is_the_one_the_table_names(graded: Graded, name: str) -> None:
    report, row = graded[name], TABLE[name]
    winner = _winner(report)
    accepted = {(row.tier, row.source, row.where), *row.alternatives}
    assert (winner.tier, winner.source, winner.where) in accepted, _summary(report)
    if (winner.tier, winner.source, winner.where) == (row.tier, row.source, row.where):
        if row.command is not None:
            assert winner.command == row.command, _summary(report)
        else:
            assert row.command_prefix is not None and winner.command.startswith(row.command_prefix), _summary(report)
    assert (winner.workdir, winner.port) == (row.workdir, row.port), _summary(report)


@pytest.mark.parametrize("name", STARTED)
def test_a_project_that_says_how_it_starts_is_started_that_way_and_scored(graded: Graded, name: str) -> None:
    report = graded[name]
    service = _service(report)
    assert service is not None and service.started, _summary(report)
    assert service.blame is None
    assert _winner(report).outcome == "started" and _winner(report).blame is None
    starts = _leaf(report, "starts")
    assert starts.status == "scored" and starts.score is not None and starts.score > 0, starts.explanation


@pytest.mark.parametrize("name", FAILED)
def test_a_project_its_author_broke_scores_0_with_its_own_error(graded: Graded, name: str) -> None:
    report, row = graded[name], TABLE[name]
    service = _service(report)
    assert service is not None and not service.started, _summary(report)
    assert service.blame == "candidate", _summary(report)
    assert all(attempt.outcome != "started" for attempt in service.attempts)
    assert _winner(report).outcome == "failed" and _winner(report).blame == "candidate", _summary(report)
    text = _failure_text(report)
    for words in row.says:
        assert words.lower() in text, f"{words!r} not in the failure: {text[-2000:]}"
    for path in ("starts", "p95"):
        leaf = _leaf(report, path)
        assert leaf.status == "scored" and leaf.score == 0.0, (path, leaf.explanation)


@pytest.mark.parametrize("name", NOT_RUN)
def test_a_project_viva_cannot_start_is_not_run_never_0(graded: Graded, name: str) -> None:
    report, row = graded[name], TABLE[name]
    service = _service(report)
    assert service is None or not service.started, _summary(report)
    assert service is None or service.blame != "candidate", _summary(report)
    assert all(attempt.outcome != "started" and attempt.blame != "candidate" for attempt in _attempts(report))
    text = _failure_text(report)
    for words in row.says:
        assert words.lower() in text, f"{words!r} not in the reason: {text[-2000:]}"
    for path in ("starts", "p95"):
        leaf = _leaf(report, path)
        assert leaf.status == "not_run" and leaf.score is None, (path, leaf.status, leaf.score, leaf.explanation)


def test_the_model_download_is_viva_s_limitation(graded: Graded) -> None:
    report = graded["downloads_model"]
    service = _service(report)
    assert service is not None and service.blame == "viva", _summary(report)
    assert _winner(report).blame == "viva", _summary(report)


def test_the_entrypoint_script_gets_the_port_from_env_port(graded: Graded) -> None:
    report = graded["entrypoint_script"]
    (dockerfile,) = [c for c in _candidates(report) if c.tier == "packaged" and c.source == "Dockerfile"]
    assert dockerfile.env.get("PORT") == "7000", dockerfile  # the attempt's port (7000) is in the table test
    assert dockerfile.workdir == ""  # COPY . /srv/bot, then WORKDIR /srv/bot: the repository root


def test_compose_env_file_values_come_from_the_example_file_with_a_note(graded: Graded) -> None:
    report = graded["compose_env_file"]
    (compose,) = [c for c in _candidates(report) if c.source == "compose service api"]
    assert compose.env.get("APP_TITLE") == "Recipe helper", compose
    assert compose.port == 9000 and not compose.services, compose
    assert any(".env.example" in note for note in compose.notes), compose.notes
    assert "APP_TITLE" not in " ".join(_winner(report).placeholders)  # the example's value, not a placeholder


def test_the_makefile_target_runs_its_prerequisite_first(graded: Graded) -> None:
    report = graded["makefile_run"]
    (target,) = [c for c in _candidates(report) if c.source == "Makefile target run"]
    assert target.tier == "documented" and target.workdir == "src", target
    # run from the Makefile's directory, the root: setup commands run from `workdir` (src), so one level up
    assert target.setup in (["cd .. && python scripts/build_index.py"], ["python scripts/build_index.py"]), target
    assert target.port == 7100


def test_a_command_line_tool_offers_no_web_service_to_start(graded: Graded) -> None:
    report = graded["wrong_guess_inferred"]
    assert not any(c.tier in ("declared", "packaged") for c in _candidates(report))
    assert not any(attempt.outcome == "started" for attempt in _attempts(report)), _summary(report)


def test_the_table_covers_every_fixture_folder() -> None:
    folders = {path.name for path in STARTS.iterdir() if path.is_dir()}
    assert folders == set(TABLE)
    readme = (STARTS / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{name}` |" in readme for name in TABLE)
    assert "They are candidate code, not Viva's: the linters skip this folder." in readme
    assert list(STARTS.rglob("viva.toml")) == [STARTS / "broken_declared" / "viva.toml"]


def test_the_fixtures_never_name_viva_graders_or_sandboxes() -> None:
    for path in STARTS.rglob("*"):
        if path.is_file() and path.parent != STARTS:
            text = path.read_text(encoding="utf-8").lower()
            assert not any(word in text for word in ("viva", "grader", "sandbox")), path
