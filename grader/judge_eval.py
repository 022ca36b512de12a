"""Measuring the whole grader (static, dynamic and judge checks together) against human labels.

LABELS.json (docs/LABELLING.md "The file"):
  {"rubric": "<id or file>", "guide": "docs/LABELLING.md", "labeller": "A",
   "repos": [{"name": str, "path": str, "labels": {"<criterion path>": 0..3},
              "evidence": {"<criterion path>": {"refs": ["path:line", ...], "why": str}}}]}
`guide`, `labeller` and `evidence` are optional (the first labels files had none). Paths are relative to the
labels file.

Two ways to get Viva's levels, reported side by side when both are asked:
- static: each repository is graded like `viva grade --static-only` (static and judge checks run; dynamic leaves
  are not_run, counted as level 0 and reported);
- full: each repository's cached full report (bench/corpus_bench.py writes `<dir>/<owner>+<name>/report.json`) is
  read instead of grading; a repository without one is listed as missing, never graded here.

A split file (bench/corpus/split.json: {"test": [names]}) reports the development and test repositories apart.
The largest disagreements are drawn from the development split when there is one, so that reading them while
changing rules does not tune the grader to the frozen test split.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import msgspec

from grader.agreement import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Agreement,
    AgreementReport,
    Row,
    largest_disagreements,
    measure_agreement,
    measure_with_intervals,
)
from grader.errors import FetchError
from grader.pipeline import GradeOptions, grade
from grader.report.model import GradingReport
from grader.rescore import rescore
from grader.scoring import ScoredCriterion, score_level, walk
from rubrics.loader import LoadedRubric
from rubrics.model import Criterion

Mode = Literal["static", "full"]
SplitName = Literal["all", "development", "test"]
MODE_TITLES: dict[str, str] = {"static": "static-only", "full": "full"}
DISAGREEMENTS = 10


class LabelEvidence(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why a labeller chose a level: one to three `path:line` references and one sentence."""

    refs: list[str] = msgspec.field(default_factory=list)
    why: str = ""


class LabelledRepo(msgspec.Struct, frozen=True):
    name: str
    path: str = ""
    """Where the checkout is, relative to the labels file; needed only to grade it (static mode)."""
    labels: dict[str, int] = msgspec.field(default_factory=dict)
    evidence: dict[str, LabelEvidence] = msgspec.field(default_factory=dict)


class LabelSet(msgspec.Struct, frozen=True):
    rubric: str
    repos: list[LabelledRepo]
    guide: str = ""
    labeller: str = ""


class Split(msgspec.Struct, frozen=True):
    """The frozen test split: the names in `test`; every other labelled repository is development."""

    test: list[str]
    seed: int | None = None
    method: str = ""


class LeafView(msgspec.Struct, frozen=True, omit_defaults=True):
    """What Viva said about one leaf under a disagreeing criterion."""

    path: str
    status: str
    score: float | None
    explanation: str
    evidence: list[str] = msgspec.field(default_factory=list)
    """`path:line` locations the score rests on."""


class Disagreement(msgspec.Struct, frozen=True):
    repo: str
    criterion: str
    human: int
    grader: int | None
    """None when Viva could not score it (counted as 0)."""
    gap: int
    share: float
    """The criterion's share of the rubric's weight."""
    label: LabelEvidence
    viva: list[LeafView]


class MissingReport(msgspec.Struct, frozen=True):
    name: str
    reason: str


class SplitAgreement(msgspec.Struct, frozen=True):
    split: SplitName
    repositories: list[str]
    agreement: AgreementReport


class ModeResult(msgspec.Struct, frozen=True):
    mode: Mode
    rows: list[Row]
    splits: list[SplitAgreement]
    missing: list[MissingReport]
    disagreements: list[Disagreement]
    disagreements_from: SplitName
    notes: list[str] = msgspec.field(default_factory=list)


class HumanAgreement(msgspec.Struct, frozen=True):
    """The second labeller taken as the "grader" on the repositories both labelled, beside Viva on the same rows."""

    labeller: str
    second_labeller: str
    repositories: list[str]
    humans: AgreementReport
    viva: dict[str, AgreementReport]
    """Per mode, Viva against the first labeller on the overlap's rows that the mode could score."""


