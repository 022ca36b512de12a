"""What the interview believes about each dimension: a distribution over low, medium and high, updated by every
assessed answer, with the confidence that decides when a dimension is settled and where the next question goes.

An assessed answer's score (interviewer.assess.gate, 0..1) is a noisy observation of the candidate's level: how
often a candidate of each level gives an answer rated at each level is OBSERVED (a strong candidate sometimes gives
a medium answer, rarely a poor one). A score between two levels' scores counts for both, in proportion. So one
clear answer moves a flat belief to about 0.79 on its level, a second like it to 0.96 (past SETTLE_AT) for high or
low; medium, which has a neighbour on each side, takes a third. Answers that disagree keep the belief open: a strong
answer and a poor one leave it near 0.4, not a confident "medium", so a mixed candidate is asked more than a
consistent one.
"""

from __future__ import annotations

import msgspec

from interviewer.model import RATING_SCORE, Rating

LEVELS: tuple[Rating, ...] = ("low", "medium", "high")
OBSERVED: tuple[tuple[float, float, float], ...] = (
    (0.75, 0.20, 0.05),  # a low candidate's answers: rated low, medium, high
    (0.15, 0.70, 0.15),  # a medium candidate's
    (0.05, 0.20, 0.75),  # a high candidate's
)
SETTLE_AT = 0.9
"""A dimension is settled when its most likely level has at least this probability."""


class Belief(msgspec.Struct, frozen=True):
    """P(low), P(medium), P(high), and how many answers shaped it."""

    p: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    answers: int = 0

    @property
    def level(self) -> Rating:
        return LEVELS[max(range(3), key=lambda i: (self.p[i], -abs(i - 1)))]

    @property
    def confidence(self) -> float:
        return max(self.p)

    @property
    def uncertainty(self) -> float:
        """1 − confidence: 2/3 before any answer, 0 when certain."""
        return 1.0 - self.confidence

    @property
    def expected_score(self) -> float:
        return sum(p * RATING_SCORE[level] for p, level in zip(self.p, LEVELS, strict=True))

    def observe(self, score: float, weight: float = 1.0) -> Belief:
        """The belief after one more answer scored `score`. `weight` below 1 tempers what the answer says (its
        likelihood raised to that power): an answer to another question says little about this dimension."""
        seen = _observed_levels(score)
        weights = [p * sum(seen[j] * OBSERVED[i][j] for j in range(3)) ** weight for i, p in enumerate(self.p)]
        total = sum(weights)
        low, medium, high = (w / total for w in weights)
        return Belief((low, medium, high), self.answers + 1)

    @property
    def settled(self) -> bool:
        return self.confidence >= SETTLE_AT


def _observed_levels(score: float) -> tuple[float, float, float]:
    """How much a score says "rated low", "medium", "high": all of one level at its score, split between the two
    nearest levels in between (0.8 is half medium, half high), all low below low's score."""
    points = [RATING_SCORE[level] for level in LEVELS]
    score = min(max(score, points[0]), points[-1])
    for i in range(2):
        if score <= points[i + 1]:
            upper = (score - points[i]) / (points[i + 1] - points[i])
            shares = [0.0, 0.0, 0.0]
            shares[i], shares[i + 1] = 1 - upper, upper
            return shares[0], shares[1], shares[2]
    return 0.0, 0.0, 1.0


OFF_QUESTION_WEIGHT = 0.25
"""How much an answer about another question counts as evidence about the dimension asked (interviewer.relevance)."""


def belief_of(scores: list[float], weights: list[float] | None = None) -> Belief:
    belief = Belief()
    for score, weight in zip(scores, weights or [1.0] * len(scores), strict=True):
        belief = belief.observe(score, weight)
    return belief
