"""The grading flow: fetch → profile → checks → score → report. I/O lives here; the arithmetic does not.

Leaves whose checks this run cannot perform are `not_run` with the reason, never 0: dynamic checks need
the sandbox and interview checks an interview. Judge leaves run on the judge model (offline by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from grader.checks.collection import in_main_project, in_project, most_projects, sampled
from grader.checks.static import run_static_check
from grader.dynamic.model import DynamicRun
from grader.dynamic.options import STEPS as DYNAMIC_STEPS
from grader.dynamic.options import DynamicOptions
from grader.fetch import FetchedRepo, FetchLimits, fetch
from grader.judge.offline import offline_judge
from grader.judge.run import run_judge_check
from grader.model import Evidence, Score
from grader.profile import ProfileLimits, RepoProfile, build_profile
from grader.profile.projects import Layout, find_layout
from grader.report.model import (
    REPORT_SCHEMA_VERSION,
    Flag,
    GradingReport,
    RepoRef,
    Reproduction,
    RubricRef,
    StageTiming,
    not_run_items,
)
from grader.scoring import score_rubric
from llm.budget import BudgetBook
from llm.errors import LLMError
from llm.metered import MeteredCaller
from llm.select import ProviderKeys, Router, build_chain
from rubrics.loader import LoadedRubric, leaf_paths
from rubrics.model import Criterion

STAGES = ("fetch", "profile", "checks", "sandbox", "score")

ProgressCallback = Callable[[str, int, int], None]
"""Called as (stage, done, total) while a stage advances; total 0 means "unknown yet"."""

_GITHUB_TARGET = re.compile(
    r"^(?:https://github\.com/)?(?P<owner>[A-Za-z0-9][\w.-]*)/(?P<name>[\w.-]+?)(?:\.git)?/?(?:@.*)?$"
)


JUDGE_ACCOUNT = "grading:run"
"""The budget account the judge's model calls are charged to."""


@dataclass(frozen=True)
class GradeOptions:
    """How one grading run behaves, beyond what to grade and with which rubric."""

    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    profile_limits: ProfileLimits = field(default_factory=ProfileLimits)
    allow_local: bool = False
    static_only: bool = False
    disabled_checks: Sequence[str] = ()
    token: str | None = field(default=None, repr=False)
    judge_models: Sequence[str] = ("offline",)
    """Model strings for the LLM judge (llm.spec), one per voter; each may be a comma-separated fallback chain.
    A judge leaf with `votes: N` asks the voters in turn and keeps what most of them verified."""
    judge_keys: ProviderKeys = field(default_factory=ProviderKeys, repr=False)
    judge_budget_usd: float | None = 0.50
    budget_book: BudgetBook | None = None
    dynamic: DynamicOptions = field(default_factory=DynamicOptions)


def viva_version() -> str:
    try:
        return metadata.version("viva")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def grade(
    target: str,
    rubric: LoadedRubric,
    scratch_dir: Path,
    options: GradeOptions | None = None,
    progress: ProgressCallback | None = None,
) -> GradingReport:
    """Grade `target` against `rubric`. Raises grader.errors.FetchError when the target cannot be fetched;
    every later problem becomes part of the report."""
    options = options or GradeOptions()
    stages = _Stages(progress or (lambda stage, done, total: None))
    with stages.stage("fetch"):
        fetched = fetch(target, scratch_dir, options.fetch_limits, token=options.token, allow_local=options.allow_local)
    root = Path(fetched.root)
    with stages.stage("profile"):
        profile = build_profile(root, options.profile_limits)
        projects = _Projects.read(root, options.profile_limits)
    leaves = leaf_paths(rubric.rubric)
    with stages.stage("checks", len(leaves), announce=False):
        leaf_scores, dynamic_leaves = _run_checks(
            leaves, rubric, profile, root, options, projects=projects, notify=stages.notify
        )
    dynamic: DynamicRun | None = None
    if dynamic_leaves:
        with stages.stage("sandbox", len(DYNAMIC_STEPS)):
            dynamic_scores, dynamic = _run_sandbox(
                dynamic_leaves, root, profile, scratch_dir, options, notify=stages.notify
            )
        leaf_scores |= dynamic_scores
    with stages.stage("score", announce=False):
        scored = score_rubric(rubric.rubric, leaf_scores)

    version = viva_version()
    return GradingReport(
        schema_version=REPORT_SCHEMA_VERSION,
        viva_version=version,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        score=scored.score,
        coverage=scored.coverage,
        rubric=RubricRef(
            id=rubric.rubric.id, version=rubric.rubric.version, hash=rubric.content_hash, title=rubric.rubric.title
        ),
        repo=_repo_ref(fetched),
        criteria=scored.criteria,
        reproduction=Reproduction(
            viva_version=version,
            rubric_hash=rubric.content_hash,
            commit=fetched.commit,
            base_image_digest=dynamic.sandbox.base_image_id if dynamic else None,
            models=list(options.judge_models) + ([dynamic.gateway.model] if dynamic else []),
            gateway=msgspec.to_builtins(dynamic.gateway) if dynamic else {},
            static_only=options.static_only,
        ),
        not_run=not_run_items(scored.criteria),
        flags=_flags(fetched, profile, projects.layout),
        timings=stages.timings,
        profile=msgspec.to_builtins(profile),
        dynamic=dynamic,
    )