class JudgeEvalResult(msgspec.Struct, frozen=True):
    rubric: str
    agreement: Agreement
    """The first mode's point figures over every repository (what this result held before intervals)."""
    rows: list[Row]
    labeller: str = ""
    guide: str = ""
    modes: list[ModeResult] = msgspec.field(default_factory=list)
    human: HumanAgreement | None = None


# --- input files --------------------------------------------------------------------------------------------------


def load_labels(path: Path) -> LabelSet:
    labels = msgspec.json.decode(path.read_bytes(), type=LabelSet)
    seen: set[str] = set()
    for repo in labels.repos:
        if repo.name in seen:
            raise ValueError(f"{repo.name}: labelled twice")
        seen.add(repo.name)
        bad = {key: value for key, value in repo.labels.items() if not 0 <= value <= 3}
        if bad:
            raise ValueError(f"{repo.name}: labels must be levels 0..3, got {bad}")
        if stray := sorted(set(repo.evidence) - set(repo.labels)):
            raise ValueError(f"{repo.name}: evidence for criteria with no label: {', '.join(stray)}")
    return labels


def load_split(path: Path) -> Split:
    return msgspec.json.decode(path.read_bytes(), type=Split)


def check_criteria(labels: LabelSet, rubric: LoadedRubric) -> None:
    """Refuse labels for criteria the rubric does not have, before any grading starts."""
    known = set(criterion_shares(rubric))
    for repo in labels.repos:
        for criterion in sorted(repo.labels):
            if criterion not in known:
                raise ValueError(f"{repo.name}: {criterion!r} is not a criterion of {rubric.rubric.id}")


def criterion_shares(rubric: LoadedRubric) -> dict[str, float]:
    """Every criterion path of the rubric with its share of the whole rubric's weight."""
    shares: dict[str, float] = {}

    def visit(siblings: Sequence[Criterion], prefix: str, share: float) -> None:
        total = sum(criterion.weight for criterion in siblings)
        for criterion in siblings:
            path = f"{prefix}{criterion.id}"
            shares[path] = share * criterion.weight / total
            visit(criterion.children, f"{path}.", shares[path])

    visit(rubric.rubric.criteria, "", 1.0)
    return shares


# --- Viva's reports -----------------------------------------------------------------------------------------------

Reports = dict[str, GradingReport]


class Graded(msgspec.Struct, frozen=True):
    """Viva's reports of the labelled repositories, by name, and the repositories it has none for."""

    reports: Reports
    missing: list[MissingReport]


def grade_statically(labels: LabelSet, base: Path, rubric: LoadedRubric, options: GradeOptions) -> Graded:
    """Grade every labelled repository (static and judge checks); one that cannot be fetched is missing."""
    reports: Reports = {}
    missing: list[MissingReport] = []
    for repo in labels.repos:
        if not repo.path:
            missing.append(MissingReport(repo.name, "no path in the labels file"))
            continue
        with tempfile.TemporaryDirectory(prefix="viva-judge-eval-") as scratch:
            try:
                reports[repo.name] = grade(str((base / repo.path).resolve()), rubric, Path(scratch), options)
            except FetchError as error:
                missing.append(MissingReport(repo.name, f"could not be fetched: {error}"))
    return Graded(reports, missing)


