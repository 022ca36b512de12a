"""Does an answer address the question asked? Read by code, conservatively: an answer is off the question only
when it shares nothing with the question (no content word, none of the asked dimension's vocabulary) and plainly
talks about another dimension instead. A short or unusual answer on the right subject is never called off-question:
that is what the vagueness follow-ups are for.
"""

from __future__ import annotations

import re

DIMENSION_TERMS: dict[str, re.Pattern[str]] = {
    name: re.compile(rf"\b({pattern})", re.I)
    for name, pattern in {
        "problem_framing": r"users?|customers?|problem|success|metric|kpi|baseline|adoption|who uses|use case",
        "retrieval_design": r"chunk\w*|embed\w*|retriev\w*|rerank\w*|hybrid|bm25|vector|index\w*|recall|top-?k|"
        r"search",
        "evaluation_design": r"evals?\b|evaluat\w*|golden|test (set|cases?)|judge\w*|ground truth|regression|"
        r"benchmark\w*|accuracy|precision|faithful\w*",
        "failure_analysis": r"fail\w*|outage|down\b|timeouts?|retr(y|ies)|fallback|rate.?limit\w*|error\w*|"
        r"crash\w*|circuit|degrad\w*|alert\w*",
        "tradeoffs": r"trade-?offs?|instead|rather than|chose|choice|alternative|simpler|dropped|gave up|"
        r"scale\w*|100x|versus|vs\b",
        "cost_latency": r"costs?\b|\$|dollars?|cents?|tokens?|price\w*|latency|p95|p99|ms\b|millisecond\w*|"
        r"seconds?|cach\w*|budget|spend\w*",
        "security": r"inject\w*|jailbreak\w*|attack\w*|guard\w*|system prompt|leak\w*|pii|redact\w*|"
        r"exfiltrat\w*|malicious|sanitis\w*|sanitiz\w*|permission\w*",
        "agents": r"agents?\b|tools?\b|loop\w*|retr(y|ies)|timeouts?|idempoten\w*|steps?\b|approv\w*|side.?effects?|"
        r"refund\w*|state machine",
        "scale": r"scal\w*|100x|bottleneck\w*|traffic|load\b|capacity|quota\w*|concurren\w*|shard\w*|queue\w*|"
        r"throughput|users\b|requests? (a|per) second|rps|qps",
        "models": r"models?\b|open.?weight\w*|api\b|hosted|self.?host\w*|gpus?\b|quantis\w*|quantiz\w*|4.?bit|"
        r"fine.?tun\w*|llama|mistral|inference|vram|memory",
    }.items()
}
"""Each interview dimension's vocabulary: what an answer on that subject can hardly avoid saying."""
# The role interview's dimensions (rubrics/builtin/ai-engineer-role-*.yaml) that share a project dimension's subject.
DIMENSION_TERMS["rag_design"] = DIMENSION_TERMS["retrieval_design"]
DIMENSION_TERMS["evaluation"] = DIMENSION_TERMS["evaluation_design"]

_WORD = re.compile(r"[a-z][a-z'-]{4,}")
_STOP = frozenset(
    {
        "about",
        "above",
        "after",
        "again",
        "against",
        "because",
        "before",
        "being",
        "below",
        "between",
        "could",
        "doing",
        "during",
        "every",
        "further",
        "having",
        "other",
        "should",
        "their",
        "there",
        "these",
        "those",
        "through",
        "under",
        "until",
        "which",
        "while",
        "would",
        "where",
        "yours",
        "yourself",
        "think",
        "really",
        "thing",
        "things",
        "project",
        "maybe",
    }
)


def _content_words(text: str) -> set[str]:
    return {word[:6] for word in _WORD.findall(text.lower()) if word not in _STOP}


def off_question(question: str, dimension: str, answer: str) -> bool:
    """True when `answer` is about another dimension than the one `question` asks about."""
    own = DIMENSION_TERMS.get(dimension)
    if own is not None and own.search(answer):
        return False
    if _content_words(question) & _content_words(answer):
        return False
    return any(len(terms.findall(answer)) >= 2 for name, terms in DIMENSION_TERMS.items() if name != dimension)
