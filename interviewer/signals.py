"""Reading an answer with code: numbers, costs, failure modes, specifics, hedges, and attempts to instruct.

These measurements are what a rating rests on, so the candidate cannot talk a model into a score.
"""

from __future__ import annotations

import functools
import re

from interviewer.addressed import SENTENCE, read_answer
from interviewer.model import Rating, Signals

_NUMBER = re.compile(  # not the digits of a name (GPT-4, llama-3): those measure nothing
    r"(?<![A-Za-z]-)\b\d+(?:[.,]\d+)?\s*(?:%|ms|s\b|sec|seconds|x\b|k\b|tokens?|usd|\$|cents?|req|rps|qps|mb|gb)?"
    r"|\$\s?\d+",
    re.I,
)
_UNIT_WORDS = r"percent|per ?cent|milliseconds?|seconds?|minutes?|hours?|dollars?|cents?|tokens?|requests?|queries"
_UNITS = rf"(?:{_UNIT_WORDS})"
_NUMBER_WORD = (
    r"(?:seventeen|thirteen|fourteen|eighteen|nineteen|thousand|fifteen|sixteen|billion|million|hundred|seventy|"
    r"twelve|eleven|eighty|ninety|twenty|thirty|forty|fifty|sixty|three|seven|eight|zero|four|five|nine|two|six|ten)\b"
)
_SPOKEN_NUMBER = re.compile(
    rf"\b(?:{_NUMBER_WORD}|one(?=[\s-]+(?:hundred|thousand|million|point|{_UNIT_WORDS})\b))"
    rf"(?:[\s-]+(?:and[\s-]+)?(?:{_NUMBER_WORD}|one\b|point\b))*(?:\s+{_UNITS}\b)?",
    re.I,
)
"""A number said in words ("eighty five percent", "two hundred milliseconds"), as a spoken answer's transcript has
it: one number however many words it takes. A bare "one" is not counted ("the one that"), "one hundred" is."""
_COSTS = re.compile(
    r"\b(but|however|trade-?offs?|downside|cost(s|ly)?|slower|expensive|at the expense|gave up|"
    r"drawback|price|penalty|pay(ing)? for|worse|instead of|rather than|whereas|limitation|accept(ed|ing)?|lost|lose|"
    r"adds? (about |roughly |~)?\d+\s*(ms|s|%)|doubles?|halved|overhead|disliked|complain\w*|"
    r"(al)?though|weak (spot|point)|known (gap|limit\w*)|not (yet )?(measured|checked|tested)|"
    r"ha(ve|s)(n't| not) (yet )?(measured|checked|tested)|only (have )?anecdot\w*)\b",
    re.I,
)
"""Costs, downsides and limits the candidate admits ("though we have not measured it", "our known gap")."""
_FAILURES = re.compile(
    r"\b(fail(s|ed|ure|over)?|down|outage|time ?outs?|timed out|rate.?limit(ed|s)?|429|500|retr(y|ies|ied)|"
    r"backoff|fallback|circuit.?breaker|hallucinat\w*|degrad\w*|crash\w*|error|breaks?|leak(s|ed|ing)?|"
    r"miss(es|ed)?|false (positive|negative)s?|bypass(es|ed)?|regress\w*|drift\w*|stale|obeyed|complied|"
    r"slipped|worst case|bottlenecks?|breakages?)\b",
    re.I,
)
_SPECIFIC = re.compile(
    r"\b[\w/.-]+\.(py|ts|js|json|jsonl|yaml|yml|toml|md)\b|\b\w+\(\)|\b(bm25|faiss|chroma\w*|qdrant|"
    r"pgvector|redis|postgres\w*|tenacity|pydantic|fastapi|cohere|rerank\w*|embedding|p95|p99|"
    r"recall@\d+|ndcg|mrr|golden set|eval(uation)? suite|ci|pull request|regex|classifier|fence[sd]?|canary|"
    r"shingles?|hash(es|ed)?|allow-?list|least privilege|promptfoo|garak|llama guard|presidio|redact\w*|"
    r"hybrid search|chunk size|top-?k|quantis\w*|quantiz\w*|batch(ing|ed)?|stream(ing|ed)?|idempoten\w*|"
    r"semaphore|asyncio|token budget|prompt cache|kv cache|cross-encoder|system prompt|hnsw|ivf|ann index|"
    r"indirect injection|red.?team\w*|threat model)\b",
    re.I,
)
_FRAMING = re.compile(
    r"\b(our|the|its) (users|customers|agents|analysts|clients)\b|\bpeople who use\b|\bwho uses? it\b|"
    r"\bsuccess (is|means|metric)\b|\bmeasured? (by|it|weekly|daily|monthly|from|as)\b|\bmetric\b|\bkpi\b|"
    r"\bcount(s|ed)? it (as )?working\b|\bbaseline\b|"
    r"\b(fell|dropped|rose|went|grew|improved) from (about |around |~)?\d[\d.,]*\s*%?\s*(\w+\s+){0,2}to\s+\d|"
    r"\d[\d.,]*\s*%?\s+(now\s+)?(against|versus|vs\.?|compared (to|with))\s+\d",
    re.I,
)
"""Who the users are, what success is measured by, and a value against a baseline: the substance of framing a
problem, counted with the specifics."""
_CHOICE = re.compile(
    r"\b(chose|choose|picked|went with|decided|opted|settled on|switched|moved|split|use[sd]?|take|keep|"
    r"instead( of)?|rather than|over|tried|considered|dropped|rejected|accepted)\b",
    re.I,
)
_REASON = re.compile(
    r"\b(because|since|so that|so we|to avoid|to keep|otherwise|which (kept|made|meant|gave|lost|cost)|"
    r"as it|that way|the reason|which (\w+ ){0,2}(failed|broke|missed|lost|cost|kept|made|meant|gave))\b|, which\b",
    re.I,
)
"""A decision and its reason in one sentence ("paragraphs rather than windows, because citations stayed readable"):
explaining a choice is substance even without a number."""
_HEDGES = re.compile(
    r"\b(i think|maybe|probably|kind of|sort of|basically|stuff|things|somehow|i guess|not sure|"
    r"it depends|best practices?|industry standard|robust|seamless|scalable)\b",
    re.I,
)
FOLLOW_UPS = {
    "too_short": "Could you say more? Take a concrete example from this project.",
    "no_costs": "That covers the benefits. What did it cost you — in latency, money, complexity or quality?",
    "no_numbers": "Can you put a number on it — how many, how fast, how much?",
    "no_failure_mode": "And when does that approach fail? What would you see first?",
    "hedged": "You sound unsure. What did you actually see or measure in this project?",
    "off_question": "That answers a different question. To come back to mine:",
}
"""The probe for each shortcoming; `off_question`'s is followed by the question asked."""

