"""Role interviews: no repository, questions from the bank (interviewer/role_bank.py) at the level each dimension
of the interview rubric names (`params: {level: senior}`), asked and settled like a project interview."""

from __future__ import annotations

from grader.model import Evidence
from interviewer.model import InterviewPlan, Topic
from interviewer.plan import GENERIC_PROBES
from interviewer.role_bank import TOPICS, questions_for
from rubrics.catalogue import InterviewDimensionParams
from rubrics.loader import LoadedRubric, leaf_paths

BANK_FILE = "interviewer/role_bank.py"


class UnknownTopic(ValueError):
    """A topic asked for that the rubric does not interview on."""


def role_topics(rubric: LoadedRubric) -> list[str]:
    """The dimensions of `rubric` a role interview asks about: those with a level."""
    return [
        path
        for path, _ in leaf_paths(rubric.rubric)
        if isinstance(params := rubric.params.get(path), InterviewDimensionParams) and params.level is not None
    ]


def build_role_plan(rubric: LoadedRubric, topics: list[str] | None = None) -> InterviewPlan:
    """The plan of a role interview on `topics` (all of the rubric's levelled dimensions when None)."""
    offered = role_topics(rubric)
    if not offered:
        raise UnknownTopic(
            f"rubric {rubric.rubric.id} has no dimension with a level: it is not a role interview rubric"
        )
    chosen = topics or offered
    if unknown := [topic for topic in chosen if topic not in offered]:
        raise UnknownTopic(
            f"not a topic of {rubric.rubric.id}: {', '.join(unknown)} (its topics: {', '.join(offered)})"
        )
    weights = {path: node.weight for path, node in leaf_paths(rubric.rubric)}
    asked = [path for path in offered if path in chosen]
    plan_topics: list[Topic] = []
    follow_ups: dict[str, int] = {}
    for path in asked:
        params = rubric.params[path]
        assert isinstance(params, InterviewDimensionParams) and params.level is not None
        follow_ups[path] = params.max_follow_ups
        found = questions_for(path, params.level)
        for question in found:
            plan_topics.append(
                Topic(
                    question.id,
                    path,
                    question.question,
                    f"{question.level} question on {TOPICS.get(path, path)}; a strong answer covers: "
                    + "; ".join(question.covers),
                    [Evidence(BANK_FILE, None, question.id)],
                    GENERIC_PROBES,
                    question.follow_ups,
                )
            )
        if not found:  # a dimension the bank has no questions for: asked from its title
            title = next(node.title for leaf, node in leaf_paths(rubric.rubric) if leaf == path)
            plan_topics.append(
                Topic(
                    f"dim-{path}",
                    path,
                    f"Tell me how you would approach {title.lower()}: what would you do, what would it cost, and "
                    "what would go wrong first?",
                    "the question bank has no question on this dimension; asked from its title",
                    [Evidence(BANK_FILE, None, path)],
                    GENERIC_PROBES,
                )
            )
    # Dimensions not chosen weigh nothing here: the interview neither asks about them nor waits for them to settle.
    return InterviewPlan(
        topics=plan_topics,
        rubric_id=rubric.rubric.id,
        dimension_weights={path: weight for path, weight in weights.items() if path in asked or path not in offered},
        max_follow_ups=follow_ups,
        opening=0,
        dimension_titles={path: node.title for path, node in leaf_paths(rubric.rubric)},
    )
