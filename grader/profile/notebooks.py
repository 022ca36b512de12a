"""A Jupyter notebook's code cells as Python source whose line numbers are the notebook file's own.

Candidates evaluate, benchmark and wire their RAG pipelines in notebooks as often as in modules (a course's
evaluation notebook computing hit rate and MRR over a ground-truth set is the common case). Reading a notebook's
code like a module's lets every Python fact come from it, and its evidence point at the line in the `.ipynb` a
reviewer opens: nbformat writes each source line as its own JSON string on its own line, so each code line is
placed on the line of the file where its string is. Shell and magic lines (`!pip`, `%time`) become blank; a cell
that still does not parse is left out rather than losing the notebook.
"""

from __future__ import annotations

import ast
import json
import re

_STRING_LINE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*,?\s*$')
_MAGIC = re.compile(r"^\s*[!%]")


def notebook_code(text: str) -> str | None:
    """The notebook's code cells as Python laid out on the file's own line numbers, or None for a file that is not
    a notebook (not JSON, or no cells). Never raises on what the file holds."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        return None
    raw = text.splitlines()
    strings = _json_strings(raw)
    placed: list[str] = [""] * len(raw)
    extra: list[str] = []  # cells whose lines could not be found in the file go after its end
    cursor = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source")
        lines = _source_lines(source)
        if not lines:
            continue
        code = ["" if _MAGIC.match(line) else line for line in lines]
        if not _parses("\n".join(code)):
            continue
        positions = _find(strings, lines, cursor)
        if positions is None:
            extra += [*code, ""]
            continue
        for position, line in zip(positions, code, strict=True):
            placed[position] = line
        cursor = positions[-1] + 1
    return "\n".join(placed + extra) + "\n"


def _source_lines(source: object) -> list[str]:
    if isinstance(source, str):
        return source.splitlines()
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source).splitlines()
    return []


def _json_strings(raw: list[str]) -> list[str | None]:
    """Each file line's JSON string (without its trailing newline), or None for a line that is not one string."""
    found: list[str | None] = []
    for line in raw:
        match = _STRING_LINE.match(line)
        value = None
        if match:
            try:
                decoded = json.loads(match[1])
            except json.JSONDecodeError:
                decoded = None
            value = decoded.rstrip("\n") if isinstance(decoded, str) else None
        found.append(value)
    return found


def _find(strings: list[str | None], lines: list[str], start: int) -> list[int] | None:
    """The file lines, from `start` on and consecutive, that hold the cell's source lines; None when they are not
    laid out one per line (a notebook written with each cell's source as one string)."""
    first = lines[0]
    for position in range(start, len(strings) - len(lines) + 1):
        if strings[position] == first and all(strings[position + offset] == line for offset, line in enumerate(lines)):
            return list(range(position, position + len(lines)))
    return None


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
