"""Turning a git tree or a local directory into a snapshot with no symlinks, within the limits.

A symlink whose target stays inside the tree and is a regular file becomes a copy of that file;
one that leaves the tree, points at a directory, dangles or loops is dropped with a note. Nothing
outside the tree is ever opened: targets are resolved lexically against the tree's own listing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import FetchLimitExceeded
from grader.fetch.model import FetchLimits, SkippedFile
from grader.tree import iter_entries

MAX_LINK_HOPS = 8
SKIPPED_DIRS = {".git"}


@dataclass
class TreeListing:
    """What a tree holds, before anything is written: regular files with sizes, symlinks with targets."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)


def enforce_limits(listing: TreeListing, limits: FetchLimits) -> list[str]:
    """Raise when the tree is over the file-count or total-size limit; return the paths too large to keep."""
    count = len(listing.files) + len(listing.links)
    if count > limits.max_files:
        raise FetchLimitExceeded(
            f"repository has {count:,} files; the limit is {limits.max_files:,} (VIVA_FETCH_MAX_FILES)"
        )
    too_large = sorted(path for path, size in listing.files.items() if size > limits.max_file_bytes)
    total = sum(size for path, size in listing.files.items() if size <= limits.max_file_bytes)
    if total > limits.max_total_bytes:
        raise FetchLimitExceeded(
            f"repository holds {total:,} bytes; the limit is {limits.max_total_bytes:,} (VIVA_FETCH_MAX_TOTAL_BYTES)"
        )
    for path in too_large:
        listing.skipped.append(
            SkippedFile(
                path,
                f"{listing.files[path]:,} bytes is over the per-file limit "
                f"of {limits.max_file_bytes:,} (VIVA_FETCH_MAX_FILE_BYTES)",
            )
        )
    return too_large


def resolve_links(listing: TreeListing) -> dict[str, str]:
    """Map each symlink that can be kept to the regular file it stands for; note the others as skipped."""
    kept: dict[str, str] = {}
    for link, target in sorted(listing.links.items()):
        resolved, reason = _follow(link, target, listing)
        if resolved is None:
            listing.skipped.append(SkippedFile(link, f"symlink to {target[:120]!r} dropped: {reason}"))
        else:
            kept[link] = resolved
    return kept


def _follow(link: str, target: str, listing: TreeListing) -> tuple[str | None, str]:
    current_link, current_target = link, target
    for _ in range(MAX_LINK_HOPS):
        if posixpath.isabs(current_target):
            return None, "it points outside the repository"
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(current_link), current_target))
        if joined == ".." or joined.startswith("../"):
            return None, "it points outside the repository"
        if joined in listing.files:
            return joined, ""
        if joined in listing.links:
            current_link, current_target = joined, listing.links[joined]
            continue
        if any(path.startswith(joined + "/") for path in listing.files):
            return None, "it points at a directory"
        return None, "its target does not exist"
    return None, "too many levels of symlinks"


def list_local_dir(root: Path, limits: FetchLimits) -> TreeListing:
    """List a plain directory without following symlinks; stops counting as soon as the file limit is passed."""
    listing = TreeListing()
    for path, entry, info in iter_entries(root, SKIPPED_DIRS):
        if stat.S_ISLNK(info.st_mode):
            listing.links[path] = os.readlink(entry.path)
        elif stat.S_ISREG(info.st_mode):
            listing.files[path] = info.st_size
        else:
            listing.skipped.append(SkippedFile(path, "not a regular file (device, socket or pipe)"))
        if len(listing.files) + len(listing.links) > limits.max_files:
            raise FetchLimitExceeded(f"directory has more than {limits.max_files:,} files (VIVA_FETCH_MAX_FILES)")
    return listing


def copy_local_dir(source: Path, dest: Path, listing: TreeListing, too_large: list[str]) -> None:
    """Copy the listed regular files, then materialise kept symlinks as copies of their targets."""
    dropped = set(too_large)
    for path in sorted(listing.files):
        if path in dropped:
            continue
        _copy_regular(source / path, dest / path)
    for link, target in resolve_links(listing).items():
        if target not in dropped:
            _copy_regular(source / target, dest / link)


def materialise_links(dest: Path, listing: TreeListing, too_large: list[str]) -> None:
    """In a checked-out worktree (core.symlinks=false wrote each link as a small text file), replace kept
    links by copies of their targets and delete the dropped ones."""
    kept = resolve_links(listing)
    for link in listing.links:
        placeholder = dest / link
        if placeholder.is_file() and not placeholder.is_symlink():
            placeholder.unlink()
        target = kept.get(link)
        if target is not None and target not in too_large and (dest / target).is_file():
            shutil.copyfile(dest / target, placeholder, follow_symlinks=False)


def _copy_regular(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(source, flags)
    executable = os.fstat(descriptor).st_mode & 0o111
    with os.fdopen(descriptor, "rb") as reader, open(dest, "wb") as writer:
        shutil.copyfileobj(reader, writer, length=1 << 20)
    # What git keeps of a mode, and no more: executable or not (`./entrypoint.sh` must stay runnable).
    os.chmod(dest, 0o755 if executable else 0o644)
