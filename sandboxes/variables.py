"""Variable references as Docker and Compose expand them: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`; in compose files `$$` is a literal `$`.

One implementation for the two readers of such text: the start detection that reads Dockerfiles and compose files
(grader/profile/starts/) and the pod plan that starts compose services (sandboxes/pod.py). Text is untrusted:
braces are bounded and nesting is capped, and a form not modelled expands to nothing, never to the raw text.
Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_VARIABLE_CHARS = 512
"""A `${...}` longer than this is taken literally: bounds the work hostile text can cause."""
MAX_NESTING = 4
"""`${A:-${B:-x}}` nests; deeper than this expands to nothing."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])(.*))?", re.S)
_PLAIN_REFERENCE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def expand_variable(
    text: str, start: int, values: Mapping[str, str], *, double_dollar: bool = False, depth: int = 0
) -> tuple[str, int]:
    """The expansion of the `$` reference at `text[start]` and the index after it: `$VAR`, `${VAR}`,
    `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`; an unset variable is empty, as in Docker and
    compose. `${VAR:?message}` gives the value or empty (as data we do not fail)."""
    after = start + 1
    if text.startswith("{", after):
        close = _closing_brace(text, after)
        if close < 0:
            return "$", after
        return _braced(text[after + 1 : close], values, double_dollar, depth), close + 1
    match = _NAME.match(text, after)
    if match is None:
        return "$", after
    return values.get(match[0], ""), match.end()


def _closing_brace(text: str, opening: int) -> int:
    """The `}` that closes the `{` at `opening` (nesting counted), within MAX_VARIABLE_CHARS; -1 if none.
    str.find and str.count keep this fast on hostile text full of braces."""
    end = min(len(text), opening + MAX_VARIABLE_CHARS)
    depth, search = 1, opening + 1
    while (close := text.find("}", search, end)) >= 0:
        depth += text.count("{", search, close) - 1
        if depth == 0:
            return close
        search = close + 1
    return -1


def _braced(inner: str, values: Mapping[str, str], double_dollar: bool, depth: int) -> str:
    match = _BRACED.fullmatch(inner)
    if match is None or depth > MAX_NESTING:
        return ""  # ${...} forms we do not model (pattern removal), or nested too deep: empty, never the raw text
    operator, value = match[2], values.get(match[1])
    word = substitute(match[3] or "", values, double_dollar=double_dollar, depth=depth + 1) if operator else ""
    if operator == ":-":
        return value if value else word
    if operator == "-":
        return value if value is not None else word
    if operator == ":+":
        return word if value else ""
    if operator == "+":
        return word if value is not None else ""
    return value or ""


def substitute(text: str, values: Mapping[str, str], *, double_dollar: bool = False, depth: int = 0) -> str:
    """Every `$` reference in `text` expanded; with `double_dollar` (compose files), `$$` is a literal `$`."""
    parts: list[str] = []
    index = 0
    while (found := text.find("$", index)) >= 0:
        parts.append(text[index:found])
        if double_dollar and text.startswith("$$", found):
            parts.append("$")
            index = found + 2
            continue
        expansion, index = expand_variable(text, found, values, double_dollar=double_dollar, depth=depth)
        parts.append(expansion)
    parts.append(text[index:])
    return "".join(parts)


def unset_references(text: str, values: Mapping[str, str]) -> list[str]:
    """Names that `text` reads as plain `$VAR` / `${VAR}` (no default) and `values` does not set."""
    names = (match[1] or match[2] for match in _PLAIN_REFERENCE.finditer(text))
    return list(dict.fromkeys(name for name in names if name not in values))
