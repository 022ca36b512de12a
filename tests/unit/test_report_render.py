"""Report renderings: untrusted text from the repository stays inert in HTML and Markdown; JSON round-trips."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from grader.model import Evidence, Score
from grader.report.model import (
    Flag,
    GradingReport,
    RepoRef,
    Reproduction,
    RubricRef,
    not_run_items,
    report_json_schema,
)
from grader.report.render_html import render_html
from grader.report.render_json import parse_report, render_json
from grader.report.render_markdown import escape_markdown, render_markdown
from grader.scoring import score_rubric
from rubrics.model import Check, Criterion, Rubric

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "[click](javascript:alert(3))",
    "</pre><script>alert(4)</script>",
    "<!-- --> ]]> `code` **bold**",
]


def make_report(web_url: str | None = None, path: str = "app/<b>x</b>.py") -> GradingReport:
    rubric = Rubric(
        id="r",
        version=1,
        title="R",
        criteria=[
            Criterion(id="a", title="Alpha", weight=1, check=Check(kind="static", name="dockerfile")),
            Criterion(id="b", title="Beta", weight=1, check=Check(kind="dynamic", name="latency_p95")),
        ],
    )
    evidence = [Evidence(path=path, line=index + 1, excerpt=text) for index, text in enumerate(HOSTILE)]
    scored = score_rubric(
        rubric, {"a": Score.scored(0.5, "Half. " + HOSTILE[0], evidence), "b": Score.not_run("no sandbox")}
    )
    return GradingReport(
        schema_version=1,
        viva_version="0.1.0",
        generated_at="2026-11-25T00:00:00+00:00",
        score=scored.score,
        coverage=scored.coverage,
        rubric=RubricRef(id="r", version=1, hash="sha256:" + "0" * 64),
        repo=RepoRef(target="javascript:alert(5)//<script>", source_kind="remote", commit="a" * 40, web_url=web_url),
        criteria=scored.criteria,
        not_run=not_run_items(scored.criteria),
        reproduction=Reproduction(viva_version="0.1.0", rubric_hash="sha256:" + "0" * 64),
        flags=[Flag(kind="grader_addressed_text", message="planted", evidence=[Evidence("README.md", 3, HOSTILE[1])])],
    )


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_html_has_no_element_or_attribute_from_the_repo() -> None:
    page = render_html(make_report(web_url="https://github.com/o/n/blob/" + "a" * 40 + "/"))
    parser = TagCollector()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert not [name for name, _ in parser.attrs if name.startswith("on")]
    hrefs = [value for name, value in parser.attrs if name == "href"]
    assert hrefs and all(value and value.startswith("https://github.com/o/n/blob/") for value in hrefs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_forbids_scripts_by_policy() -> None:
    page = render_html(make_report())
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_local_targets_get_no_links() -> None:
    parser = TagCollector()
    parser.feed(render_html(make_report(web_url=None)))
    assert "a" not in parser.tags


def test_evidence_link_path_is_percent_encoded() -> None:
    page = render_html(make_report(web_url="https://github.com/o/n/blob/c/", path='a" onclick="x.py'))
    assert 'href="https://github.com/o/n/blob/c/a%22%20onclick%3D%22x.py#L1"' in page


def test_markdown_escapes_html_and_markdown_syntax() -> None:
    text = render_markdown(make_report())
    assert "<script>" not in text and "<img" not in text
    assert "](javascript:" not in text
    assert "&lt;script&gt;" in text
    assert escape_markdown("[x](javascript:y)") == r"\[x\]\(javascript:y\)"
    assert escape_markdown("line one\nline two") == "line one line two"


def test_markdown_states_partial_coverage() -> None:
    text = render_markdown(make_report())
    assert "Partial report: 50%" in text
    assert "## Not run" in text and "no sandbox" in text


def test_json_round_trip_and_required_fields() -> None:
    report = make_report()
    text = render_json(report)
    assert parse_report(text) == report
    data = json.loads(text)
    for key in ("score", "coverage", "rubric", "repo", "viva_version", "criteria"):
        assert key in data
    assert set(data["rubric"]) >= {"id", "version", "hash"}
    node = data["criteria"][0]
    assert {"id", "title", "weight", "score", "status", "explanation", "evidence"} <= set(node)
    assert data["criteria"][1]["score"] is None and data["criteria"][1]["status"] == "not_run"


def test_committed_report_schema_matches_the_model() -> None:
    committed = Path(__file__).parents[2] / "grader" / "report" / "report.schema.json"
    assert json.loads(committed.read_text()) == report_json_schema(), (
        "grader/report/report.schema.json is stale: regenerate it with `viva report schema`"
    )


def test_html_is_self_contained() -> None:
    page = render_html(make_report())
    assert not re.search(r"<(link|script|img|iframe)\b", page)
