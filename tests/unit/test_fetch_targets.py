"""Target parsing without I/O beyond asking whether a local path exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import TargetRefused
from grader.fetch import parse_target


@pytest.mark.parametrize(
    ("target", "url", "ref"),
    [
        ("octo/rag-app", "https://github.com/octo/rag-app.git", None),
        ("octo/rag-app@v1.2", "https://github.com/octo/rag-app.git", "v1.2"),
        ("octo/rag-app.git@feature/x", "https://github.com/octo/rag-app.git", "feature/x"),
        ("https://github.com/octo/rag-app", "https://github.com/octo/rag-app", None),
        ("https://github.com/octo/rag-app.git@0a1b2c3", "https://github.com/octo/rag-app.git", "0a1b2c3"),
        ("https://gitlab.example.com:8443/g/p.git", "https://gitlab.example.com:8443/g/p.git", None),
    ],
)
def test_remote_targets(target: str, url: str, ref: str | None) -> None:
    parsed = parse_target(target, allow_local=False)
    assert (parsed.kind, parsed.url, parsed.ref) == ("remote", url, ref)


def test_allow_list_is_case_insensitive() -> None:
    assert parse_target("https://GitHub.com/o/n", allow_local=False, allowed_hosts=["github.com"]).kind == "remote"


def test_existing_local_path_wins_over_shorthand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "octo" / "rag-app").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert parse_target("octo/rag-app", allow_local=True).kind == "local_dir"
    assert parse_target("octo/rag-app", allow_local=False).kind == "remote"


def test_local_path_containing_an_at_sign(tmp_path: Path) -> None:
    folder = tmp_path / "me@work"
    folder.mkdir()
    parsed = parse_target(str(folder), allow_local=True)
    assert (parsed.kind, parsed.ref) == ("local_dir", None)


def test_ref_on_a_plain_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TargetRefused, match="not a git repository"):
        parse_target(f"{tmp_path}@main", allow_local=True)


def test_file_url_for_local_repositories(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    parsed = parse_target(tmp_path.as_uri() + "@main", allow_local=True)
    assert (parsed.kind, parsed.ref) == ("local_git", "main")
