"""report.html: one self-contained page (inline CSS, no script, no external request).

Jinja's autoescaping escapes everything from the repository; a Content-Security-Policy that forbids
scripts is the second wall.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from grader.model import Evidence
from grader.report.format import evidence_url, percent
from grader.report.model import GradingReport
from grader.scoring import walk


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("grader.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: GradingReport) -> str:
    return _environment().get_template("report.html.j2").render(_context(report, lambda item: _link(report, item)))


def render_html_body(report: GradingReport, link: Callable[[Evidence], str | None]) -> Markup:
    """The report's content without the page around it, for a page that embeds it (the server's report page).
    `link` maps a piece of evidence to a URL, or None; it must only produce safe URLs (http(s) or relative)."""
    body = _environment().get_template("report_body.html.j2").render(_context(report, link))
    return Markup(body)  # noqa: S704 - rendered by an autoescaping template: everything from the repo is escaped


def _context(report: GradingReport, link: Callable[[Evidence], str | None]) -> dict[str, Any]:
    return {
        "report": report,
        "rows": walk(report.criteria, 0),
        "addressed": [flag for flag in report.flags if flag.kind == "grader_addressed_text"],
        "pct": percent,
        "width": _width,
        "tone": _tone,
        "link": link,
    }


def _width(value: float | None) -> str:
    return "0" if value is None else f"{max(0.0, min(1.0, value)) * 100:.1f}"


def _tone(value: float | None) -> str:
    if value is None or value < 0.4:
        return "bad"
    return "mid" if value < 0.75 else "good"


def _link(report: GradingReport, item: Evidence) -> str | None:
    return evidence_url(report.repo, item)
