"""What Viva tells a candidate to add works, and an operator's model cache lets an app that downloads a model at
start be graded — each shown by grading a fixture in the real Docker sandbox.

- The suggested viva.toml paragraph of a project Viva started from its Dockerfile, written into that project as
  its viva.toml, starts it again — now as the candidate's own declared start, with the same command.
- `downloads_model` fetches a sentence-transformers config from the Hub at import: without a network that is Viva's
  limitation (not_run); with `VIVA_SANDBOX_MODEL_CACHE_DIR` pointing at a cache that holds it (a tiny model made
  here, in the Hub's cache layout), the app starts and answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.dynamic import DynamicOptions
from grader.pipeline import GradeOptions, grade
from grader.report.model import GradingReport
from rubrics.loader import load_rubric_text
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import APPS, commit_all

pytestmark = pytest.mark.docker

RUBRIC = load_rubric_text(
    "id: starts\nversion: 1\ntitle: Starts\ncriteria:\n"
    "  - {id: starts, title: The service starts, weight: 1, check: {kind: dynamic, name: service_starts}}\n"
)
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "fa97f6e7cb1a59073dff9e6b13e2715cf7475ac9"


def _grade(repo: Path, scratch: Path, cache: Path, model_cache: str = "") -> GradingReport:
    sandbox = SandboxSettings(image_source="offline", model_cache_dir=model_cache)
    options = GradeOptions(allow_local=True, dynamic=DynamicOptions(sandbox=sandbox, cache_dir=cache, time_scale=0.02))
    return grade(str(repo), RUBRIC, scratch, options)


def _fixture(name: str, into: Path) -> Path:
    repo = into / name
    shutil.copytree(APPS / "starts" / name, repo)
    commit_all(repo)
    return repo


def test_the_suggested_viva_toml_starts_the_project_as_its_own_declared_start(tmp_path: Path) -> None:
    repo = _fixture("docker_subdir_exec", tmp_path)
    detected = _grade(repo, tmp_path / "first", tmp_path / "cache")
    assert detected.dynamic is not None and detected.dynamic.service is not None
    service = detected.dynamic.service
    assert service.started and service.attempts[-1].tier == "packaged", service
    suggestion = service.suggestion
    assert 'workdir = "service"' in suggestion and "port = 8080" in suggestion, suggestion

    (repo / "viva.toml").write_text(suggestion + "\n")
    commit_all(repo, "add the viva.toml Viva suggested")
    declared = _grade(repo, tmp_path / "second", tmp_path / "cache")
    assert declared.dynamic is not None and declared.dynamic.service is not None
    again = declared.dynamic.service
    assert again.started, again
    assert [(attempt.tier, attempt.command) for attempt in again.attempts] == [
        ("declared", service.attempts[-1].command)
    ]
    assert not declared.profile.get("manifest_problems"), declared.profile


def _tiny_model_cache(root: Path) -> Path:
    """The Hugging Face hub cache layout, holding only the file the app reads: models--<org>--<name>/refs/main
    names a snapshot, and the snapshot holds config.json."""
    model = root / "hub" / f"models--{MODEL.replace('/', '--')}"
    snapshot = model / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"hidden_size": 16, "model_type": "bert"}))
    (model / "refs").mkdir()
    (model / "refs" / "main").write_text(REVISION)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the sandbox's user reads it through a read-only mount
    return root


def test_a_model_downloaded_at_start_is_not_run_without_a_cache_and_starts_with_one(tmp_path: Path) -> None:
    repo = _fixture("downloads_model", tmp_path)
    offline = _grade(repo, tmp_path / "without", tmp_path / "cache")
    (leaf,) = offline.criteria
    assert leaf.status == "not_run" and "downloads models" in leaf.explanation, leaf.explanation
    assert offline.dynamic is not None and offline.dynamic.service is not None
    assert offline.dynamic.service.blame == "viva"

    cache = _tiny_model_cache(tmp_path / "models")
    cached = _grade(repo, tmp_path / "with", tmp_path / "cache", model_cache=str(cache))
    assert cached.dynamic is not None and cached.dynamic.service is not None
    assert cached.dynamic.service.started, cached.dynamic.service
    (leaf,) = cached.criteria
    assert leaf.status == "scored" and leaf.score is not None and leaf.score > 0, leaf.explanation
    assert "hidden size 16" in cached.dynamic.service.log_tail


def test_an_app_that_answers_only_once_it_holds_a_document_is_fed_one_through_its_ingest_route(
    tmp_path: Path,
) -> None:
    repo = _fixture("needs_ingest", tmp_path)
    report = _grade(repo, tmp_path / "scratch", tmp_path / "cache")
    assert report.dynamic is not None and report.dynamic.service is not None
    found = report.dynamic.interface
    assert found.query_path == "/ask" and found.ingest_path == "/documents", found
    assert report.dynamic.service.first_query_status == 200, report.dynamic.service
    assert any("once a document was added through POST /documents" in note for note in found.notes), found.notes
    (leaf,) = report.criteria
    assert leaf.score == 1.0, leaf.explanation
