"""Where the interview goes next, decided by code from what it believes (interviewer.belief).

- The plan's opening (the framing question, then the grading's reserved findings) is asked in order: an
  interviewer who read the report asks about what it found whatever the answers so far.
- An answer that calls for a follow-up (vague, benefits without costs, no numbers, no failure mode, hedged, or
  about another question than the one asked: interviewer.signals) gets one on the same topic while its dimension
  is unsettled: the follow-up is the cheapest way to learn more about that dimension, and the conversation stays
  where the candidate is.
- Otherwise the next question goes to the unsettled dimension with the largest weight × uncertainty: its next
  topic not yet asked, or, when all its topics were asked, another angle (a probe) on the last one.
- A dimension is settled when its belief's confidence reaches SETTLE_AT ("confident") or it has had its rubric's
  `max_follow_ups` questions beyond the first ("follow-ups spent"). The interview ends when every weighted dimension
  it can ask about is settled; the session ends it sooner at its time, question or budget limit.

A dimension no topic asks about (communication: every answer is rated for it) is never a target and never keeps
the interview going.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interviewer.belief import Belief
from interviewer.model import InterviewPlan, Topic

DEFAULT_FOLLOW_UPS = 3
"""For a dimension whose rubric says nothing: the catalogue's default `max_follow_ups`."""


@dataclass(frozen=True)
class Move:
    kind: Literal["follow_up", "ask", "revisit", "close"]
    topic: Topic | None = None
    reason: str = ""
    """For a follow-up, the answer's shortcoming; for a revisit, the probe to ask; for close, why it ended."""


def questions_allowed(plan: InterviewPlan, dimension: str) -> int:
    return 1 + plan.max_follow_ups.get(dimension, DEFAULT_FOLLOW_UPS)


def settle_state(plan: InterviewPlan, dimension: str, belief: Belief, asked: int) -> str:
    """ "confident", "follow-ups spent" or "" (still open)."""
    if belief.settled:
        return "confident"
    if asked >= questions_allowed(plan, dimension):
        return "follow-ups spent"
    return ""


def askable(plan: InterviewPlan) -> list[str]:
    """The weighted dimensions some topic of the plan asks about, in the plan's order."""
    seen = dict.fromkeys(topic.dimension for topic in plan.topics)
    return [d for d in seen if plan.dimension_weights.get(d, 0.0) > 0]


def priority(plan: InterviewPlan, dimension: str, belief: Belief) -> float:
    return plan.dimension_weights.get(dimension, 0.0) * belief.uncertainty


def next_move(
    plan: InterviewPlan,
    beliefs: dict[str, Belief],
    asked: dict[str, int],
    used: set[str],
    *,
    current: Topic | None,
    follow_up: str | None,
) -> Move:
    """The next question after an answer to `current` (None before the first) whose shortcoming was `follow_up`."""

    def open_(dimension: str) -> bool:
        return not settle_state(plan, dimension, beliefs.get(dimension, Belief()), asked.get(dimension, 0))

    if current is not None and follow_up and open_(current.dimension):
        return Move("follow_up", current, follow_up)
    for topic in plan.topics[: plan.opening]:
        if topic.id not in used:
            return Move("ask", topic)
    candidates = [d for d in askable(plan) if open_(d)]
    if not candidates:
        return Move("close", reason="settled")
    order = {d: i for i, d in enumerate(askable(plan))}
    target = max(candidates, key=lambda d: (priority(plan, d, beliefs.get(d, Belief())), -order[d]))
    topics = [topic for topic in plan.topics if topic.dimension == target]
    fresh = [topic for topic in topics if topic.id not in used]
    if fresh:
        return Move("ask", fresh[0])
    last = next(topic for topic in reversed(topics) if topic.id in used)
    probes = last.probes or ["What would you do differently, and what would it cost?"]
    return Move("revisit", last, probes[asked.get(target, 0) % len(probes)])
