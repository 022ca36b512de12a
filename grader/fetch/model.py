"""Plain data for fetching: the limits (a settings section) and what a fetch produced."""

from __future__ import annotations

from typing import Literal

import msgspec

SourceKind = Literal["remote", "local_git", "local_dir"]


class FetchLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Limits on what a fetch may bring in. Read from VIVA_FETCH_* by server.settings."""

    max_files: int = 20_000
    max_total_bytes: int = 300_000_000
    max_file_bytes: int = 50_000_000
    """Larger files are left out of the snapshot with a note; the fetch goes on."""
    timeout_seconds: float = 120.0
    allowed_hosts: list[str] | None = None
    """Hosts an https target may name; None allows any (the CLI). The web app passes its allow-list."""


class ParsedTarget(msgspec.Struct, frozen=True):
    """A target understood but not yet fetched. `url` carries no credentials; `display` is safe to record."""

    kind: SourceKind
    url: str
    display: str
    ref: str | None = None
    username: str | None = None
    password: str | None = None


class SkippedFile(msgspec.Struct, frozen=True):
    path: str
    reason: str


class FetchedRepo(msgspec.Struct, frozen=True):
    """A snapshot of the repository at one commit, in the scratch directory the caller owns.

    For a local git repository the graded state is exactly its HEAD commit (or the ref asked for),
    cloned; uncommitted changes are not graded and `dirty` says whether there were any.
    """

    root: str
    target: str
    source_kind: SourceKind
    ref: str | None
    commit: str | None
    file_count: int
    total_bytes: int
    dirty: bool = False
    skipped: list[SkippedFile] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
