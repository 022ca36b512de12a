"""`viva judge-eval LABELS.json`: agreement between the grader and human labels, printed and saved as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from server.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("judge-eval", help="measure the grader against human labels (QWK first)")
    parser.add_argument("labels", type=Path, help="LABELS.json")
    parser.add_argument(
        "--judge-model",
        action="append",
        default=None,
        help="model string for the LLM judge; repeat for several voting judges (default: offline)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The grader (and with it pydantic-ai) loads only for this command; every other command builds this parser.
    from grader.judge_eval import evaluate, load_labels  # noqa: PLC0415 - see above
    from grader.pipeline import GradeOptions  # noqa: PLC0415 - as above
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - as above

    try:
        labels = load_labels(args.labels)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
        print(f"viva: {args.labels}: not a valid labels file: {error}")
        return 1
    options = GradeOptions(
        fetch_limits=settings.fetch,
        profile_limits=settings.profile,
        allow_local=True,
        static_only=True,
        judge_models=args.judge_model or ["offline"],
        judge_keys=settings.llm,
    )
    result = evaluate(labels, args.labels.parent, resolve_rubric(labels.rubric), options)
    a = result.agreement
    print(f"{a.pairs} labelled criteria over {len(labels.repos)} repositories (rubric {result.rubric})")
    print(f"quadratic weighted kappa  {a.qwk:.3f}")
    print(f"exact agreement           {a.exact:.1%}")
    print(f"within one level          {a.within_one:.1%}")
    print(f"Spearman of totals        {a.spearman_totals:.3f}")
    print(f"not run, counted as 0     {a.not_run_counted_as_zero}")
    for criterion, matrix in sorted(a.confusion.items()):
        worst = sum(matrix[h][p] for h in range(4) for p in range(4) if h != p)
        if worst:
            rows = " ".join("".join(str(cell) for cell in row) for row in matrix)
            print(f"  {criterion:<24} disagreements {worst}  (human rows × grader cols: {rows})")
    if args.out:
        args.out.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2))
    return 0
