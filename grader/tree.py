"""Walking a directory tree without ever following a symlink: the one walker fetch and profile share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def iter_entries(root: Path, skipped_dirs: set[str]) -> Iterator[tuple[str, os.DirEntry[str], os.stat_result]]:
    """(relative POSIX path, entry, lstat) for every non-directory entry under `root`, in name order per
    directory; directories named in `skipped_dirs` are not entered. Raises OSError when a directory cannot
    be listed."""
    stack = [""]
    while stack:
        relative = stack.pop()
        with os.scandir(root / relative if relative else root) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in skipped_dirs:
                    stack.append(path)
                continue
            yield path, entry, entry.stat(follow_symlinks=False)
