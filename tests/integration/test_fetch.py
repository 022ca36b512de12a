"""Fetching with real git: refs, commits, limits checked before checkout, symlinks, hooks, submodules, tokens."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from grader.errors import FetchError, FetchLimitExceeded, TargetRefused
from grader.fetch import FetchLimits, fetch, parse_target
from tests.fixtures import hostile_fetch, repos

LOCAL = {"allow_local": True}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A repository with two commits on main, a tag on the first, and a branch `feature/x` with a third."""
    repo = tmp_path / "source"
    repos.write(repo, {"app.py": "VERSION = 1\n"})
    repos.commit_all(repo, "one")
    git(repo, "tag", "v1")
    repos.write(repo, {"app.py": "VERSION = 2\n"})
    repos.commit_all(repo, "two")
    git(repo, "checkout", "-q", "-b", "feature/x")
    repos.write(repo, {"app.py": "VERSION = 3\n"})
    repos.commit_all(repo, "three")
    git(repo, "checkout", "-q", "main")
    return repo


def version(fetched_root: str) -> str:
    return (Path(fetched_root) / "app.py").read_text().strip()


def test_default_branch_and_commit_recorded(source: Path, tmp_path: Path) -> None:
    fetched = fetch(str(source), tmp_path / "s", FetchLimits(), **LOCAL)
    assert fetched.source_kind == "local_git"
    assert fetched.commit == git(source, "rev-parse", "main")
    assert version(fetched.root) == "VERSION = 2"
    assert fetched.dirty is False


@pytest.mark.parametrize(("ref", "expected"), [("v1", "VERSION = 1"), ("feature/x", "VERSION = 3")])
def test_tag_and_branch(source: Path, tmp_path: Path, ref: str, expected: str) -> None:
    fetched = fetch(f"{source}@{ref}", tmp_path / "s", FetchLimits(), **LOCAL)
    assert version(fetched.root) == expected
    assert fetched.ref == ref


def test_commit_sha(source: Path, tmp_path: Path) -> None:
    first = git(source, "rev-parse", "v1")
    fetched = fetch(f"{source}@{first}", tmp_path / "s", FetchLimits(), **LOCAL)
    assert fetched.commit == first and version(fetched.root) == "VERSION = 1"


