"""Terminal output for the CLI: a progress bar per grading stage, the summary table, rubric trees.

Text from a candidate's repository is printed through rich's escaping (`escape`), so a file name or
excerpt cannot smuggle console markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from grader.report.format import percent
from grader.report.model import GradingReport
from rubrics.errors import RubricError, RubricInvalid
from rubrics.loader import LoadedRubric
from rubrics.model import Criterion

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per grading stage, drawn on stderr so a piped stdout stays clean."""
    from grader.pipeline import STAGES  # noqa: PLC0415 - the grader (and pydantic-ai) loads only when grading

    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {stage: progress.add_task(stage, total=None, start=False) for stage in STAGES}

        def advance(stage: str, done: int, total: int) -> None:
            task = tasks.get(stage)
            if task is None:
                return
            progress.start_task(task)
            progress.update(task, completed=done, total=total or None)

        yield advance


def print_summary(report: GradingReport, written: list[Path]) -> None:
    table = Table(title=f"Viva — {escape(report.repo.target)}", title_justify="left")
    table.add_column("criterion")
    table.add_column("score", justify="right")
    table.add_column("", min_width=20)
    table.add_column("basis")
    for node in report.criteria:
        table.add_row(escape(node.title), percent(node.score), _bar(node.score), ", ".join(node.basis) or node.status)
    console.print(table)
    console.print(
        f"[bold]Score {percent(report.score)}[/bold] · coverage {percent(report.coverage)} of the rubric's weight · "
        f"commit {report.repo.commit or 'n/a'}"
    )
    if report.not_run:
        console.print(f"{len(report.not_run)} criteria not run (see the report for why).")
    addressed = [flag for flag in report.flags if flag.kind == "grader_addressed_text"]
    if addressed:
        console.print(
            f"[red]Text addressed to the grader found in {len(addressed[0].evidence)} place(s); ignored.[/red]"
        )
    for path in written:
        console.print(f"wrote {escape(str(path))}")


def _bar(value: float | None, width: int = 20) -> str:
    if value is None:
        return "[dim]not run[/dim]"
    filled = round(value * width)
    colour = "green" if value >= 0.75 else "yellow" if value >= 0.4 else "red"
    return f"[{colour}]{'█' * filled}[/{colour}][dim]{'░' * (width - filled)}[/dim]"


def print_rubric(loaded: LoadedRubric) -> None:
    rubric = loaded.rubric
    tree = Tree(f"[bold]{escape(rubric.title)}[/bold] ({rubric.id} v{rubric.version}, {loaded.content_hash[:19]})")
    _add_children(tree, rubric.criteria, "", loaded)
    console.print(tree)


def _add_children(parent: Tree, criteria: list[Criterion], prefix: str, loaded: LoadedRubric) -> None:
    total = sum(node.weight for node in criteria)
    for node in criteria:
        path = f"{prefix}{node.id}"
        label = f"{escape(node.title)} [dim]{path} · weight {node.weight:g} ({node.weight / total:.0%})[/dim]"
        if node.check is not None:
            params = loaded.params.get(path)
            shown = ", ".join(f"{key}={value!r}" for key, value in _fields(params).items())
            label += f"\n  [cyan]{node.check.kind}:{node.check.name}[/cyan] {escape(shown)}"
        branch = parent.add(label)
        _add_children(branch, node.children, f"{path}.", loaded)


def _fields(params: object) -> dict[str, object]:
    names = getattr(params, "__struct_fields__", ())
    return {name: getattr(params, name) for name in names}


def print_rubric_problems(error: RubricError) -> None:
    if isinstance(error, RubricInvalid):
        errors.print(f"{escape(error.source)}: {len(error.problems)} problem(s)")
        for problem in error.problems:
            errors.print(f"  {escape(str(problem))}")
    else:
        errors.print(escape(str(error)))
