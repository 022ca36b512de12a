"""The corpus bench's cache key follows the code that grades, not the commit: a docs-only commit reuses every
result, a change to grader/ (committed or not) grades again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import corpus_bench


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder in ("grader", "rubrics", "sandboxes", "llm", "interviewer", "server", "docs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text(f"# {folder}\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'viva'\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(corpus_bench, "ROOT", tmp_path)
    return tmp_path


def _commit(root: Path, message: str) -> None:
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def test_a_docs_only_commit_keeps_the_key(project: Path) -> None:
    before = corpus_bench.viva_key()
    (project / "docs" / "NOTES.md").write_text("a note\n")
    _commit(project, "docs")
    assert corpus_bench.viva_key() == before
    assert before.startswith("code-")


def test_grading_code_changes_the_key_dirty_then_committed(project: Path) -> None:
    before = corpus_bench.viva_key()
    (project / "grader" / "rules.py").write_text("RULE = 1\n")
    dirty = corpus_bench.viva_key()
    assert dirty.startswith(before + "-dirty-")
    _commit(project, "a rule")
    committed = corpus_bench.viva_key()
    assert committed != before and "dirty" not in committed