@dataclass
class _Stages:
    """The grading's stages as they run: progress events to `notify`, and how long each took."""

    notify: ProgressCallback
    timings: list[StageTiming] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1, *, announce: bool = True) -> Iterator[None]:
        """Time one stage: (name, 0, total) as it starts when `announce`, (name, total, total) once it is done.
        A stage that raises reports no end and no timing: the grading stops there."""
        started = time.perf_counter()
        if announce:
            self.notify(name, 0, total)
        yield
        self.notify(name, total, total)
        self.timings.append(StageTiming(name, time.perf_counter() - started))


Leaf = tuple[str, str, Any]
"""(path, check name, validated params) of one rubric leaf."""


@dataclass(frozen=True)
class _Projects:
    """A repository of several projects, as the static and judge checks read it (grader.profile.projects): the
    main project's profile when the README runs one, else a profile per (sampled) project; nothing for one project."""

    layout: Layout
    profiles: dict[str, RepoProfile]

    @classmethod
    def read(cls, root: Path, limits: ProfileLimits) -> _Projects:
        from grader.profile.build import build_profile_from  # noqa: PLC0415 - loads with build_profile
        from grader.profile.projects import main_project_files, project_files  # noqa: PLC0415 - as above

        layout = find_layout(root)
        if not layout.collection:
            return cls(layout, {})
        if layout.main is not None:
            files = main_project_files(root, layout, limits.max_file_bytes)
            return cls(layout, {layout.main: build_profile_from(root, files, limits)})
        return cls(
            layout,
            {
                project: build_profile_from(root / project, project_files(root, project, limits.max_file_bytes), limits)
                for project in sampled(layout.projects)
            },
        )

    def static(self, name: str, params: Any, whole: RepoProfile) -> Score:
        if not self.profiles:
            return run_static_check(name, whole, params)
        if self.layout.main is not None:
            return in_main_project(self.layout, run_static_check(name, self.profiles[self.layout.main], params))
        return most_projects(
            self.layout,
            {
                project: in_project(project, run_static_check(name, profile, params))
                for project, profile in self.profiles.items()
            },
        )

    @property
    def judged_apart(self) -> bool:
        """Whether the judge reads each project apart (no main one); otherwise it reads the whole repository."""
        return bool(self.profiles) and self.layout.main is None


def _run_checks(
    leaves: list[tuple[str, Criterion]],
    rubric: LoadedRubric,
    profile: RepoProfile,
    root: Path,
    options: GradeOptions,
    *,
    projects: _Projects,
    notify: ProgressCallback,
) -> tuple[dict[str, Score], list[Leaf]]:
    """Scores for every leaf but the dynamic ones this run will perform in the sandbox, which are returned."""
    leaf_scores: dict[str, Score] = {}
    judge_leaves: list[Leaf] = []
    dynamic_leaves: list[Leaf] = []
    for done, (path, criterion) in enumerate(leaves, start=1):
        assert criterion.check is not None, "a validated rubric has a check on every leaf"
        kind, name = criterion.check.kind, criterion.check.name
        if kind == "judge" and name not in options.disabled_checks:
            judge_leaves.append((path, name, rubric.params[path]))
            continue
        if kind == "dynamic" and name not in options.disabled_checks and not options.static_only:
            dynamic_leaves.append((path, name, rubric.params[path]))
            continue
        leaf_scores[path] = _score_leaf(kind, name, rubric.params[path], profile, projects=projects, options=options)
        notify("checks", done, len(leaves))
    if judge_leaves and projects.judged_apart:
        by_project = _run_judge(judge_leaves, [root / project for project in projects.profiles], options)
        for path, _, _ in judge_leaves:
            leaf_scores[path] = most_projects(
                projects.layout,
                {
                    project: in_project(project, scores[path])
                    for project, scores in zip(projects.profiles, by_project, strict=True)
                },
            )
    elif judge_leaves:
        leaf_scores |= _run_judge(judge_leaves, [root], options)[0]
    return leaf_scores, dynamic_leaves