_SCORE = re.compile(
    r"\b(\d{1,3})\s*/\s*\1\b(?!\s*(?:runs?|cases?|tests?|times|queries|questions|requests|attempts|tries|checks))"
)
"""`10/10`, `5/5`: a score asked for, never a measurement; `20/20 runs` is one and stays."""


@functools.lru_cache(maxsize=512)
def measure(answer: str) -> Signals:
    """The answer's substance, measured on what is left once the spans addressed to the interviewer are out
    (interviewer/addressed.py): a quoted attack string, a fake SYSTEM line or a score asked for adds nothing. Length
    counts only in sentences that carry something (a number, a cost, a failure mode, a specific), so fluent filler
    earns nothing by being long."""
    reading = read_answer(answer)
    text = _SCORE.sub(" ", reading.rated)
    substantive = [
        sentence
        for sentence in SENTENCE.findall(text)
        if _NUMBER.search(sentence)
        or _SPOKEN_NUMBER.search(sentence)
        or _COSTS.search(sentence)
        or _FAILURES.search(sentence)
        or _SPECIFIC.search(sentence)
        or (_CHOICE.search(sentence) and _REASON.search(sentence))
    ]
    return Signals(
        words=len(text.split()),
        numbers=len(_NUMBER.findall(text)) + len(_SPOKEN_NUMBER.findall(text)),
        costs=len(_COSTS.findall(text)),
        failures=len(_FAILURES.findall(text)),
        specifics=len(_SPECIFIC.findall(text)) + len(_FRAMING.findall(text)),
        hedges=len(_HEDGES.findall(text)),
        injection=reading.attempt,
        reasons=sum(bool(_CHOICE.search(sentence) and _REASON.search(sentence)) for sentence in SENTENCE.findall(text)),
        substantive_words=sum(len(sentence.split()) for sentence in substantive),
    )


def is_silent(answer: str) -> bool:
    """No answer at all, or no words: empty, punctuation, keyboard mash."""
    words = re.findall(r"[A-Za-z]{2,}", answer)
    if len(words) < 3:
        return True
    vowelless = [word for word in words if not re.search(r"[aeiouy]", word, re.I)]
    return len(vowelless) > len(words) / 2


def evidence_points(signals: Signals) -> float:
    """A 0..1 measure of depth: numbers, costs named, failure modes, concrete specifics; hedging and
    one-word answers count against it. Deliberately simple, documented, and the same for every answer."""
    if signals.words < 8:
        return 0.0
    points = (
        min(signals.numbers, 3) * 0.12
        + min(signals.costs, 3) * 0.12
        + min(signals.failures, 3) * 0.08
        + min(signals.specifics, 4) * 0.06
        + min(signals.substantive_words, 120) / 120 * 0.1
        + min(signals.reasons, 2) * 0.08
        - min(signals.hedges, 4) * 0.06
    )
    return max(0.0, min(1.0, points))


def rating_from_points(points: float) -> Rating:
    if points >= 0.6:
        return "high"
    if points >= 0.25:
        return "medium"
    return "low"


def follow_up_reason(signals: Signals, *, off_question: bool = False) -> str | None:
    """Why an answer needs a follow-up, or None when it is specific enough. `off_question`: the answer was about
    another question than the one asked (interviewer.relevance)."""
    if signals.words < 8:
        return "too_short"
    if off_question:
        return "off_question"
    if signals.hedges >= 2 and signals.numbers == 0:
        return "hedged"
    if signals.costs == 0:
        return "no_costs"
    if signals.numbers == 0:
        return "no_numbers"
    if signals.failures == 0:
        return "no_failure_mode"
    return None
