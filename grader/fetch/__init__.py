"""Fetch a candidate's repository into a scratch directory, safely, within limits.

Nothing from the repository runs on the host: no hooks, no submodules, no filters, no LFS, no
symlinks in the snapshot. Local paths and file:// are for the CLI only (`allow_local=True`).
"""

from __future__ import annotations

from grader.fetch.model import FetchedRepo, FetchLimits, ParsedTarget, SkippedFile
from grader.fetch.run import fetch
from grader.fetch.targets import parse_target

__all__ = ["FetchLimits", "FetchedRepo", "ParsedTarget", "SkippedFile", "fetch", "parse_target"]
