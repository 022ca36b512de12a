"""Keeping the interviewer's instructions its own: untrusted text is fenced, and an utterance that repeats
the instructions is withheld, whatever the model was talked into."""

from __future__ import annotations

import re

_FENCE = re.compile(r"</?\s*(candidate_answer|directive|repo_data)\b[^>]*>", re.I)
NGRAM = 6


def fence(text: str, tag: str) -> str:
    """Untrusted text inside a tag, with any tag it carries neutralised so it cannot close the fence."""
    return f"<{tag}>\n{_FENCE.sub('[marker removed]', text)}\n</{tag}>"


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def leaks(utterance: str, secret: str) -> bool:
    """True when the utterance shares any run of six words with the secret text (the instructions)."""
    return bool(_ngrams(utterance) & _ngrams(secret))
