"""What may never be evidence: text a reader of the rendered repository does not see, and text addressed to a grader.

A structural rule, not a list of phrases. A line is hidden when it is inside an HTML comment, inside markup that
renders invisibly (`display:none`, `visibility:hidden`, zero font size or opacity, pushed off screen, the `hidden`
attribute), a comment in a code or configuration file, carries invisible characters (zero-width, bidirectional
overrides), or holds an encoded blob (a long base64 run); and any line addressed to a grader, reviewer or model
(docs.GRADER_ADDRESSED) is never evidence either. `visible_text` blanks hidden lines, keeping line numbers, for
whatever reads prose (README sections, the judge's documents); `read_visible` gives both for a cited line.
"""

from __future__ import annotations

import re

from grader.profile.docs import GRADER_ADDRESSED

INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\u00ad]")
"""Zero-width characters, bidirectional embeddings, overrides and isolates, the soft hyphen."""
BLOB = re.compile(r"(?<![\w/.:-])[A-Za-z0-9+/]{40,}={0,2}(?![\w/.-])")


def _is_blob(line: str) -> bool:
    """A long base64 run: mixed case and digits, hardly any slashes (a URL path or a commit hash is no blob)."""
    for match in BLOB.finditer(line):
        run = match.group()
        mixed = any(c.islower() for c in run) and any(c.isupper() for c in run) and any(c.isdigit() for c in run)
        if mixed and run.count("/") <= 2:
            return True
    return False


_HIDING_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])|"
    r"(?:left|top|text-indent)\s*:\s*-\d{3,}",
    re.I,
)
_OPEN_TAG = re.compile(r"<([a-zA-Z][\w-]*)\b([^>]*)>")
_HASH_COMMENT_FILES = re.compile(
    r"\.(py|sh|bash|zsh|ya?ml|toml|ini|cfg|conf|r|rb|pl|tf|env(\.\w+)?)$|(^|/)(dockerfile[^/]*|makefile|"
    r"\.env[^/]*|requirements[^/]*\.txt|procfile)$",
    re.I,
)
_SLASH_COMMENT_FILES = re.compile(r"\.(js|jsx|ts|tsx|mjs|cjs|go|java|kt|c|cc|cpp|h|hpp|cs|rs|swift|scala|php)$", re.I)
_MARKUP_FILES = re.compile(r"\.(md|markdown|mdx|html?|rst|txt)$", re.I)


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


def hidden_lines(path: str, text: str) -> dict[int, str]:
    """1-based line → why (part of) it is hidden or addressed to a grader."""
    return _read(path, text)[1]


def visible_text(path: str, text: str) -> str:
    """`text` as a reader of the rendered file sees it, minus what addresses a grader: HTML comments cut out,
    every other hidden line blanked; line numbers kept."""
    return "\n".join(_read(path, text)[0])


def read_visible(path: str, text: str) -> tuple[list[str], dict[int, str]]:
    """Both at once: the visible lines (as `visible_text`) and why each hidden line is hidden (as `hidden_lines`)."""
    return _read(path, text)


def _read(path: str, text: str) -> tuple[list[str], dict[int, str]]:
    markup = bool(_MARKUP_FILES.search(path)) or "." not in path.rsplit("/", 1)[-1]
    raw = text.splitlines()
    cut = _HTML_COMMENT.sub(lambda match: "\n" * match.group().count("\n"), text).split("\n") if markup else raw
    visible: list[str] = []
    found: dict[int, str] = {}
    hiding: str | None = None  # the tag whose element renders invisibly, until it closes
    for number, line in enumerate(raw, start=1):
        shown = cut[number - 1] if number - 1 < len(cut) else ""
        kind = "an HTML comment" if shown != line else None
        if markup:
            hidden_here, hiding = _invisible_markup(shown, hiding)
            kind = kind if not hidden_here else "invisible markup"
            if hidden_here:
                shown = ""
        elif (_HASH_COMMENT_FILES.search(path) and line.lstrip().startswith("#")) or (
            _SLASH_COMMENT_FILES.search(path) and line.lstrip().startswith(("//", "/*", "*"))
        ):
            kind, shown = "a comment", ""
        for pattern, why in ((INVISIBLE, "invisible characters"), (GRADER_ADDRESSED, "text addressed to a grader")):
            if pattern.search(line):
                kind, shown = why, ""
        if _is_blob(shown) and not shown.lstrip().startswith(("http", "![", "<img", "[!")):
            kind, shown = "an encoded blob", ""
        if kind is not None:
            found[number] = kind
        visible.append(shown)
    return visible, found


def _invisible_markup(line: str, hiding: str | None) -> tuple[bool, str | None]:
    """(whether this line renders invisibly, the invisible element still open after it)."""
    if hiding is not None:
        return True, (None if f"</{hiding}" in line.lower() else hiding)
    for tag, attributes in _OPEN_TAG.findall(line):
        if _HIDING_STYLE.search(attributes) or re.search(r"(^|\s)hidden(\s|=|$)", attributes, re.I):
            return True, (None if f"</{tag.lower()}" in line.lower() else tag.lower())
    return False, None
