"""report.html: one self-contained page (inline CSS, no script, no external request).

Jinja's autoescaping escapes everything from the repository; a Content-Security-Policy that forbids
scripts is the second wall.
"""

from __future__ import annotations

from functools import cache

import jinja2

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
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        rows=walk(report.criteria, 0),
        addressed=[flag for flag in report.flags if flag.kind == "grader_addressed_text"],
        pct=percent,
        width=_width,
        tone=_tone,
        link=lambda item: _link(report, item),
    )


def _width(value: float | None) -> str:
    return "0" if value is None else f"{max(0.0, min(1.0, value)) * 100:.1f}"


def _tone(value: float | None) -> str:
    if value is None or value < 0.4:
        return "bad"
    return "mid" if value < 0.75 else "good"


def _link(report: GradingReport, item: Evidence) -> str | None:
    return evidence_url(report.repo, item)
