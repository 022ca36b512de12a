"""Plain data of an interview: the plan, the transcript, assessments and the report (schema: docs/INTERVIEW.md)."""

from __future__ import annotations

from typing import Literal

import msgspec

from grader.model import Evidence

Rating = Literal["low", "medium", "high"]
RATING_SCORE: dict[str, float] = {"low": 0.2, "medium": 0.6, "high": 1.0}
INTERVIEW_REPORT_VERSION = 1


class Topic(msgspec.Struct, frozen=True):
    """Something to ask about, why, and where in the repository it comes from."""

    id: str
    dimension: str
    question: str
    reason: str
    evidence: list[Evidence]
    probes: list[str] = msgspec.field(default_factory=list)
    """Other angles on this topic, asked when the interview comes back to it."""
    expected_follow_ups: list[str] = msgspec.field(default_factory=list)
    """The follow-ups this question expects (a role interview's bank question): asked, in order, when an answer
    leaves out a cost, a number or a failure mode, or hedges."""


class InterviewPlan(msgspec.Struct, frozen=True):
    topics: list[Topic]
    rubric_id: str
    dimension_weights: dict[str, float]
    max_follow_ups: dict[str, int] = msgspec.field(default_factory=dict)
    """Per dimension, the rubric's `max_follow_ups`: how many questions beyond its first the dimension may get
    before it counts as settled (interviewer.steer)."""
    opening: int = 0
    """How many leading topics are asked in order whatever the answers: the opener and the reserved findings."""
    dimension_titles: dict[str, str] = msgspec.field(default_factory=dict)


class Signals(msgspec.Struct, frozen=True):
    """What an answer contains, measured by code (never by the model)."""

    words: int
    numbers: int
    costs: int
    """Mentions of costs, downsides and trade-offs ("but", "slower", "the cost is", "we gave up")."""
    failures: int
    """Failure modes named (timeouts, outages, rate limits, hallucination, fallback)."""
    specifics: int
    """Concrete names: files, functions, libraries, measurements."""
    hedges: int
    injection: bool
    """Some span of the answer was used to instruct the interviewer (interviewer/addressed.py; best effort)."""
    substantive_words: int = 0
    """Words in sentences that carry a number, a cost, a failure mode, a specific or a reasoned choice (length earns
    only there)."""
    reasons: int = 0
    """Sentences that state a decision with its reason, or an alternative and why it was dropped."""


class Contradiction(msgspec.Struct, frozen=True):
    """A claim the candidate made that the code does not support."""

    claim: str
    path: str
    line: int | None
    excerpt: str = ""
    explanation: str = ""


class Assessment(msgspec.Struct, frozen=True):
    """One answer, judged for one dimension. The score is decided by code (interviewer.assess.gate)."""

    answer_id: str
    topic_id: str
    dimension: str
    rating: Rating
    score: float
    quote: str
    signals: Signals
    model_rating: Rating | None = None
    rationale: str = ""
    contradicted: bool = False
    """The answer claimed something the code does not show: it scores 0, below any honest answer."""
    off_question: bool = False
    """The answer was about another question than the one asked: rated low here, and weak evidence of the level."""


class VoiceMeta(msgspec.Struct, frozen=True, omit_defaults=True):
    """How a spoken answer was heard. The answer's text is what the candidate confirmed (and may have corrected);
    ratings rest on it alone, never on how fluently it was said."""

    confidence: float
    heard: str = ""
    """The recogniser's transcript, when the candidate corrected it before sending."""
    speech_seconds: float = 0.0
    stages_ms: dict[str, float] = msgspec.field(default_factory=dict)
    """`transcript` (end of speech → final transcript), `first_token` (answer received → the interviewer's first
    words), `first_audio` (first words → first audio), `end_to_first_audio` (their sum: end of speech → first audio
    without the time the transcript waited for the candidate to check it)."""


class StageLatency(msgspec.Struct, frozen=True):
    stage: str
    turns: int
    p50_ms: float
    p95_ms: float


class VoiceSummary(msgspec.Struct, frozen=True):
    spoken_answers: int
    stages: list[StageLatency]
    mean_confidence: float
    low_confidence_answers: int
    corrected_answers: int
    note: str = ""


class Turn(msgspec.Struct, frozen=True, omit_defaults=True):
    role: Literal["interviewer", "candidate"]
    text: str
    at: float
    topic_id: str | None = None
    answer_id: str | None = None
    voice: VoiceMeta | None = None


class DimensionResult(msgspec.Struct, frozen=True):
    id: str
    title: str
    weight: float
    rating: Rating | None
    score: float | None
    quotes: list[str]
    answers: int
    confidence: float | None = None
    """The probability of the rating given every answer (interviewer.belief); None when not assessed."""
    settled: str = ""
    """Why the interview stopped asking about it: "confident", "follow-ups spent", "open" (the interview ended
    first), "rated from every answer" (no question targets it), or "not asked"."""


class InterviewCost(msgspec.Struct, frozen=True):
    usd: float
    calls: int
    input_tokens: int
    output_tokens: int
    models: list[str]


class InterviewReport(msgspec.Struct, frozen=True):
    schema_version: int
    repo: str
    rubric: dict[str, object]
    score: float | None
    dimensions: list[DimensionResult]
    contradictions: list[Contradiction]
    transcript: list[Turn]
    cost: InterviewCost
    strengths: list[str]
    gaps: list[str]
    study: list[str]
    injection_attempts: list[str]
    ended: str
    """Why the interview ended: settled (every dimension it asks about was settled), time_limit, question_limit,
    budget, candidate_silent, candidate_left, model_unavailable, or in_progress."""
    voice: VoiceSummary | None = None
    """For an interview (partly) spoken: per-stage latency and how well the speech was recognised."""
    stop_reason: str = ""
    """`ended`, said in a sentence for the reader of the report."""
