"""Small formatting helpers shared by the Markdown and HTML renderers."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from grader.model import Evidence
from grader.report.model import RepoRef


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def one_line(text: str, limit: int = 240) -> str:
    """Collapse whitespace (file names and excerpts may carry newlines) and cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def evidence_url(repo: RepoRef, evidence: Evidence) -> str | None:
    """A link to the evidence at the graded commit, for hosted repos; None when there is nowhere to link.

    Only https base URLs are ever produced, and the path is percent-encoded, so a file name cannot
    become a `javascript:` link or break out of the attribute.
    """
    if not repo.web_url or urlsplit(repo.web_url).scheme != "https" or evidence.path.startswith("("):
        return None  # "(sandbox) app log", "(probe) …": measured, not a file in the repository
    url = repo.web_url.rstrip("/") + "/" + quote(evidence.path, safe="/")
    if evidence.line is not None:
        url += f"#L{evidence.line}"
    return url
