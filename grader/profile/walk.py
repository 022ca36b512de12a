"""Walking a snapshot: every regular file once, never following a symlink, never leaving the root."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.tree import iter_entries

SKIPPED_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    "build",
    "site-packages",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
}
BINARY_PROBE = 8192


@dataclass(frozen=True)
class RawFile:
    """A readable, non-binary file's bytes; decoded only when some analysis needs its text."""

    path: str
    """Relative to the root, POSIX style."""
    size: int
    data: bytes

    def decode(self) -> tuple[str, bool]:
        """(text, replaced): `replaced` is True when the bytes were not UTF-8 and got replacement characters."""
        try:
            return self.data.decode("utf-8"), False
        except UnicodeDecodeError:
            return self.data.decode("utf-8", errors="replace"), True


@dataclass(frozen=True)
class Skipped:
    path: str
    size: int
    reason: str


def walk_files(root: Path, max_file_bytes: int) -> Iterator[RawFile | Skipped]:
    try:
        for path, entry, info in iter_entries(root, SKIPPED_DIRS):
            if stat.S_ISLNK(info.st_mode):
                yield Skipped(path, 0, "symlink not followed")
            elif stat.S_ISREG(info.st_mode):
                yield _read(entry.path, path, info.st_size, max_file_bytes)
    except OSError as error:
        yield Skipped(".", 0, f"a directory could not be listed: {error.strerror}")


def _read(absolute: str, path: str, size: int, max_file_bytes: int) -> RawFile | Skipped:
    if size > max_file_bytes:
        return Skipped(path, size, f"{size:,} bytes is over the {max_file_bytes:,}-byte reading limit")
    try:
        descriptor = os.open(absolute, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError as error:
        return Skipped(path, size, f"could not be read: {error.strerror}")
    if b"\0" in data[:BINARY_PROBE]:
        return Skipped(path, size, "binary file")
    return RawFile(path, len(data), data)
