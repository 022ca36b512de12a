"""Prompts written in JavaScript and TypeScript: the template literals a Next.js or Node RAG app keeps its prompts in.

Python prompts are found by the analyser (grader.profile.python_facts); a JS/TS app's prompts are backtick
template literals (`` const QA_TEMPLATE = `You are … <context>{context}</context>` ``). Each literal that reads
like a prompt (several words, addressed to the model or naming the context and question) is read by the same
reader as a prompt file, so a gesture against injection or a citation rule in a TypeScript prompt counts as in
Python, with the line it is on.
"""

from __future__ import annotations

import re

SCRIPT_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts")

_PROMPT_WORDS = re.compile(
    r"\b(you are|assistant|answer|context|question|instructions?|documents?|sources?|cite|chat history)\b", re.I
)
_MINIFIED_LINE = 2_000
"""A line longer than this is a bundle's, not a prompt someone wrote."""
MAX_LITERALS = 200


def template_literals(text: str) -> list[tuple[int, str]]:
    """(1-based line of the opening backtick, the literal's text) for each template literal that reads like a
    prompt. Escaped backticks stay inside; `${…}` substitutions are kept as written (their braces are text)."""
    if "`" not in text or any(len(line) > _MINIFIED_LINE for line in text.splitlines()[:50]):
        return []
    found: list[tuple[int, str]] = []
    position = 0
    length = len(text)
    while len(found) < MAX_LITERALS:
        start = _next_backtick(text, position)
        if start < 0:
            break
        end = start + 1
        while end < length and text[end] != "`":
            end += 2 if text[end] == "\\" else 1
        if end >= length:
            break
        literal = text[start + 1 : end]
        position = end + 1
        if len(literal.split()) >= 8 and len(_PROMPT_WORDS.findall(literal)) >= 2:
            found.append((text.count("\n", 0, start) + 1, literal))
    return found


def _next_backtick(text: str, position: int) -> int:
    """The next backtick outside a line or block comment and outside a quoted string."""
    length = len(text)
    while position < length:
        char = text[position]
        if char == "`":
            return position
        if text.startswith("//", position):
            newline = text.find("\n", position)
            position = length if newline < 0 else newline + 1
        elif text.startswith("/*", position):
            close = text.find("*/", position + 2)
            position = length if close < 0 else close + 2
        elif char in "'\"":
            position += 1
            while position < length and text[position] not in (char, "\n"):
                position += 2 if text[position] == "\\" else 1
            position += 1
        else:
            position += 1
    return -1
