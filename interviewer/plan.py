"""The interview plan: topics chosen by code from the repository profile and the grading findings, each with
its reason and a `path:line` it rests on, ordered and apportioned by the interview rubric's weights.

The model never writes the plan, so nothing in the repository or the answers can change it.
"""

from __future__ import annotations

from collections.abc import Callable

from grader.checks.registry import CheckRegistry
from grader.model import Evidence
from grader.profile.model import RepoProfile
from grader.report.model import GradingReport
from grader.scoring import walk
from interviewer.model import InterviewPlan, Topic
from rubrics.catalogue import InterviewDimensionParams
from rubrics.loader import LoadedRubric, leaf_paths

# Which interview dimension a grading criterion's findings feed.
FINDING_DIMENSION = {
    "evals": "evaluation_design",
    "injection": "security",
    "citations": "retrieval_design",
    "cost": "cost_latency",
    "latency": "cost_latency",
    "engineering": "failure_analysis",
}
FINDING_SLOTS = 2
"""Topics the plan keeps for the grading's findings when there are any."""
WEAK_BELOW = 0.5
"""A leaf scored below this is a finding worth asking about."""
GENERIC_PROBES = [
    "What did that cost you — what got slower, pricier or harder?",
    "Give me a number: how big, how fast, how often?",
    "What breaks first, and how would you find out?",
]


def build_plan(
    profile: RepoProfile, rubric: LoadedRubric, report: GradingReport | None = None, max_topics: int = 14
) -> InterviewPlan:
    anchor = _anchor(profile)
    weights = {path: node.weight for path, node in leaf_paths(rubric.rubric)}
    candidates: list[Topic] = []
    for builder in BUILDERS:
        try:
            topic = builder(profile, anchor)
        except Exception:  # Viva's bug loses this repository-specific topic only; its dimension is still asked below
            topic = None
        if topic is not None and topic.dimension in weights:
            candidates.append(topic)
    findings = _finding_topics(report, anchor, weights) if report is not None else []
    for path, node in leaf_paths(rubric.rubric):
        if not any(topic.dimension == path for topic in candidates):
            candidates.append(_dimension_topic(path, node.check.name if node.check else "", node.title, rubric, anchor))
    # The opener frames the problem; then the grading's heaviest findings (at least FINDING_SLOTS of them when there
    # are any: what the grading found is what an interviewer who read the report asks about); then every dimension
    # once, heavier first; then the heavy ones again.
    ordered = sorted(
        candidates, key=lambda topic: (topic.dimension != "problem_framing", -weights.get(topic.dimension, 0.0))
    )
    chosen: list[Topic] = []
    per_dimension: dict[str, int] = {}

    def take(topic: Topic) -> None:
        chosen.append(topic)
        per_dimension[topic.dimension] = per_dimension.get(topic.dimension, 0) + 1

    opener = next((topic for topic in ordered if topic.dimension == "problem_framing"), None)
    if opener is not None:
        take(opener)
    for topic in findings[:FINDING_SLOTS]:
        take(topic)
    for topic in ordered:
        if topic not in chosen and per_dimension.get(topic.dimension, 0) == 0:
            take(topic)
    for topic in [*findings[FINDING_SLOTS:], *ordered]:
        if len(chosen) >= max_topics:
            break
        if topic not in chosen and per_dimension.get(topic.dimension, 0) < 2:
            take(topic)
    reserved = {topic.id for topic in findings[:FINDING_SLOTS]}
    kept = [topic for topic in chosen if topic.dimension != "communication"]
    # Trim to max_topics from the end, never dropping a reserved finding.
    while len(kept) > max_topics:
        drop = next((i for i in range(len(kept) - 1, -1, -1) if kept[i].id not in reserved), len(kept) - 1)
        kept.pop(drop)
    chosen = kept
    opening = 0  # the opener and the reserved findings lead the plan and are asked in order (interviewer.steer)
    while opening < len(chosen) and (chosen[opening] is opener or chosen[opening].id in reserved):
        opening += 1
    follow_ups = {
        path: params.max_follow_ups
        for path in weights
        if isinstance(params := rubric.params.get(path), InterviewDimensionParams)
    }
    return InterviewPlan(
        topics=chosen,
        rubric_id=rubric.rubric.id,
        dimension_weights=weights,
        max_follow_ups=follow_ups,
        opening=opening,
        dimension_titles={path: node.title for path, node in leaf_paths(rubric.rubric)},
    )


