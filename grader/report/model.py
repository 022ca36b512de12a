"""The grading report: what report.json holds. Versioned; exported as JSON Schema (grader/report/report.schema.json).

Bump REPORT_SCHEMA_VERSION on any change that removes or renames a field or changes a meaning;
adding an optional field keeps the version.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from grader.dynamic.model import DynamicRun
from grader.model import Evidence
from grader.scoring import ScoredCriterion, walk
from rubrics.schema import tidy_descriptions

REPORT_SCHEMA_VERSION = 1

FlagKind = Literal["grader_addressed_text", "skipped_file", "fetch_note", "profile_note", "project_layout"]


class RubricRef(msgspec.Struct, frozen=True):
    """Which rubric graded this: id and version as the rubric claims them, plus a hash of its content."""

    id: str
    version: int
    hash: str
    title: str = ""


class RepoRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """What was graded: the target as given (never with credentials) and the exact commit."""

    target: str
    source_kind: str
    commit: str | None = None
    ref: str | None = None
    dirty: bool = False
    web_url: str | None = None
    """Base URL for links to files at the graded commit (GitHub targets only)."""


class NotRunItem(msgspec.Struct, frozen=True):
    """A criterion Viva could not score, and why. Excluded from the mean and from coverage."""

    path: str
    reason: str


class Flag(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something a reviewer should know that is not a score: planted instructions, skipped files, notes."""

    kind: FlagKind
    message: str
    evidence: list[Evidence] = msgspec.field(default_factory=list)


class StageTiming(msgspec.Struct, frozen=True):
    stage: str
    seconds: float


class Reproduction(msgspec.Struct, frozen=True, omit_defaults=True):
    """What is needed to reproduce this report."""

    viva_version: str
    rubric_hash: str
    commit: str | None = None
    base_image_digest: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    gateway: dict[str, Any] = msgspec.field(default_factory=dict)
    static_only: bool = False


class GradingReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """A whole grading report. `score` is None only when nothing at all could be scored."""

    schema_version: int
    viva_version: str
    generated_at: str
    score: float | None
    coverage: float
    rubric: RubricRef
    repo: RepoRef
    criteria: list[ScoredCriterion]
    reproduction: Reproduction
    not_run: list[NotRunItem] = msgspec.field(default_factory=list)
    flags: list[Flag] = msgspec.field(default_factory=list)
    timings: list[StageTiming] = msgspec.field(default_factory=list)
    profile: dict[str, Any] = msgspec.field(default_factory=dict)
    """The static profile of the repository (grader.profile), for reviewers and for the interviewer."""
    dynamic: DynamicRun | None = None
    """What running the project measured (grader.dynamic): absent when dynamic checks did not run."""


def report_json_schema() -> dict[str, Any]:
    """JSON Schema of report.json, with the schema version stated."""
    schema: dict[str, Any] = tidy_descriptions(msgspec.json.schema(GradingReport))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Viva grading report, schema version {REPORT_SCHEMA_VERSION}"
    return schema


def not_run_items(criteria: list[ScoredCriterion]) -> list[NotRunItem]:
    """The leaves Viva could not score, with the reason each gives."""
    return [
        NotRunItem(path=node.path, reason=node.explanation)
        for node, _ in walk(criteria)
        if not node.children and node.status != "scored"
    ]
