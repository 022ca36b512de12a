"""report.json: the report encoded by msgspec, pretty-printed so a reviewer can diff two of them."""

from __future__ import annotations

import msgspec

from grader.report.model import GradingReport


def render_json(report: GradingReport) -> str:
    return msgspec.json.format(msgspec.json.encode(report).decode(), indent=2) + "\n"


def parse_report(text: str | bytes) -> GradingReport:
    """Read a report.json back, validating it against the model."""
    return msgspec.json.decode(text, type=GradingReport)
