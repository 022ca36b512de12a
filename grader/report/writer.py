"""Write a report to a directory in the formats asked for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grader.report.model import GradingReport
from grader.report.render_html import render_html
from grader.report.render_json import render_json
from grader.report.render_markdown import render_markdown

_RENDERERS = {
    "json": ("report.json", render_json),
    "md": ("report.md", render_markdown),
    "html": ("report.html", render_html),
}


def write_reports(report: GradingReport, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Render `report` in each of `formats` into `out_dir` (created if missing); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        file_name, render = _RENDERERS[fmt]
        path = out_dir / file_name
        path.write_text(render(report), encoding="utf-8")
        written.append(path)
    return written