def load_reports(
    labels: LabelSet,
    directory: Path,
    rubric: LoadedRubric,
    *,
    rescored: bool = False,
    static: Reports | None = None,
) -> Graded:
    """Each labelled repository's cached report: `<directory>/<owner>+<name>/report.json` (what the corpus bench
    writes) or `<directory>/<owner>+<name>.json`. Nothing is graded; `rescored` scores each report's recorded
    measurements again with this version's dynamic scorers (grader.rescore), and takes the static and judge leaves
    from `static` (this version's static-only reports, by name) where it has the repository."""
    reports: Reports = {}
    missing: list[MissingReport] = []
    for repo in labels.repos:
        slug = repo.name.replace("/", "+")
        candidates = [directory / slug / "report.json", directory / f"{slug}.json"]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            missing.append(MissingReport(repo.name, _why_no_report(directory / slug)))
            continue
        try:
            report = msgspec.json.decode(found.read_bytes(), type=GradingReport)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            missing.append(MissingReport(repo.name, f"{found}: unreadable report: {error}"))
            continue
        if report.rubric.id != rubric.rubric.id:
            missing.append(MissingReport(repo.name, f"graded with rubric {report.rubric.id!r}"))
            continue
        paths = {node.path for node, _ in walk(report.criteria)}
        if absent := sorted(set(repo.labels) - paths):
            missing.append(MissingReport(repo.name, f"its report has no criterion {', '.join(absent)}"))
            continue
        reports[repo.name] = rescore(report, rubric, (static or {}).get(repo.name)) if rescored else report
    return Graded(reports, missing)


def _why_no_report(folder: Path) -> str:
    """The corpus bench's own note of a grading that wrote no report (bench.json "error"), when there is one."""
    try:
        error = msgspec.json.decode((folder / "bench.json").read_bytes()).get("error")
    except (OSError, msgspec.DecodeError, AttributeError):
        error = None
    return f"no cached report (the grading failed: {error})" if error else "no cached report"


def compare(labels: LabelSet, reports: Mapping[str, GradingReport]) -> list[Row]:
    """(repository, criterion, human level, Viva's level or None) for every label of a repository with a report."""
    rows: list[Row] = []
    for repo in labels.repos:
        report = reports.get(repo.name)
        if report is None:
            continue
        levels = {node.path: score_level(node.score) for node, _ in walk(report.criteria)}
        rows.extend(
            (repo.name, criterion, human, levels[criterion]) for criterion, human in sorted(repo.labels.items())
        )
    return rows


# --- the measurement ----------------------------------------------------------------------------------------------


def split_groups(labels: LabelSet, split: Split | None) -> dict[SplitName, list[str]]:
    """Repository names per split: "all" always; "development" and "test" with a split file."""
    names = [repo.name for repo in labels.repos]
    if split is None:
        return {"all": names}
    test = set(split.test)
    return {
        "all": names,
        "development": [name for name in names if name not in test],
        "test": [name for name in names if name in test],
    }


