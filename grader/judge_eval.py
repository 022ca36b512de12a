"""Measuring the whole grader (static, dynamic and judge checks together) against human labels.

LABELS.json: {"rubric": "<id or file>", "repos": [{"name": str, "path": str, "labels": {"<criterion path>": 0..3}}]}
Paths are relative to the labels file. Each repository is graded like `viva grade` would (static and judge
checks run; dynamic ones are not_run here and count as level 0, reported), then compared.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec

from grader.agreement import Agreement, measure_agreement
from grader.pipeline import GradeOptions, grade
from grader.scoring import score_level, walk
from rubrics.loader import LoadedRubric


class LabelledRepo(msgspec.Struct, frozen=True):
    name: str
    path: str
    labels: dict[str, int]


class LabelSet(msgspec.Struct, frozen=True):
    rubric: str
    repos: list[LabelledRepo]


class JudgeEvalResult(msgspec.Struct, frozen=True):
    rubric: str
    agreement: Agreement
    rows: list[tuple[str, str, int, int | None]]


def load_labels(path: Path) -> LabelSet:
    labels = msgspec.json.decode(path.read_bytes(), type=LabelSet)
    for repo in labels.repos:
        bad = {key: value for key, value in repo.labels.items() if not 0 <= value <= 3}
        if bad:
            raise ValueError(f"{repo.name}: labels must be levels 0..3, got {bad}")
    return labels


def evaluate(labels: LabelSet, base: Path, rubric: LoadedRubric, options: GradeOptions) -> JudgeEvalResult:
    rows: list[tuple[str, str, int, int | None]] = []
    for repo in labels.repos:
        with tempfile.TemporaryDirectory(prefix="viva-judge-eval-") as scratch:
            report = grade(str((base / repo.path).resolve()), rubric, Path(scratch), options)
        levels = {node.path: score_level(node.score) for node, _ in walk(report.criteria)}
        for criterion, human in sorted(repo.labels.items()):
            if criterion not in levels:
                raise ValueError(f"{repo.name}: {criterion!r} is not a criterion of {rubric.rubric.id}")
            rows.append((repo.name, criterion, human, levels[criterion]))
    return JudgeEvalResult(rubric=rubric.rubric.id, agreement=measure_agreement(rows), rows=rows)
