"""The gate between a model's proposed rating and the record: code decides.

- The score starts from the code-measured substance of the answer (interviewer.signals).
- The signals read the answer without the spans addressed to the interviewer (interviewer/addressed.py): quoted
  or used, a directive, a fake SYSTEM line, a score asked for or an encoded blob adds nothing.
- A model's proposal counts for MODEL_SHARE of the score and can only lower it (it reads meaning the signals
  miss: a claim that does not answer the question, a number with no sense). It never raises it, because a model
  that obeys an instruction wrapped in a way no pattern knows (translated, split across turns, newly phrased)
  would propose "high": so no wording of an answer gains anything from the model. When the answer was found to
  instruct the interviewer, the proposal is ignored altogether.
- An answer about another question than the one asked (interviewer.relevance) is rated low for the dimension
  asked, whatever its substance: depth on a subject nobody asked about shows nothing about this one.
- A claim the code contradicts scores 0: confident claims the repository does not support are worse than vagueness.
- The quote must be the candidate's own words; otherwise the strongest sentence is quoted instead.
"""

from __future__ import annotations

from interviewer.model import RATING_SCORE, Assessment, Contradiction, Rating
from interviewer.offline import best_sentence
from interviewer.signals import evidence_points, measure, rating_from_points

MODEL_SHARE = 0.4


def rating_of(score: float) -> Rating:
    return "high" if score >= 0.75 else "medium" if score >= 0.45 else "low"


def gate(
    answer_id: str,
    *,
    topic_id: str,
    dimension: str,
    answer: str,
    proposed: Rating | None,
    proposed_quote: str,
    contradictions: list[Contradiction],
    off_question: bool = False,
) -> Assessment:
    signals = measure(answer)
    measured = RATING_SCORE[rating_from_points(evidence_points(signals))]
    score = measured
    rationale = "scored from the answer's measured substance"
    if signals.injection:
        rationale = "the answer tried to instruct the interviewer; the model's proposal was ignored"
    elif proposed is not None:
        score = min(measured, (1 - MODEL_SHARE) * measured + MODEL_SHARE * RATING_SCORE[proposed])
        rationale = f"measured {rating_of(measured)}, the model proposed {proposed}"
        if RATING_SCORE[proposed] > measured:
            rationale += " (a proposal never raises the measured rating)"
    if off_question and score > RATING_SCORE["low"]:
        score = RATING_SCORE["low"]
        rationale = "the answer was about another question than the one asked"
    if contradictions:
        score = 0.0
        rationale = f"the answer claims what the code does not show ({contradictions[0].explanation})"
    quote = proposed_quote.strip() if proposed_quote.strip() and proposed_quote.strip() in answer else ""
    return Assessment(
        answer_id=answer_id,
        topic_id=topic_id,
        dimension=dimension,
        rating=rating_of(score),
        score=score,
        quote=quote or best_sentence(answer),
        signals=signals,
        model_rating=proposed,
        rationale=rationale,
        contradicted=bool(contradictions),
        off_question=off_question,
    )
