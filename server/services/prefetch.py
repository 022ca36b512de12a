"""A private repository cloned by the web process that received its token, for a job any worker can grade.

A token lives only in the memory of the process it was sent to: never in the database, a job's arguments, a log or
a sandbox. When that process does not grade (`viva serve --no-worker`), or the job engine may hand the job to a worker
on another machine (Procrastinate), the web process clones the repository at once, with the token, into the shared
directory (`VIVA_SHARED_DIR/clones/<key>/repo`, a git checkout whose config holds no credential), forgets the
token, and queues a job that grades that snapshot. The report still names the repository's URL and commit.

A clone that fails (a wrong token, no such repository, over the size limits) is the candidate's to fix and is
answered at once, before anything is queued.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import msgspec

from grader.errors import GraderError
from grader.fetch import fetch
from server.errors import InvalidInput
from server.settings import Settings

_KEY_BYTES = 16


class Prefetched(msgspec.Struct, frozen=True):
    """What the clone recorded, beside the snapshot: the report names these, not the snapshot's path."""

    target: str
    commit: str | None
    ref: str | None


def clones_path(settings: Settings) -> Path:
    return settings.shared_path / "clones"


def clone_now(target: str, token: str, settings: Settings, *, source: str | None = None) -> str:
    """Clone `target` with `token` into the shared directory and return the snapshot's key. `source` is where to
    clone from when it is not `target` itself (a test fixture's directory); InvalidInput when the clone fails."""
    key = secrets.token_hex(_KEY_BYTES)
    home = clones_path(settings) / key
    home.mkdir(parents=True)
    limits = msgspec.structs.replace(settings.fetch, allowed_hosts=list(settings.submissions.hosts))
    try:
        fetched = fetch(source or target, home, limits, token=token, allow_local=source is not None)
    except GraderError as failure:
        shutil.rmtree(home, ignore_errors=True)
        raise InvalidInput(f"the repository could not be cloned with that token: {failure}") from None
    shutil.rmtree(home / "git-home", ignore_errors=True)  # git's scratch home: nothing the grading needs
    (home / "meta.json").write_bytes(msgspec.json.encode(Prefetched(target, fetched.commit, fetched.ref)))
    return key


def prefetched_repo(settings: Settings, key: str) -> tuple[Path, Prefetched]:
    """The snapshot to grade and what the clone recorded; FileNotFoundError when it is gone."""
    if not key.isalnum() or len(key) != 2 * _KEY_BYTES:
        raise FileNotFoundError(key)
    home = clones_path(settings) / key
    meta = msgspec.json.decode((home / "meta.json").read_bytes(), type=Prefetched)
    return home / "repo", meta


def forget(settings: Settings, key: str) -> None:
    """Remove a graded (or abandoned) clone: the graded snapshot itself is kept with the submission."""
    if key.isalnum() and len(key) == 2 * _KEY_BYTES:
        shutil.rmtree(clones_path(settings) / key, ignore_errors=True)