def _run_sandbox(
    dynamic_leaves: list[Leaf],
    root: Path,
    profile: RepoProfile,
    scratch_dir: Path,
    options: GradeOptions,
    *,
    notify: ProgressCallback,
) -> tuple[dict[str, Score], DynamicRun | None]:
    """The dynamic leaves, run in the sandbox; each of its steps advances the "sandbox" stage by one."""
    from grader.dynamic.run import run_dynamic  # noqa: PLC0415 - the sandbox and its probes load only when needed

    return run_dynamic(
        root,
        profile,
        dynamic_leaves,
        scratch_dir / "dynamic",
        options.dynamic,
        # By the step's place, not a count: a step can come more than once (a start tried again, its layer).
        step=lambda name: notify("sandbox", DYNAMIC_STEPS.index(name) + 1, len(DYNAMIC_STEPS)),
    )


def _score_leaf(
    kind: str, name: str, params: Any, profile: RepoProfile, *, projects: _Projects, options: GradeOptions
) -> Score:
    if name in options.disabled_checks:
        return Score.not_run(f"The check {name!r} is switched off in this deployment (VIVA_GRADING_DISABLED_CHECKS).")
    if kind == "static":
        return projects.static(name, params, profile)
    if kind == "dynamic":
        return Score.not_run("Dynamic checks were skipped for this run (--static-only).", basis="dynamic")
    if kind == "judge":
        return Score.not_run(f"The judge check {name!r} is switched off in this deployment.", basis="judge")
    return Score.not_run("Interview dimensions are rated in an interview, not by grading.", basis="interview")


def _run_judge(leaves: list[Leaf], roots: Sequence[Path], options: GradeOptions) -> list[dict[str, Score]]:
    """Judge leaves run on the judge voters (offline by default) for each of `roots` (the repository, or each
    project of a collection), metered against the grading run's one budget."""
    book = options.budget_book or BudgetBook()
    account = JUDGE_ACCOUNT
    book.open_account(account, options.judge_budget_usd)
    try:
        voters = [
            MeteredCaller(Router(build_chain(text, offline_judge, options.judge_keys)), book)
            for text in options.judge_models
        ]
    except LLMError as error:
        unconfigured = Score.not_run(f"The judge model is not configured: {error}", basis="judge")
        return [{path: unconfigured for path, _, _ in leaves} for _ in roots]

    async def judge_all() -> list[dict[str, Score]]:
        return [
            {path: await run_judge_check(name, params, root, voters, [account]) for path, name, params in leaves}
            for root in roots
        ]

    return asyncio.run(judge_all())


def _repo_ref(fetched: FetchedRepo) -> RepoRef:
    web_url = None
    match = _GITHUB_TARGET.match(fetched.target)
    if fetched.source_kind == "remote" and match and fetched.commit:
        web_url = f"https://github.com/{match['owner']}/{match['name']}/blob/{fetched.commit}/"
    return RepoRef(
        target=fetched.target,
        source_kind=fetched.source_kind,
        commit=fetched.commit,
        ref=fetched.ref,
        dirty=fetched.dirty,
        web_url=web_url,
    )


def _flags(fetched: FetchedRepo, profile: RepoProfile, layout: Layout) -> list[Flag]:
    flags: list[Flag] = []
    if layout.collection:
        reading = (
            f"the static and judge checks read {layout.main}, the main one, with the root's own files"
            if layout.main
            else "each static and judge check keeps the score most of them reach"
        )
        flags.append(
            Flag(
                kind="project_layout",
                message=f"A repository of {len(layout.projects)} projects ({layout.reason}): {reading}.",
                evidence=[Evidence(project) for project in layout.projects],
            )
        )
    if profile.grader_addressed:
        flags.append(
            Flag(
                kind="grader_addressed_text",
                message=f"{len(profile.grader_addressed)} passage(s) in the repository address the grader; "
                "they were read as data and changed no score.",
                evidence=list(profile.grader_addressed),
            )
        )
    flags += [Flag(kind="skipped_file", message=f"{item.path}: {item.reason}") for item in fetched.skipped]
    flags += [Flag(kind="fetch_note", message=note) for note in fetched.notes]
    return flags
