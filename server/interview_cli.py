"""`viva interview TARGET`: a text interview in the terminal, streamed; scripted when stdin is not a terminal
(one answer per line). Transcript and report are saved as JSON and Markdown.

`viva interview --topic rag_design,security --level senior`: a role interview, without a repository, on the
question bank's topics at a level (interviewer/role_bank.py; `--topic all` for every topic)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from grader.report.model import GradingReport
    from interviewer.model import InterviewReport
    from interviewer.session import InterviewSession
    from server.settings import Settings

# The interviewer, the grader and the model clients load inside the functions below, so that every other `viva`
# command (which builds this parser) starts without them.


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("interview", help="a text interview about a repository, in the terminal")
    parser.add_argument(
        "target",
        nargs="?",
        help="https git URL, owner/name (GitHub), or a local path; optional @ref (not with --topic)",
    )
    parser.add_argument(
        "--topic",
        default=None,
        help="a role interview without a repository: comma-separated topics of the role rubric, or 'all' "
        "(rag_design, evaluation, agents, cost_latency, security, scale, models)",
    )
    parser.add_argument(
        "--level",
        choices=["junior", "intermediate", "senior"],
        default="intermediate",
        help="role interview level: picks the rubric ai-engineer-role-<level> unless --rubric names another",
    )
    parser.add_argument("--model", default=None, help="model string (offline, anthropic:…, openai:…, a,b fallback)")
    parser.add_argument("--rubric", default=None, help="interview rubric id or file")
    parser.add_argument("--report", type=Path, default=None, help="a grading report.json whose findings to use")
    parser.add_argument("--out", type=Path, default=Path("viva-interview"), help="where transcript and report go")
    parser.add_argument("--budget", type=float, default=None, help="hard ceiling in USD for this interview")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # noqa: PLC0415 - asyncio alone takes a tenth of a second; only this command needs it here

    return asyncio.run(_interview(args, settings))


async def _interview(args: argparse.Namespace, settings: Settings) -> int:
    from grader.fetch import fetch  # noqa: PLC0415 - loaded only for `viva interview` (see the note at the top)
    from grader.profile import build_profile  # noqa: PLC0415 - as above
    from interviewer.factory import new_session  # noqa: PLC0415 - as above
    from interviewer.report import build_report  # noqa: PLC0415 - as above
    from llm.select import chosen_model_string  # noqa: PLC0415 - as above
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - as above
    from server.alerts import budget_book  # noqa: PLC0415 - as above

    if args.topic is not None or args.target is None:
        return await _role_interview(args, settings)
    rubric = resolve_rubric(args.rubric or settings.interview.rubric)
    model = chosen_model_string(args.model or settings.interview.model, settings.llm)
    book = budget_book(settings.alerts.webhook_url)
    with tempfile.TemporaryDirectory(prefix="viva-interview-") as scratch:
        fetched = fetch(args.target, Path(scratch), settings.fetch, allow_local=True)
        profile = build_profile(Path(fetched.root), settings.profile)
        report = _grading_report(args.report, fetched.target)
        if report is not None:
            print(f"(using the grading findings of {report.repo.target} at commit {report.repo.commit or 'n/a'})")
        session = new_session(
            Path(fetched.root),
            profile,
            rubric,
            model=model,
            keys=settings.llm,
            book=book,
            budget_usd=args.budget if args.budget is not None else settings.interview.budget_usd,
            report=report,
            organisation="local",
            organisation_budget_usd=settings.interview.organisation_budget_usd,
            time_limit_s=_time_limit(settings),
        )
        await _converse(session, interactive=sys.stdin.isatty())
    return _write(build_report(session, rubric, book, "interview:interview", fetched.target), args.out)


async def _role_interview(args: argparse.Namespace, settings: Settings) -> int:
    from interviewer.factory import new_role_session  # noqa: PLC0415 - as in _interview
    from interviewer.report import build_report  # noqa: PLC0415 - as above
    from interviewer.role import UnknownTopic  # noqa: PLC0415 - as above
    from llm.select import chosen_model_string  # noqa: PLC0415 - as above
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - as above
    from server.alerts import budget_book  # noqa: PLC0415 - as above

    rubric = resolve_rubric(args.rubric or f"ai-engineer-role-{args.level}")
    wanted = (args.topic or "all").strip()
    topics = None if wanted == "all" else [topic.strip() for topic in wanted.split(",") if topic.strip()]
    book = budget_book(settings.alerts.webhook_url)
    try:
        session = new_role_session(
            rubric,
            topics,
            model=chosen_model_string(args.model or settings.interview.model, settings.llm),
            keys=settings.llm,
            book=book,
            budget_usd=args.budget if args.budget is not None else settings.interview.budget_usd,
            organisation="local",
            organisation_budget_usd=settings.interview.organisation_budget_usd,
            time_limit_s=_time_limit(settings),
        )
    except UnknownTopic as problem:
        print(f"viva interview: {problem}", file=sys.stderr)
        return 2
    label = f"role interview ({rubric.rubric.title}): {', '.join(topics) if topics else 'all topics'}"
    print(f"({label})")
    await _converse(session, interactive=sys.stdin.isatty())
    return _write(build_report(session, rubric, book, "interview:interview", label), args.out)


def _time_limit(settings: Settings) -> float | None:
    minutes = settings.interview.time_limit_minutes
    return None if minutes is None else minutes * 60


def _write(result: InterviewReport, out: Path) -> int:
    """interview.json, interview.md and transcript.json in `out`, and a line saying how it went."""
    from interviewer.report import render_json, render_markdown  # noqa: PLC0415 - as in _interview

    out.mkdir(parents=True, exist_ok=True)
    (out / "interview.json").write_text(render_json(result), encoding="utf-8")
    (out / "interview.md").write_text(render_markdown(result), encoding="utf-8")
    (out / "transcript.json").write_text(
        json.dumps([{"role": t.role, "text": t.text, "at": t.at} for t in result.transcript], indent=2),
        encoding="utf-8",
    )
    score = "n/a" if result.score is None else f"{result.score * 100:.0f}%"
    print(f"\nInterview {result.ended}: overall {score}, cost ${result.cost.usd:.4f}; wrote {out}/interview.md")
    return 0


async def _converse(session: InterviewSession, *, interactive: bool) -> None:
    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    show("interviewer: ")
    await session.start(on_token=show)
    number = 0
    while not session.finished:
        show("\n\nyou: " if interactive else "\n")
        line = sys.stdin.readline()
        if not line:  # end of input: the candidate has left
            session.ended = session.ended or "candidate_left"
            break
        number += 1
        if not interactive:
            show(f"you: {line.strip()}\n")
        show("\ninterviewer: ")
        await session.answer(f"answer-{number}", line.strip(), on_token=show)
    show("\n")


DEFAULT_REPORT = Path("viva-report/report.json")


def _grading_report(path: Path | None, target: str) -> GradingReport | None:
    """The report named by --report, else the one `viva grade` left in ./viva-report when it graded this target."""
    from grader.report.render_json import parse_report  # noqa: PLC0415 - as in _interview

    if path is not None:
        return parse_report(path.read_bytes())
    if not DEFAULT_REPORT.is_file():
        return None
    try:
        found = parse_report(DEFAULT_REPORT.read_bytes())
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return found if found.repo.target == target else None