def measure_mode(
    mode: Mode,
    labels: LabelSet,
    graded: Graded,
    rubric: LoadedRubric,
    split: Split | None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ModeResult:
    reports, shares = graded.reports, criterion_shares(rubric)
    rows = compare(labels, reports)
    groups = split_groups(labels, split)
    splits = [
        SplitAgreement(split=name, repositories=members, agreement=_measure_within(rows, members, resamples, seed))
        for name, members in groups.items()
    ]
    source: SplitName = "development" if split is not None else "all"
    chosen = set(groups[source])
    worst = largest_disagreements([row for row in rows if row[0] in chosen], shares, DISAGREEMENTS)
    notes = _rubric_changes(reports, rubric)
    if split is not None and (unlabelled := sorted(set(split.test) - {repo.name for repo in labels.repos})):
        notes.append(f"test split repositories with no labels: {', '.join(unlabelled)}")
    return ModeResult(
        mode=mode,
        rows=rows,
        splits=splits,
        missing=graded.missing,
        disagreements=[_disagreement(row, labels, reports, shares) for row in worst],
        disagreements_from=source,
        notes=notes,
    )


def _rubric_changes(reports: Reports, rubric: LoadedRubric) -> list[str]:
    """A note per older rubric content some reports were graded with: their levels may not be today's."""
    by_hash: dict[str, list[str]] = {}
    for name, report in reports.items():
        if report.reproduction.rubric_hash != rubric.content_hash:
            by_hash.setdefault(report.reproduction.rubric_hash, []).append(name)
    return [
        f"{len(names)} report(s) graded with rubric content {_short(digest)}, not the current "
        f"{_short(rubric.content_hash)}: " + ", ".join(sorted(names))
        for digest, names in sorted(by_hash.items())
    ]


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _measure_within(rows: Sequence[Row], members: Sequence[str], resamples: int, seed: int) -> AgreementReport:
    chosen = set(members)
    return measure_with_intervals([row for row in rows if row[0] in chosen], resamples=resamples, seed=seed)


def _disagreement(row: Row, labels: LabelSet, reports: Reports, shares: Mapping[str, float]) -> Disagreement:
    repo, criterion, human, grader = row
    labelled = next(entry for entry in labels.repos if entry.name == repo)
    node = next(node for node, _ in walk(reports[repo].criteria) if node.path == criterion)
    return Disagreement(
        repo=repo,
        criterion=criterion,
        human=human,
        grader=grader,
        gap=abs(human - (grader or 0)),
        share=round(shares.get(criterion, 0.0), 4),
        label=labelled.evidence.get(criterion, LabelEvidence()),
        viva=[_leaf_view(leaf) for leaf, _ in walk([node]) if not leaf.children],
    )


def _leaf_view(leaf: ScoredCriterion) -> LeafView:
    return LeafView(
        path=leaf.path,
        status=leaf.status,
        score=None if leaf.score is None else round(leaf.score, 4),
        explanation=leaf.explanation,
        evidence=[evidence.location for evidence in leaf.evidence],
    )


def measure_humans(
    labels: LabelSet,
    second: LabelSet,
    modes: Sequence[ModeResult],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> HumanAgreement:
    """The second labeller against the first on the (repository, criterion) pairs both labelled, and each mode's
    Viva against the first labeller on exactly those pairs."""
    if second.rubric != labels.rubric:
        raise ValueError(f"the second labels are for rubric {second.rubric!r}, not {labels.rubric!r}")
    theirs = {repo.name: repo.labels for repo in second.repos}
    rows: list[Row] = [
        (repo.name, criterion, human, theirs[repo.name][criterion])
        for repo in labels.repos
        if repo.name in theirs
        for criterion, human in sorted(repo.labels.items())
        if criterion in theirs[repo.name]
    ]
    overlap = {(row[0], row[1]) for row in rows}
    return HumanAgreement(
        labeller=labels.labeller or "1",
        second_labeller=second.labeller or "2",
        repositories=sorted({row[0] for row in rows}),
        humans=measure_with_intervals(rows, resamples=resamples, seed=seed),
        viva={
            mode.mode: measure_with_intervals(
                [row for row in mode.rows if (row[0], row[1]) in overlap], resamples=resamples, seed=seed
            )
            for mode in modes
        },
    )


def evaluate(
    labels: LabelSet,
    base: Path,
    rubric: LoadedRubric,
    options: GradeOptions | None,
    *,
    reports: Path | None = None,
    rescored: bool = False,
    split: Split | None = None,
    second: LabelSet | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> JudgeEvalResult:
    """Grade statically with `options` (None: not at all) and/or read full reports from `reports`, and measure
    each against the labels; with `second`, the two labellers against each other too."""
    if options is None and reports is None:
        raise ValueError("nothing to measure: neither static grading nor a reports directory")
    for labelled in [labels, second] if second else [labels]:
        check_criteria(labelled, rubric)
    modes: list[ModeResult] = []
    static: Reports | None = None
    if options is not None:
        graded = grade_statically(labels, base, rubric, options)
        static = graded.reports
        modes.append(measure_mode("static", labels, graded, rubric, split, resamples=resamples, seed=seed))
    if reports is not None:
        cached = load_reports(labels, reports, rubric, rescored=rescored, static=static)
        modes.append(measure_mode("full", labels, cached, rubric, split, resamples=resamples, seed=seed))
    human = measure_humans(labels, second, modes, resamples=resamples, seed=seed) if second else None
    return JudgeEvalResult(
        rubric=rubric.rubric.id,
        agreement=measure_agreement(modes[0].rows),
        rows=modes[0].rows,
        labeller=labels.labeller,
        guide=labels.guide,
        modes=modes,
        human=human,
    )
