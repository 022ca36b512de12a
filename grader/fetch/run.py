"""fetch(): parse the target, bring the tree into the scratch directory within the limits, record the commit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from grader.errors import FetchError
from grader.fetch.gitops import GitRunner, basic_auth_header
from grader.fetch.model import FetchedRepo, FetchLimits, ParsedTarget, SkippedFile
from grader.fetch.snapshot import (
    TreeListing,
    copy_local_dir,
    enforce_limits,
    list_local_dir,
    materialise_links,
)
from grader.fetch.targets import parse_target

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
# Keys in a local repository's own config that make `git status` run a command of the repository's choosing.
_COMMAND_KEYS = re.compile(r"^(filter\..*\.(clean|smudge|process)|core\.fsmonitor|diff\..*\.(textconv|command))$")


def fetch(
    target: str, scratch_dir: Path, limits: FetchLimits, *, token: str | None = None, allow_local: bool = False
) -> FetchedRepo:
    """Fetch `target` into `scratch_dir/repo`. Raises TargetRefused, FetchLimitExceeded or FetchError."""
    parsed = parse_target(target, allow_local=allow_local, allowed_hosts=limits.allowed_hosts)
    dest = scratch_dir / "repo"
    if dest.exists():
        raise FetchError(f"scratch directory already holds a repository: {dest}")
    if parsed.kind == "local_dir":
        return _copy_directory(parsed, dest, limits)
    return _clone(parsed, dest, scratch_dir / "git-home", limits, token)


def _copy_directory(parsed: ParsedTarget, dest: Path, limits: FetchLimits) -> FetchedRepo:
    source = Path(parsed.url)
    listing = list_local_dir(source, limits)
    too_large = enforce_limits(listing, limits)
    dest.mkdir(parents=True)
    copy_local_dir(source, dest, listing, too_large)
    return _result(
        parsed,
        dest,
        listing,
        too_large,
        commit=None,
        notes=["not a git repository: the directory was copied as it is, and no commit is recorded"],
    )


def _clone(parsed: ParsedTarget, dest: Path, home: Path, limits: FetchLimits, token: str | None) -> FetchedRepo:
    secret = token or parsed.password
    header = basic_auth_header(parsed.username, secret) if secret else None
    url = parsed.url if parsed.kind == "remote" else Path(parsed.url).as_uri()
    dest.mkdir(parents=True)
    git = GitRunner(dest, home, limits.timeout_seconds, allow_file=parsed.kind == "local_git", auth_header=header)
    git.run("init", "--quiet")
    git.run("remote", "add", "origin", url)
    commit = _fetch_commit(git, parsed.ref)
    listing = _list_tree(git, commit)
    too_large = enforce_limits(listing, limits)
    _checkout(git, dest, commit, listing, too_large)
    materialise_links(dest, listing, too_large)
    notes: list[str] = []
    dirty = False
    if parsed.kind == "local_git":
        dirty, note = _local_dirty(Path(parsed.url), home)
        notes += [note] if note else []
    return _result(parsed, dest, listing, too_large, commit=commit, dirty=dirty, notes=notes)


def _fetch_commit(git: GitRunner, ref: str | None) -> str:
    """Fetch one commit shallowly: the default branch, a branch or tag, or a commit id."""
    wanted = ref or "HEAD"
    try:
        git.run("fetch", "--quiet", "--depth", "1", "--no-tags", "--no-recurse-submodules", "origin", wanted)
    except FetchError:
        if ref is None or not _SHA.match(ref):
            raise FetchError(
                f"could not fetch {wanted!r}: no such branch, tag or commit, or the clone failed"
            ) from None
        # Some servers refuse a commit id in a shallow fetch; fetch everything and look the commit up.
        git.run("fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "origin")
        try:
            return git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except FetchError:
            raise FetchError(f"commit {ref!r} is not in the repository") from None
    return git.run("rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()


def _list_tree(git: GitRunner, commit: str) -> TreeListing:
    listing = TreeListing()
    output = git.run("ls-tree", "-r", "-l", "-z", "--full-tree", commit)
    for record in output.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, _object_id, size = meta.split(maxsplit=3)
        if kind == "commit":
            listing.skipped.append(SkippedFile(path, "submodule: not fetched"))
        elif mode == "120000":
            listing.links[path] = ""  # the target text is read after checkout (core.symlinks=false writes it)
        else:
            listing.files[path] = int(size.strip())
    return listing


def _checkout(git: GitRunner, dest: Path, commit: str, listing: TreeListing, too_large: list[str]) -> None:
    """Write the tree into the worktree: every path but the too-large files, symlinks as plain text files."""
    git.run("read-tree", commit)
    paths = sorted((set(listing.files) - set(too_large)) | set(listing.links))
    if paths:
        path_list = dest.parent / "checkout-paths"
        path_list.write_bytes(b"\0".join(path.encode("utf-8", "surrogateescape") for path in paths) + b"\0")
        git.run("checkout-index", "--force", "-z", "--stdin", stdin_file=path_list)
        path_list.unlink()
    for link in listing.links:
        placeholder = dest / link
        listing.links[link] = placeholder.read_text(encoding="utf-8", errors="replace") if placeholder.is_file() else ""


def _local_dirty(source: Path, home: Path) -> tuple[bool, str | None]:
    """Whether a local repository has uncommitted changes, asked without letting its config run commands."""
    config = source / ".git" / "config"
    try:
        keys = subprocess.run(
            ["git", "config", "--file", str(config), "--name-only", "--list"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        keys = []
    if any(_COMMAND_KEYS.match(key) for key in keys):
        return False, "uncommitted changes were not checked: the repository's config names external commands"
    git = GitRunner(source, home, 30, allow_file=True)
    try:
        status = git.run("--no-optional-locks", "status", "--porcelain", "--untracked-files=normal")
    except FetchError:
        return False, "uncommitted changes could not be checked"
    if status.strip():
        return True, "the local repository has uncommitted changes; only the committed state was graded"
    return False, None


def _result(
    parsed: ParsedTarget,
    dest: Path,
    listing: TreeListing,
    too_large: list[str],
    *,
    commit: str | None,
    dirty: bool = False,
    notes: list[str] | None = None,
) -> FetchedRepo:
    kept = [path for path in listing.files if path not in too_large]
    return FetchedRepo(
        root=str(dest.resolve()),
        target=parsed.display,
        source_kind=parsed.kind,
        ref=parsed.ref,
        commit=commit,
        file_count=len(kept),
        total_bytes=sum(listing.files[path] for path in kept),
        dirty=dirty,
        skipped=listing.skipped,
        notes=notes or [],
    )
