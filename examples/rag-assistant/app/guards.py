"""Prompt-injection guards: screen the question going in and the answer coming out."""

from __future__ import annotations

import re

INJECTION_PATTERNS = [
    re.compile(r"ignore (all |any )?(previous|prior|above) (instructions|rules)", re.I),
    re.compile(r"(reveal|print|repeat|show) (your|the) (system )?(prompt|instructions)", re.I),
    re.compile(r"you are now|pretend to be|developer mode", re.I),
]


def looks_like_injection(question: str) -> bool:
    return any(pattern.search(question) for pattern in INJECTION_PATTERNS)


def leaks_system_prompt(answer: str, system_prompt: str, window: int = 40) -> bool:
    """True when any 40-character window of the system prompt appears in the answer."""
    flat_answer = " ".join(answer.split()).lower()
    flat_prompt = " ".join(system_prompt.split()).lower()
    return any(flat_prompt[i : i + window] in flat_answer for i in range(0, max(1, len(flat_prompt) - window), 10))