def test_missing_ref_is_a_clear_error(source: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no-such-branch"):
        fetch(f"{source}@no-such-branch", tmp_path / "s", FetchLimits(), **LOCAL)


def test_dirty_working_tree_is_reported_not_graded(source: Path, tmp_path: Path) -> None:
    (source / "app.py").write_text("VERSION = 'uncommitted'\n")
    fetched = fetch(str(source), tmp_path / "s", FetchLimits(), **LOCAL)
    assert fetched.dirty is True and version(fetched.root) == "VERSION = 2"
    assert any("uncommitted" in note for note in fetched.notes)


def test_plain_directory_is_copied_without_commit(tmp_path: Path) -> None:
    repos.write(tmp_path / "plain", {"a.py": "x = 1\n", "sub/b.txt": "b\n", ".git-not/keep": "k\n"})
    fetched = fetch(str(tmp_path / "plain"), tmp_path / "s", FetchLimits(), **LOCAL)
    assert fetched.source_kind == "local_dir" and fetched.commit is None
    assert (Path(fetched.root) / "sub" / "b.txt").read_text() == "b\n"
    assert fetched.file_count == 3


def test_a_plain_directorys_scripts_stay_executable_as_git_would_keep_them(tmp_path: Path) -> None:
    repos.write(tmp_path / "plain", {"entrypoint.sh": "#!/bin/sh\nexec uvicorn app:app\n", "app.py": "x = 1\n"})
    os.chmod(tmp_path / "plain" / "entrypoint.sh", 0o775)
    os.chmod(tmp_path / "plain" / "app.py", 0o664)
    fetched = fetch(str(tmp_path / "plain"), tmp_path / "s", FetchLimits(), **LOCAL)
    assert stat.S_IMODE((Path(fetched.root) / "entrypoint.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((Path(fetched.root) / "app.py").stat().st_mode) == 0o644


@pytest.mark.parametrize("kind", ["git", "dir"])
def test_symlinks_never_leave_the_tree(tmp_path: Path, host_secret: Path, opened_paths: list[str], kind: str) -> None:
    repo = tmp_path / "links"
    hostile_fetch.make_symlink_repo(repo, host_secret)
    if kind == "dir":
        subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)
    fetched = fetch(str(repo), tmp_path / "s", FetchLimits(), **LOCAL)
    root = Path(fetched.root)
    assert not [p for p in root.rglob("*") if p.is_symlink()], "the snapshot must contain no symlinks"
    assert not (root / "secret.txt").exists() and not (root / "relative-escape.txt").exists()
    assert (root / "GUIDE.md").read_text() == "guide\n"  # an in-tree link becomes a copy of its target
    reasons = {item.path: item.reason for item in fetched.skipped}
    assert "outside the repository" in reasons["secret.txt"] and "outside" in reasons["relative-escape.txt"]
    assert "directory" in reasons["docs-dir"] and "symlinks" in reasons["loop-a"] and "not exist" in reasons["dangling"]
    assert str(host_secret) not in opened_paths
    assert "HOST-SECRET" not in "".join(
        p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
    )


def test_hundred_thousand_files_refused_before_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "many"
    hostile_fetch.make_many_files_repo(repo, 100_000)
    started = time.perf_counter()
    with pytest.raises(FetchLimitExceeded, match=r"100,000 files; the limit is 20,000 \(VIVA_FETCH_MAX_FILES\)"):
        fetch(str(repo), tmp_path / "s", FetchLimits(), **LOCAL)
    assert time.perf_counter() - started < 20
    assert not list((tmp_path / "s" / "repo").glob("d*")), "nothing may be checked out"


def test_local_directory_file_count_refused_while_counting(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for index in range(600):
        (folder / f"f{index}").write_text("x")
    with pytest.raises(FetchLimitExceeded, match="more than 500 files"):
        fetch(str(folder), tmp_path / "s", FetchLimits(max_files=500), **LOCAL)
    assert not (tmp_path / "s" / "repo").exists()


def test_huge_file_skipped_with_a_note(tmp_path: Path) -> None:
    repo = tmp_path / "huge"
    hostile_fetch.make_huge_file_repo(repo, 60_000_000)
    fetched = fetch(str(repo), tmp_path / "s", FetchLimits(), **LOCAL)
    assert not (Path(fetched.root) / "model.bin").exists()
    assert "VIVA_FETCH_MAX_FILE_BYTES" in next(item.reason for item in fetched.skipped if item.path == "model.bin")
    assert (Path(fetched.root) / "README.md").exists()


def test_total_size_limit(tmp_path: Path) -> None:
    repo = tmp_path / "big"
    repos.write(repo, {f"f{index}.txt": "x" * 1000 for index in range(20)})
    repos.commit_all(repo)
    with pytest.raises(FetchLimitExceeded, match="VIVA_FETCH_MAX_TOTAL_BYTES"):
        fetch(str(repo), tmp_path / "s", FetchLimits(max_total_bytes=10_000), **LOCAL)


def test_timeout_names_the_setting(source: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchLimitExceeded, match="VIVA_FETCH_TIMEOUT_SECONDS"):
        fetch(str(source), tmp_path / "s", FetchLimits(timeout_seconds=0.0001), **LOCAL)


def test_hooks_of_the_source_repository_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    repo = tmp_path / "hooked"
    hostile_fetch.make_hook_repo(repo, marker)
    fetched = fetch(str(repo), tmp_path / "s", FetchLimits(), **LOCAL)
    assert not marker.exists()
    assert (Path(fetched.root) / "README.md").exists()


def test_submodules_are_not_fetched(tmp_path: Path) -> None:
    repo = tmp_path / "outer"
    hostile_fetch.make_submodule_repo(repo, tmp_path / "inner")
    fetched = fetch(str(repo), tmp_path / "s", FetchLimits(), **LOCAL)
    assert not (Path(fetched.root) / "vendor" / "inner" / "inner.txt").exists()
    assert any(item.path == "vendor/inner" and "submodule" in item.reason for item in fetched.skipped)


def test_token_never_reaches_argv_config_or_results(source: Path, tmp_path: Path) -> None:
    """A `git` wrapper first on PATH records every argv; the token must be in none of them."""
    log = tmp_path / "argv.log"
    shim = tmp_path / "bin"
    shim.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    (shim / "git").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real_git} "$@"\n')
    (shim / "git").chmod(stat.S_IRWXU)
    token = "ghp_SECRETTOKEN1234567890"
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{shim}:{old_path}"
    try:
        fetched = fetch(str(source), tmp_path / "s", FetchLimits(), token=token, **LOCAL)
    finally:
        os.environ["PATH"] = old_path
    assert log.read_text().strip(), "the wrapper saw no git call: the test would prove nothing"
    assert token not in log.read_text()
    assert token not in (Path(fetched.root) / ".git" / "config").read_text()
    assert token not in repr(fetched)


def test_credentials_in_a_url_are_stripped_from_what_is_recorded() -> None:
    parsed = parse_target("https://user:hunter2@github.com/o/n.git@main", allow_local=False)
    assert parsed.display == "https://github.com/o/n.git@main" and "hunter2" not in parsed.url
    assert parsed.password == "hunter2" and parsed.ref == "main"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ext::sh -c touch% /tmp/pwned", "remote helpers"),
        ("fd::17", "remote helpers"),
        ("git@github.com:o/n.git", "ssh"),
        ("ssh://github.com/o/n", "ssh:// transport"),
        ("git://github.com/o/n", "git:// transport"),
        ("http://github.com/o/n", "plain http"),
        ("--upload-pack=touch /tmp/pwned", "start with '-'"),
        ("-uhelp", "start with '-'"),
        ("https://evil.example/o/n.git", "not on the allow-list"),
        ("/etc", "local paths are for the CLI"),
        ("file:///etc", "file:// targets are for the CLI"),
        ("o/n@--force", "not a valid branch"),
        ("o/n@a..b", "not a valid branch"),
        ("", "empty"),
        ("o/n\n--help", "control characters"),
    ],
)
def test_refused_targets(target: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(TargetRefused, match=message):
        fetch(target, tmp_path / "s", FetchLimits(allowed_hosts=["github.com"]))
    assert not (tmp_path / "s").exists(), "a refused target touches nothing"