def _anchor(profile: RepoProfile) -> Evidence:
    """A place every topic can cite when nothing closer exists: the first model call, else the README, else any file."""
    for usage in profile.uses("llm_sdk") + profile.uses("framework"):
        for item in usage.evidence:
            if item.path.endswith(".py") and item.line:
                return item
    if profile.readme is not None:
        return Evidence(profile.readme.path, 1, "")
    candidates: list[list[Evidence]] = [
        [route.evidence for route in profile.routes],
        profile.tests.evidence,
        profile.prompts,
    ]
    for items in candidates:
        if items:
            return items[0]
    return Evidence(".", None, "the repository has no README and no Python entry point")


def _failure(profile: RepoProfile, anchor: Evidence) -> Topic:
    res = profile.resilience
    if not res.timeouts and not res.retries:
        return Topic(
            "provider-down",
            "failure_analysis",
            f"{anchor.location} calls the model with no timeout and no retry. What happens to a request when "
            "the provider is slow or down — what does the user see, and after how long?",
            "no timeout or retry around model calls",
            [anchor],
            ["How would you even notice in production?", *GENERIC_PROBES[:1]],
        )
    where = (res.retries or res.timeouts)[0]
    return Topic(
        "provider-outage",
        "failure_analysis",
        f"You guard model calls at {where.location}. Say the provider is down for ten minutes: how many "
        "requests pile up, what does the user see, and what does it cost you?",
        "resilience code exists; probe its limits",
        [where],
        GENERIC_PROBES,
    )


def _vector_store(profile: RepoProfile, anchor: Evidence) -> Topic | None:
    stores = profile.uses("vector_store")
    if not stores:
        return None
    store = stores[0]
    return Topic(
        "store-down",
        "failure_analysis",
        f"Your app uses {store.name} ({store.evidence[0].location}). What happens when it is unavailable, or "
        "returns the wrong chunk — how would you find which chunk caused a bad answer?",
        "vector store is a dependency that fails",
        store.evidence[:2],
        GENERIC_PROBES,
    )


def _evals(profile: RepoProfile, anchor: Evidence) -> Topic:
    sets = [golden for golden in profile.evals.golden_sets if golden.hand_written]
    if sets:
        golden = sets[0]
        return Topic(
            "golden-set",
            "evaluation_design",
            f"Your golden set at {golden.path} has {golden.cases} cases. Where did they come from, and how do "
            "you decide an answer is correct when it is not an exact string?",
            "eval data exists; probe how it was built and judged",
            golden.evidence[:1],
            ["How was the judge itself checked?", "Which regression did it catch?", *GENERIC_PROBES[1:2]],
        )
    return Topic(
        "no-evals",
        "evaluation_design",
        "I found no hand-written golden set. How do you know a prompt or model change did not make answers worse?",
        "no golden set in the repository",
        [anchor],
        GENERIC_PROBES,
    )


def _scale(profile: RepoProfile, anchor: Evidence) -> Topic:
    usages = profile.uses("vector_store") or profile.uses("llm_sdk")
    evidence = usages[0].evidence[:1] if usages else [anchor]
    return Topic(
        "scale-100x",
        "tradeoffs",
        "What breaks first when the corpus or the traffic grows 100x, and what would you change — at what cost?",
        "scale changes which trade-offs were right",
        evidence,
        GENERIC_PROBES,
    )


def _design_choice(profile: RepoProfile, anchor: Evidence) -> Topic:
    sdks = profile.uses("llm_sdk")
    sdk = sdks[0] if sdks else None
    what = sdk.name if sdk else "this design"
    return Topic(
        "why-this",
        "tradeoffs",
        f"Why {what}, and this architecture, rather than something simpler — a bigger context window, or no "
        "LLM at all? What did you try and drop?",
        "trade-off fluency on the core choice",
        sdk.evidence[:1] if sdk else [anchor],
        GENERIC_PROBES,
    )


def _cost(profile: RepoProfile, anchor: Evidence) -> Topic:
    cost = profile.cost
    if cost.accounting:
        return Topic(
            "cost-per-request",
            "cost_latency",
            f"You compute cost at {cost.accounting[0].location}. What does one request cost, per 1,000 "
            "requests, and how would you cut it without losing quality?",
            "cost is tracked; probe the numbers",
            cost.accounting[:1],
            GENERIC_PROBES,
        )
    return Topic(
        "cost-unknown",
        "cost_latency",
        "What does one request cost, and how do you know? I see no cost accounting or spending ceiling in the code.",
        "no cost accounting",
        [anchor],
        GENERIC_PROBES,
    )


