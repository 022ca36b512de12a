"""`viva judge-eval LABELS.json`: agreement between the grader and human labels, printed, saved as JSON and written
as the Markdown tables BENCHMARKS.md holds.

Modes: static-only grading (the default, and with `--static-only`), the cached full reports of `--reports DIR`,
or both side by side. `--split` reports development and test apart; `--second` adds a second labeller's agreement
with the first, beside Viva's on the same repositories.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from grader.agreement import AgreementReport, CriterionAgreement, Interval
    from grader.judge_eval import Disagreement, JudgeEvalResult, ModeResult, SplitAgreement
    from server.settings import Settings

Column = tuple[str, "AgreementReport"]


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("judge-eval", help="measure the grader against human labels (QWK first)")
    parser.add_argument("labels", type=Path, help="LABELS.json (docs/LABELLING.md)")
    parser.add_argument(
        "--judge-model",
        action="append",
        default=None,
        help="model string for the LLM judge; repeat for several voting judges (default: offline)",
    )
    parser.add_argument(
        "--static-only",
        action="store_true",
        help="grade each repository statically (the default without --reports; beside --reports, both are shown)",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=None,
        metavar="DIR",
        help="read full reports from DIR/<owner>+<name>/report.json (e.g. .corpus/results/<key>) instead of grading",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="with --reports: score each report's recorded measurements again with this version's dynamic scorers; "
        "with --static-only too, its static and judge leaves are this version's, graded from the checkouts",
    )
    parser.add_argument("--split", type=Path, default=None, help="split.json: report development and test apart")
    parser.add_argument("--second", type=Path, default=None, help="a second labeller's LABELS.json")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 17)")
    parser.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the Markdown tables here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The grader (and with it pydantic-ai) loads only for this command; every other command builds this parser.
    from grader.agreement import DEFAULT_RESAMPLES, DEFAULT_SEED  # noqa: PLC0415 - see above
    from grader.judge_eval import evaluate, load_labels, load_split  # noqa: PLC0415 - as above
    from grader.pipeline import GradeOptions  # noqa: PLC0415 - as above
    from rubrics.errors import RubricError  # noqa: PLC0415 - as above
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - as above

    inputs = [("labels", args.labels), ("second labels", args.second), ("split", args.split)]
    for what, path in inputs:
        if path is not None and not path.is_file():
            print(f"viva: {path}: no such {what} file")
            return 1
    if args.resamples is not None and args.resamples < 1:
        print(f"viva: --resamples must be at least 1, got {args.resamples}")
        return 1
    if args.reports is not None and not args.reports.is_dir():
        print(f"viva: {args.reports}: no such reports directory")
        return 1
    try:
        labels = load_labels(args.labels)
        second = load_labels(args.second) if args.second else None
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
        print(f"viva: not a valid labels file: {error}")
        return 1
    try:
        split = load_split(args.split) if args.split else None
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        print(f"viva: {args.split}: not a valid split file: {error}")
        return 1
    static = args.static_only or args.reports is None
    options = GradeOptions(
        fetch_limits=settings.fetch,
        profile_limits=settings.profile,
        allow_local=True,
        static_only=True,
        judge_models=args.judge_model or ["offline"],
        judge_keys=settings.llm,
    )
    try:
        result = evaluate(
            labels,
            args.labels.parent,
            resolve_rubric(labels.rubric),
            options if static else None,
            reports=args.reports,
            rescored=args.rescore,
            split=split,
            second=second,
            resamples=DEFAULT_RESAMPLES if args.resamples is None else args.resamples,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
        )
    except (RubricError, ValueError) as error:
        print(f"viva: {error}")
        return 1
    print("\n".join(text_report(result, args.labels)))
    if args.out:
        args.out.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2))
    if args.markdown:
        args.markdown.write_text("\n".join(markdown_report(result)) + "\n", encoding="utf-8")
    return 0


# --- the printed report -------------------------------------------------------------------------------------------


def text_report(result: JudgeEvalResult, labels_path: Path) -> list[str]:
    from grader.judge_eval import MODE_TITLES  # noqa: PLC0415 - the grader loads only for this command

    first = result.modes[0].splits[0].agreement
    who = ", ".join(part for part in [_labeller(result.labeller), result.guide and f"guide {result.guide}"] if part)
    lines = [
        f"{labels_path}{f' ({who})' if who else ''}, rubric {result.rubric}",
        f"bootstrap: {first.resamples} resamples of repositories, seed {first.seed}, "
        f"{first.confidence:.0%} percentile intervals",
    ]
    for mode in result.modes:
        lines += ["", *_mode_summary(MODE_TITLES[mode.mode], mode)]
    for index, split in enumerate(result.modes[0].splits):
        columns = [(MODE_TITLES[mode.mode], mode.splits[index].agreement) for mode in result.modes]
        lines += ["", f"== {_split_title(split)} ==", *_text_table(columns), *_text_rates(columns)]
    for mode in result.modes:
        lines += ["", *_text_disagreements(MODE_TITLES[mode.mode], mode)]
    if result.human is not None:
        lines += ["", f"== {_human_title(result)} ==", *_text_table(_human_columns(result))]
    return lines


def _mode_summary(title: str, mode: ModeResult) -> list[str]:
    everything = mode.splits[0].agreement
    pooled = everything.pooled
    lines = [
        f"{title}: {pooled.n} labelled criteria over {everything.repositories} repositories",
        f"  quadratic weighted kappa  {_estimate(pooled.qwk, pooled.qwk_interval)}",
        f"  exact agreement           {pooled.exact:.1%}",
        f"  within one level          {pooled.within_one:.1%}",
        f"  Spearman of totals        {_estimate(everything.spearman_totals, everything.spearman_interval)}",
        f"  not run, counted as 0     {pooled.not_run_counted_as_zero}",
    ]
    lines += [f"  missing: {_plain(item.name)}: {_plain(item.reason)}" for item in mode.missing]
    lines += [f"  note: {_plain(note, 2000)}" for note in mode.notes]
    for criterion in everything.criteria:
        matrix = criterion.confusion
        if any(matrix[h][p] for h in range(4) for p in range(4) if h != p):
            cells = " ".join("".join(str(cell) for cell in row) for row in matrix)
            lines.append(f"  {criterion.criterion:<24} confusion, human rows × grader cols: {cells}")
    return lines


def _text_table(columns: Sequence[Column]) -> list[str]:
    cell = f"{'n':>4} {'QWK [95% CI]':<22} {'exact':>6} {'±1':>5}"
    lines = [
        f"{'':<24} " + " | ".join(f"{title:<40}" for title, _ in columns),
        f"{'criterion':<24} " + " | ".join(f"{cell:<40}" for _ in columns),
    ]
    for criterion in _criteria(columns):
        cells = [_text_cell(_find(report, criterion)) for _, report in columns]
        lines.append(f"{criterion:<24} " + " | ".join(f"{text:<40}" for text in cells))
    lines.append(f"{'pooled':<24} " + " | ".join(f"{_text_cell(report.pooled):<40}" for _, report in columns))
    spearman = [
        f"{report.repositories:>4} {_estimate(report.spearman_totals, report.spearman_interval):<22}"
        for _, report in columns
    ]
    lines.append(f"{'Spearman of totals':<24} " + " | ".join(f"{text:<40}" for text in spearman))
    return lines


def _text_cell(found: CriterionAgreement | None) -> str:
    if found is None or found.n == 0:
        return f"{0:>4} {'—':<22} {'':>6} {'':>5}"
    qwk = _estimate(found.qwk, found.qwk_interval)
    return f"{found.n:>4} {qwk:<22} {found.exact:>6.0%} {found.within_one:>5.0%}"


def _text_rates(columns: Sequence[Column]) -> list[str]:
    lines = ["base rates, share at levels 0/1/2/3 (human | Viva):"]
    for criterion in [*_criteria(columns), "pooled"]:
        cells = []
        for title, report in columns:
            found = report.pooled if criterion == "pooled" else _find(report, criterion)
            if found is not None:
                cells.append(f"{title}: {_rates(found.human_rates)} | {_rates(found.grader_rates)}")
        lines.append(f"  {criterion:<22} " + "   ".join(cells))
    return lines


def _text_disagreements(title: str, mode: ModeResult) -> list[str]:
    if not mode.disagreements:
        return [f"{title}: no disagreements ({mode.disagreements_from} split)"]
    lines = [f"{title}: the {len(mode.disagreements)} largest disagreements ({mode.disagreements_from} split)"]
    for item in mode.disagreements:
        lines.append(
            f"  {_plain(item.repo)}  {item.criterion}: human {item.human}, Viva {_level(item.grader)} "
            f"(gap {item.gap}, share {item.share:.3f})"
        )
        refs = ", ".join(_plain(ref) for ref in item.label.refs) or "none"
        lines.append(f"    label: {_plain(item.label.why) or '(no sentence)'} [{refs}]")
        for leaf in item.viva:
            where = ", ".join(_plain(location) for location in leaf.evidence[:3]) or "no evidence"
            lines.append(
                f"    Viva {leaf.path} {_score(leaf.score, leaf.status)}: {_plain(leaf.explanation, 160)} [{where}]"
            )
    return lines


# --- the Markdown for BENCHMARKS.md -------------------------------------------------------------------------------


def markdown_report(result: JudgeEvalResult) -> list[str]:
    from grader.judge_eval import MODE_TITLES  # noqa: PLC0415 - the grader loads only for this command
    from grader.report.render_markdown import escape_markdown  # noqa: PLC0415 - as above

    first = result.modes[0].splits[0].agreement
    lines = [
        f"Rubric `{result.rubric}`, labels by {escape_markdown(result.labeller or 'one labeller')}"
        + (f" following {escape_markdown(result.guide)}" if result.guide else "")
        + f"; intervals are {first.confidence:.0%} bootstrap percentile intervals over {first.resamples} resamples "
        f"of repositories (seed {first.seed}); a criterion Viva could not score counts as level 0.",
    ]
    for mode in result.modes:
        if mode.missing:
            lines += ["", f"{MODE_TITLES[mode.mode]}: no report for {len(mode.missing)} repositories:"]
            lines += [f"- {escape_markdown(item.name)}: {escape_markdown(item.reason)}" for item in mode.missing]
    for index, split in enumerate(result.modes[0].splits):
        columns = [(MODE_TITLES[mode.mode], mode.splits[index].agreement) for mode in result.modes]
        lines += ["", f"#### {_split_title(split)}", "", *_markdown_table(columns), "", *_markdown_rates(columns)]
    for mode in result.modes:
        lines += ["", *_markdown_disagreements(MODE_TITLES[mode.mode], mode)]
    if result.human is not None:
        lines += ["", f"#### {_human_title(result)}", "", *_markdown_table(_human_columns(result))]
    return lines


def _markdown_table(columns: Sequence[Column]) -> list[str]:
    header = "| criterion |" + "".join(
        f" {title} n | {title} QWK [95% CI] | {title} exact | {title} within one |" for title, _ in columns
    )
    lines = [header, "| --- |" + " ---: | --- | ---: | ---: |" * len(columns)]
    for criterion in [*_criteria(columns), "pooled"]:
        cells = []
        for _, report in columns:
            found = report.pooled if criterion == "pooled" else _find(report, criterion)
            if found is None or found.n == 0:
                cells.append(" 0 | — | — | — |")
            else:
                qwk = _estimate(found.qwk, found.qwk_interval, 2)
                cells.append(f" {found.n} | {qwk} | {found.exact:.0%} | {found.within_one:.0%} |")
        name = "**pooled**" if criterion == "pooled" else f"`{criterion}`"
        lines.append(f"| {name} |" + "".join(cells))
    spearman = "".join(
        f" {report.repositories} | {_estimate(report.spearman_totals, report.spearman_interval, 2)} | | |"
        for _, report in columns
    )
    lines.append(f"| Spearman of totals (n = repositories) |{spearman}")
    return lines


def _markdown_rates(columns: Sequence[Column]) -> list[str]:
    header = "| base rate, levels 0/1/2/3 |" + "".join(f" {title}: human | {title}: Viva |" for title, _ in columns)
    lines = [header, "| --- |" + " --- | --- |" * len(columns)]
    for criterion in [*_criteria(columns), "pooled"]:
        cells = []
        for _, report in columns:
            found = report.pooled if criterion == "pooled" else _find(report, criterion)
            cells.append(
                " — | — |" if found is None else f" {_rates(found.human_rates)} | {_rates(found.grader_rates)} |"
            )
        name = "**pooled**" if criterion == "pooled" else f"`{criterion}`"
        lines.append(f"| {name} |" + "".join(cells))
    return lines


def _markdown_disagreements(title: str, mode: ModeResult) -> list[str]:
    from grader.report.render_markdown import escape_markdown  # noqa: PLC0415 - the grader loads only here

    heading = f"#### The largest disagreements, {title} ({mode.disagreements_from} split)"
    if not mode.disagreements:
        return [heading, "", "None."]
    lines = [heading, "", "| repository | criterion | human | Viva | the label's evidence | Viva's leaves |"]
    lines.append("| --- | --- | ---: | ---: | --- | --- |")
    for item in mode.disagreements:
        lines.append(
            f"| {escape_markdown(item.repo)} | `{item.criterion}` | {item.human} | {_level(item.grader)} "
            f"| {_markdown_label(item)} | {_markdown_leaves(item)} |"
        )
    return lines


def _markdown_label(item: Disagreement) -> str:
    from grader.report.render_markdown import escape_markdown  # noqa: PLC0415 - the grader loads only here

    refs = ", ".join(escape_markdown(ref) for ref in item.label.refs)
    why = escape_markdown(item.label.why) or "(no sentence)"
    return f"{why} ({refs})" if refs else why


def _markdown_leaves(item: Disagreement) -> str:
    from grader.report.format import one_line  # noqa: PLC0415 - the grader loads only here
    from grader.report.render_markdown import escape_markdown  # noqa: PLC0415 - as above

    parts = []
    for leaf in item.viva:
        where = ", ".join(escape_markdown(location) for location in leaf.evidence[:3])
        explanation = escape_markdown(one_line(leaf.explanation, 160))
        parts.append(
            f"`{leaf.path}` {_score(leaf.score, leaf.status)}: {explanation}" + (f" ({where})" if where else "")
        )
    return "<br>".join(parts) or "—"


# --- shared pieces ------------------------------------------------------------------------------------------------


def _criteria(columns: Sequence[Column]) -> list[str]:
    return sorted({criterion.criterion for _, report in columns for criterion in report.criteria})


def _find(report: AgreementReport, criterion: str) -> CriterionAgreement | None:
    return next((found for found in report.criteria if found.criterion == criterion), None)


def _split_title(split: SplitAgreement) -> str:
    names = {"all": "All labelled repositories", "development": "Development split", "test": "Test split, frozen"}
    return f"{names[split.split]} ({len(split.repositories)} repositories)"


def _human_columns(result: JudgeEvalResult) -> list[Column]:
    from grader.judge_eval import MODE_TITLES  # noqa: PLC0415 - the grader loads only for this command

    human = result.human
    assert human is not None  # only called when a second labeller was given
    columns: list[Column] = [(f"{human.second_labeller} vs {human.labeller}", human.humans)]
    return columns + [(f"{MODE_TITLES[mode]} vs {human.labeller}", report) for mode, report in human.viva.items()]


def _human_title(result: JudgeEvalResult) -> str:
    human = result.human
    assert human is not None  # only called when a second labeller was given
    return (
        f"Labeller {human.labeller} and labeller {human.second_labeller} on the {len(human.repositories)} "
        "repositories both labelled, beside Viva on the same"
    )


def _labeller(name: str) -> str:
    return f"labeller {name}" if name else ""


def _estimate(value: float | None, interval: Interval | None, digits: int = 3) -> str:
    """ "0.912 [0.700, 1.000]"; "n/a" for a figure that is undefined on these rows."""
    if value is None:
        return "n/a"
    if interval is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def _rates(rates: Sequence[float]) -> str:
    return "/".join(f"{rate * 100:.0f}" for rate in rates)


def _level(level: int | None) -> str:
    return "not run (0)" if level is None else str(level)


def _score(score: float | None, status: str) -> str:
    return status if score is None else f"{score:.2f}"


def _plain(text: str, limit: int = 240) -> str:
    """Repository text made safe for a terminal: one line, no control characters (no escape sequences)."""
    flat = " ".join("".join(char if char.isprintable() else " " for char in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
