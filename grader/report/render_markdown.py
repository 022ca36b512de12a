"""report.md: the report as Markdown. Everything that came from the repository is escaped, so a
file name or excerpt cannot inject HTML, links or formatting into a viewer that renders Markdown."""

from __future__ import annotations

import re

from grader.dynamic.model import DynamicRun
from grader.model import Evidence
from grader.report.format import evidence_url, one_line, percent
from grader.report.model import GradingReport, RepoRef
from grader.scoring import ScoredCriterion, walk

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def escape_markdown(text: str) -> str:
    """Make untrusted text inert in Markdown: HTML entities first, then backslash every Markdown metacharacter."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def render_markdown(report: GradingReport) -> str:
    lines = [
        f"# Viva grading report — {escape_markdown(report.repo.target)}",
        "",
        f"**Score: {percent(report.score)}**{' on the part scored' if report.coverage < 1 else ''} · "
        f"coverage {percent(report.coverage)} of the rubric's weight",
        "",
        f"- Rubric: `{report.rubric.id}` version {report.rubric.version} ({report.rubric.hash[:19]})",
        f"- Commit: `{report.repo.commit or 'not a git repository'}`",
        f"- Viva {report.viva_version}, generated {report.generated_at}",
    ]
    if report.repo.dirty:
        lines.append("- The local repository had uncommitted changes; they were not graded.")
    if report.coverage < 1.0:
        lines += [
            "",
            f"> Partial report: {percent(1 - report.coverage)} of the rubric's weight could not be scored "
            "by this run (see *Not run*). The score is the weighted mean of what was scored.",
        ]
    lines += ["", "## Criteria", "", "| criterion | score | basis | status |", "| --- | --- | --- | --- |"]
    lines += [_table_row(node, depth) for node, depth in walk(report.criteria, 0)]
    lines += ["", "## Evidence", ""]
    for node, _ in walk(report.criteria, 0):
        if node.children:
            continue
        lines.append(f"### {node.path} — {escape_markdown(node.title)}: {percent(node.score)}")
        lines += ["", escape_markdown(node.explanation), ""]
        lines += [f"- {_evidence_line(report.repo, item)}" for item in node.evidence]
        lines.append("")
    if report.dynamic is not None:
        lines += _dynamic_lines(report.dynamic)
    if report.not_run:
        lines += ["## Not run", ""] + [f"- `{item.path}`: {escape_markdown(item.reason)}" for item in report.not_run]
        lines.append("")
    if report.flags:
        lines += ["## Flags", ""]
        for flag in report.flags:
            lines.append(f"- **{flag.kind}**: {escape_markdown(flag.message)}")
            lines += [f"  - {_evidence_line(report.repo, item)}" for item in flag.evidence]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _table_row(node: ScoredCriterion, depth: int) -> str:
    indent = "&nbsp;&nbsp;" * depth
    basis = ", ".join(node.basis) or "—"
    return (
        f"| {indent}{escape_markdown(node.title)} (`{node.path}`) | {percent(node.score)} | {basis} | {node.status} |"
    )


def _evidence_line(repo: RepoRef, item: Evidence) -> str:
    location = escape_markdown(item.location)
    url = evidence_url(repo, item)
    where = f"[{location}](<{url}>)" if url else location
    excerpt = f": {escape_markdown(item.excerpt)}" if item.excerpt else ""
    note = f" ({escape_markdown(item.note)})" if item.note else ""
    return f"{where}{excerpt}{note}"


def _dynamic_lines(run: DynamicRun) -> list[str]:
    """The measured numbers, briefly; the HTML report has the tables. Strings from the app are escaped."""
    found = run.interface
    lines = [
        "## What running the project measured",
        "",
        f"- Stand-in model: {run.gateway.model}, time scale {run.gateway.time_scale:g}",
        f"- Start: {escape_markdown(found.start_command or 'not found')}; query: "
        f"{found.query_method} {escape_markdown(found.query_path or 'not found')}",
    ]
    if found.missing:
        lines.append(f"- Not found: {', '.join(found.missing)} (the checks that need them scored 0)")
    if run.service is not None:
        blames = {"viva": " — Viva's limitation, not scored", "candidate": " — the project's own failure"}
        blame = blames.get(run.service.blame or "", "")
        lines.append(
            f"- Service: started in {run.service.ready_seconds:.1f} s"
            if run.service.started and run.service.ready_seconds is not None
            else f"- Service: did not start ({escape_markdown(run.service.reason)}){blame}"
        )
        for number, attempt in enumerate(run.service.attempts, start=1):
            outcome = attempt.outcome.replace("_", " ") + (f": {attempt.reason}" if attempt.reason else "")
            lines.append(
                f"  {number}. {attempt.tier}, {escape_markdown(attempt.source)} ({escape_markdown(attempt.where)}): "
                f"`{escape_markdown(attempt.command)}` in `{escape_markdown(attempt.workdir or '.')}`, port "
                f"{attempt.port} — {escape_markdown(outcome)}"
            )
    if run.providers is not None and (run.providers.uses or run.providers.refused):
        uses = ", ".join(f"{use.client} over {use.wire_api} ({use.calls})" for use in run.providers.uses)
        lines.append(f"- Model calls: {escape_markdown(uses or 'none reached the gateway')}")
        lines += [f"  - refused: {escape_markdown(refused)}" for refused in run.providers.refused]
        lines += [f"  - failed TLS handshake: {escape_markdown(failed)}" for failed in run.providers.failed_handshakes]
    if run.companions:
        lines.append("- Companion services (beside the app, on its loopback only):")
        lines += [f"  - {escape_markdown(line)}" for line in run.companions]
    lines += [f"- **Companion stopped**: {escape_markdown(line)}" for line in run.companions_down]
    latency = run.latency
    if latency is not None and latency.end_to_end is not None:
        e2e, net = latency.end_to_end, latency.net_of_model
        lines.append(
            f"- Latency over {latency.requests} requests: p50 {e2e.p50:.3f} s, p95 {e2e.p95:.3f} s, p99 {e2e.p99:.3f} s"
            + (f"; net of the model p95 {net.p95:.3f} s" if net else "")
        )
        top = max(item.count for item in latency.histogram) or 1
        lines += ["", "```"]
        lines += [
            f"<= {item.upper_s:8.3f} s | {'#' * round(30 * item.count / top):<30} {item.count}"
            for item in latency.histogram
        ]
        lines += ["```", ""]
    if run.injection is not None:
        lines.append(f"- Injection: {run.injection.leaks} of {len(run.injection.probes)} probes leaked")
    if run.ceiling is not None:
        lines.append(f"- Ceiling: {run.ceiling.outcome.replace('_', ' ')} after {run.ceiling.requests} request(s)")
    if run.faults:
        lines.append(
            "- Faults: " + "; ".join(f"{item.fault} → {item.outcome.replace('_', ' ')}" for item in run.faults)
        )
    for probe in run.probes:
        said = (
            f"failed inside Viva ({escape_markdown(probe.error)})"
            if probe.error
            else "; ".join(f"{item.case} → {item.status or 'no answer'} ({item.verdict})" for item in probe.exchanges)
        )
        lines.append(f"- Probe `{probe.check}`: {said}")
    lines.append("")
    return lines