def _security(profile: RepoProfile, anchor: Evidence) -> Topic:
    prompt = profile.prompts[0] if profile.prompts else anchor
    guards = profile.injection.input_guards + profile.injection.output_guards
    if guards:
        return Topic(
            "injection-guards",
            "security",
            f"Your guard at {guards[0].location}: what does it miss? Walk me through an indirect injection "
            "that arrives inside a retrieved document.",
            "guards exist; probe their gaps",
            guards[:2],
            GENERIC_PROBES,
        )
    return Topic(
        "injection-none",
        "security",
        f"Your system prompt is at {prompt.location}. What stops a user, or a retrieved document, from making "
        "the app reveal it or ignore it?",
        "no injection guard in the code",
        [prompt],
        GENERIC_PROBES,
    )


def _retrieval(profile: RepoProfile, anchor: Evidence) -> Topic:
    fields = profile.citations.response_fields[:1]
    return Topic(
        "retrieval",
        "retrieval_design",
        "How did you choose how to chunk the documents and how many to retrieve, and how did you measure "
        "that retrieval finds the right chunk?",
        "retrieval design",
        fields or [anchor],
        GENERIC_PROBES,
    )


def _framing(profile: RepoProfile, anchor: Evidence) -> Topic:
    evidence = Evidence(profile.readme.path, 1, "") if profile.readme else anchor
    return Topic(
        "framing",
        "problem_framing",
        "In a minute: who uses this, what problem does it solve for them, and how do you know it works?",
        "opening question",
        [evidence],
        GENERIC_PROBES,
    )


def _finding_topics(report: GradingReport, anchor: Evidence, weights: dict[str, float]) -> list[Topic]:
    """Each weak or failed leaf of the grading report (scored below 0.5: a leak under a named probe, p95 over the
    bar, no ceiling, evals that failed when run, a fault the app did not survive) as a topic citing the report's
    evidence, heaviest first by the share of the grading rubric it carries (then the lower score). A finding whose
    criterion feeds no dimension of this interview rubric goes to its heaviest dimension."""
    fallback = max(
        (path for path in weights if path not in {"problem_framing", "communication"}),
        key=lambda path: weights[path],
        default=None,
    )
    found: list[tuple[float, float, Topic]] = []
    for node, _ in walk(report.criteria):
        if node.children or node.status != "scored" or node.score is None or node.score >= WEAK_BELOW:
            continue
        dimension = FINDING_DIMENSION.get(node.path.split(".")[0])
        if dimension not in weights:
            dimension = fallback
        if dimension is None:
            continue
        evidence = node.evidence[:2] or [anchor]
        where = ", ".join(item.location for item in evidence)
        topic = Topic(
            f"finding-{node.path}",
            dimension,
            f"The grading found this about {node.title.lower()}: {node.explanation.rstrip('.')} ({where}). Why, and "
            "what would you change first?",
            f"grading finding {node.path} scored {node.score:.2f} (carries {node.share:.0%} of the grade)",
            evidence,
            GENERIC_PROBES,
        )
        found.append((node.share, node.score, topic))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [topic for _, _, topic in found]


DimensionTopic = Callable[[str, str, object, Evidence], Topic]
"""(leaf path, title, validated params, anchor) → the topic that asks about a rubric dimension."""
INTERVIEW_CHECKS: CheckRegistry[DimensionTopic] = CheckRegistry("interview")
"""The interview kind's check registry: how each interview check becomes a topic of the plan (the rating itself is
the per-answer assessment, interviewer.assess)."""


def _dimension_topic(path: str, check: str, title: str, rubric: LoadedRubric, anchor: Evidence) -> Topic:
    """The dimension's topic from its interview check. A check that crashes is Viva's bug, not a reason to leave the
    dimension unasked: the topic is then a plain question from its title, and its reason says what failed."""
    topic_of = INTERVIEW_CHECKS.get(check, dimension_topic)
    try:
        return topic_of(path, title, rubric.params.get(path), anchor)
    except Exception as error:
        failed = f"the interview check {check!r} failed inside Viva ({type(error).__name__}: {error})"
        return Topic(
            f"dim-{path}",
            path,
            f"Tell me about {title.lower()} in this project.",
            f"{failed[:300]}; asked from the dimension's title",
            [anchor],
            GENERIC_PROBES,
        )


@INTERVIEW_CHECKS.register("interview_dimension")
def dimension_topic(path: str, title: str, params: object, anchor: Evidence) -> Topic:
    topics = getattr(params, "topics", []) or [title]
    return Topic(
        f"dim-{path}",
        path,
        f"Tell me about {title.lower()} in this project: {', '.join(topics[:3])}.",
        "rubric dimension without a repository-specific topic",
        [anchor],
        GENERIC_PROBES,
    )


BUILDERS: list[Callable[[RepoProfile, Evidence], Topic | None]] = [
    _framing,
    _failure,
    _vector_store,
    _evals,
    _design_choice,
    _scale,
    _cost,
    _security,
    _retrieval,
]
