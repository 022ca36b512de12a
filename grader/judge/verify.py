"""Checking a judge's citation against the repository: the file exists inside it, the line exists, the quoted
text is on (or beside) that line, the line is not text addressed to a grader, and it says what is claimed."""

from __future__ import annotations

import re
from pathlib import Path

from grader.judge.aspects import Aspect
from grader.profile.docs import GRADER_ADDRESSED
from grader.profile.hidden import read_visible

MIN_QUOTE = 8


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _quoted(quote: str, window: list[str]) -> bool:
    wanted = _normal(quote)
    return any(wanted in _normal(text) for text in window) or wanted in _normal(" ".join(window))


def verify_citation(root: Path, path: str, line: int, quote: str, aspect: Aspect) -> tuple[str | None, str]:
    """(the cited line's text when the citation holds, else None; why it was dropped)."""
    if len(_normal(quote)) < MIN_QUOTE:
        return None, "quote too short to check"
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file() or target.is_symlink():
        return None, f"{path} is not a file in the repository"
    raw = target.read_text(encoding="utf-8", errors="replace")
    lines = raw.splitlines()
    if not 1 <= line <= len(lines):
        return None, f"{path} has no line {line}"
    window = lines[max(0, line - 2) : line + 1]
    if not _quoted(quote, window):
        return None, f"{path}:{line} does not contain the quoted text"
    # Only what a reader sees may be evidence: the quote must survive cutting comments, invisible markup and
    # characters, encoded blobs and text addressed to a grader (grader/profile/hidden.py).
    shown, kinds = read_visible(path, raw)
    if not _quoted(quote, shown[max(0, line - 2) : line + 1]):
        kind = next((kinds[n] for n in (line, line - 1, line + 1) if n in kinds), "hidden")
        return None, f"{path}:{line} is not visible text ({kind})"
    cited = lines[line - 1]
    if any(GRADER_ADDRESSED.search(text) for text in window):
        return None, f"{path}:{line} is text addressed to a grader"
    if not aspect.support.search(quote):
        return None, f"the quote does not say what '{aspect.id}' needs"
    return re.sub(r"\s+", " ", cited).strip()[:200], ""
