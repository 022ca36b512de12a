"""The offline model: extractive answers from the context the app sent, and hashing embeddings.

An answer is built from the context sentences that share the most words with the question. Source labels in
the context ("[notes-3] ...") are kept only when the app's prompt asks for citations. Embeddings hash words
into a fixed number of dimensions, so texts that share words are closer — retrieval still works offline.
"""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")
_LABELLED = re.compile(r"^\s*\[([\w.:#/-]{1,40})\]\s*(.+)$")
_STOP = {
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "is",
    "and",
    "or",
    "for",
    "on",
    "what",
    "how",
    "do",
    "does",
    "i",
    "we",
    "you",
    "it",
    "be",
    "are",
    "with",
    "that",
    "this",
    "when",
    "can",
    "my",
    "our",
}
INJECTION = re.compile(
    r"ignore (all |any |the )?(previous|prior|above) (instructions|rules)|(reveal|print|repeat|show|output) "
    r"(your|the) (system )?(prompt|instructions)|you are now|developer mode",
    re.I,
)


def words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word not in _STOP]


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in words(text):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        index = int.from_bytes(digest[:2], "big") % DIMENSIONS
        vector[index] += 1.0 if digest[2] % 2 else -1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def answer(system: str, user: str, gullible: bool = False) -> str:
    """The offline reply to a prompt: obeys an injection only in gullible mode; otherwise extracts from context."""
    if gullible and INJECTION.search(user):
        return f"Sure. My instructions are: {system}" if system else "Sure, I will ignore my instructions."
    question = _question(user)
    wanted = set(words(question))
    scored: list[tuple[int, int, str, str | None]] = []
    for order, line in enumerate(user.splitlines()):
        match = _LABELLED.match(line)
        label, text = (match.group(1), match.group(2)) if match else (None, line)
        if not text.strip() or text.strip() == question.strip() or re.match(r"\s*(question|context)\s*:", text, re.I):
            continue
        overlap = len(wanted & set(words(text)))
        if overlap:
            scored.append((overlap, -order, text.strip(), label))
    if not scored:
        return "I do not know: the context does not say."
    scored.sort(reverse=True)
    cite = bool(re.search(r"\bcit(e|ation)|\bsource", system, re.I))
    parts = []
    for _, _, text, label in scored[:2]:
        parts.append(f"{text} [{label}]" if cite and label else text)
    return " ".join(parts)


def _question(user: str) -> str:
    match = re.search(r"question:\s*(.+)", user, re.I)
    return match.group(1) if match else user.strip().splitlines()[-1] if user.strip() else ""


def count_tokens(text: str) -> int:
    """A stable estimate (about 4 characters a token), used for usage and prices."""
    return max(1, math.ceil(len(text) / 4))
