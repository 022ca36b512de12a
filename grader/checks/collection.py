"""Scoring a repository of several projects (grader.profile.projects) the way the labelling guide says a reviewer
does: the main project's score when the README runs one, else the score most of its projects reach.

"Most" is more than half: with four projects a feature counts when three have it, so the score kept is the one at
position n // 2 of the projects' scores sorted from best to worst (the lower middle). The projects' own files
are graded with their folder as the root, so every path in their evidence is put back under that folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grader.model import Evidence, Score
from grader.profile.projects import Layout

MAX_PROJECTS = 12
"""Projects graded one by one in a collection; a larger one is sampled evenly by name (a cookbook of 40 recipes
costs twelve profiles, not forty)."""


def sampled(projects: Sequence[str]) -> list[str]:
    """At most MAX_PROJECTS of `projects`, evenly spaced in their (sorted) order, always including the first."""
    if len(projects) <= MAX_PROJECTS:
        return list(projects)
    step = len(projects) / MAX_PROJECTS
    return [projects[int(index * step)] for index in range(MAX_PROJECTS)]


def in_project(project: str, score: Score) -> Score:
    """`score`, computed with `project`'s folder as the root, with its evidence paths relative to the repository.
    CI workflows (`.github/…`) are the root's own and stay as they are."""
    moved = [_moved(project, item) for item in score.evidence]
    return Score(score.status, score.explanation, score.value, score.basis, moved)


def _moved(project: str, item: Evidence) -> Evidence:
    if item.path.startswith(".github/"):
        return item
    path = project if item.path in ("", ".") else f"{project}/{item.path}"
    return Evidence(path, item.line, item.excerpt, item.note)


def most_projects(layout: Layout, scores: Mapping[str, Score]) -> Score:
    """One leaf's score for a collection with no main project, from each graded project's score (evidence already
    relative to the repository). Projects whose check could not run are left out; if none ran, the first reason."""
    ran = sorted(
        ((score.value, project) for project, score in scores.items() if score.status == "scored"),
        key=lambda pair: (-(pair[0] or 0.0), pair[1]),
    )
    if not ran:
        return next(iter(scores.values()))
    value, project = ran[len(ran) // 2]
    value = value or 0.0
    reaching = sum(1 for other, _ in ran if (other or 0.0) >= value)
    kept = scores[project]
    graded = len(scores)
    of_all = f"{graded} of its {len(layout.projects)} projects, sampled evenly," if graded < len(layout.projects) else (
        f"its {graded} projects"
    )  # fmt: skip
    explanation = (
        f"A repository of {len(layout.projects)} projects with none presented as the main one ({layout.reason}); "
        f"scored on {of_all} keeping the score most of them reach ({reaching} of {len(ran)} at {value:.2f} or "
        f"above). {project}: {kept.explanation}"
    )
    return Score(kept.status, explanation, kept.value, kept.basis, kept.evidence)


def in_main_project(layout: Layout, score: Score) -> Score:
    """One leaf's score computed on the main project (and the root's own files), saying so."""
    if score.status != "scored" or layout.main is None:
        return score
    explanation = (
        f"Scored on {layout.main}, the main one of the repository's {len(layout.projects)} projects "
        f"({layout.reason}). {score.explanation}"
    )
    return Score(score.status, explanation, score.value, score.basis, score.evidence)
