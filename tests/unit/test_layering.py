"""Imports point one way between the rooms (docs/ARCHITECTURE.md, "Imports point one way").

Every import counts: module level, inside functions, under `if TYPE_CHECKING:`. The table below is the rule as data,
and a test keeps it equal to the sentence in ARCHITECTURE.md, so the page and the test cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, frozenset[str]] = {
    "server": frozenset({"interviewer", "grader", "sandboxes", "llm", "rubrics", "frontend"}),
    "interviewer": frozenset({"grader", "sandboxes", "llm", "rubrics"}),
    "grader": frozenset({"sandboxes", "llm", "rubrics"}),
    "sandboxes": frozenset({"llm"}),
    "llm": frozenset(),
    "rubrics": frozenset(),
    "frontend": frozenset(),  # assets; a Python file here may import no room
}
"""For each room, the other rooms it may import."""

ROOMS = frozenset(ALLOWED)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in `tree`, relative ones resolved against `module`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = package[: len(package) - node.level + 1]
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
    return found


def violations(source: str, path: str, module: str, is_package: bool = False) -> list[str]:
    """`path:line` messages for each import of a room that `module`'s room may not import."""
    room = module.partition(".")[0]
    allowed = ALLOWED[room] | {room}
    messages = []
    for line, name in imported_modules(ast.parse(source, path), module, is_package):
        target = name.partition(".")[0]
        if target in ROOMS and target not in allowed:
            messages.append(f"{path}:{line}: {room!r} imports {name!r} (it may import only {sorted(ALLOWED[room])})")
    return messages


def test_rooms_import_only_the_rooms_below_them() -> None:
    found = []
    for room in sorted(ROOMS):
        for file in sorted((ROOT / room).rglob("*.py")):
            relative = file.relative_to(ROOT)
            parts = relative.with_suffix("").parts
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            found += violations(file.read_text(encoding="utf-8"), str(relative), module, is_package)
    assert not found, "imports against the layering in docs/ARCHITECTURE.md:\n" + "\n".join(found)


def rule_in_architecture() -> dict[str, frozenset[str] | None]:
    """The sentence "Imports point one way …" read as {room: rooms it may import}; None means everything."""
    text = " ".join((ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8").split())
    match = re.search(r"Imports point one way[^:]*:(.*?)\. ", text)
    assert match, "docs/ARCHITECTURE.md no longer has the sentence 'Imports point one way …:'"
    rule: dict[str, frozenset[str] | None] = {}
    for clause in match.group(1).split(";"):
        rooms = re.findall(r"`(\w+)`", clause)
        if "may import everything" in clause:
            rule[rooms[0]] = None
        elif "import no other room" in clause:
            rule.update(dict.fromkeys(rooms, frozenset()))
        elif "may import" in clause:
            rule[rooms[0]] = frozenset(rooms[1:])
        else:
            pytest.fail(f"cannot read this clause of the layering sentence: {clause.strip()!r}")
    return rule


def test_table_matches_the_architecture_page() -> None:
    rule = rule_in_architecture()
    assert set(rule) <= ROOMS, f"rooms named in ARCHITECTURE.md but not in ALLOWED: {sorted(set(rule) - ROOMS)}"
    for room, may_import in rule.items():
        expected = ROOMS - {room} if may_import is None else may_import
        assert ALLOWED[room] == expected, (
            f"{room}: ARCHITECTURE.md says {sorted(expected)}, ALLOWED says {sorted(ALLOWED[room])}"
        )


def test_a_forbidden_import_is_named_with_its_line() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import llm.spec\n"
        "if TYPE_CHECKING:\n"
        "    from grader.report import Report\n"
        "def later():\n"
        "    import server.settings\n"
        "    from ..interviewer import plan\n"
    )
    found = violations(source, "sandboxes/fake.py", "sandboxes.fake")
    assert [message.split(": ")[0] for message in found] == [
        "sandboxes/fake.py:5",
        "sandboxes/fake.py:7",
        "sandboxes/fake.py:8",
    ], found
    assert "'grader.report'" in found[0] and "only ['llm']" in found[0]


def test_relative_imports_resolve_inside_their_room() -> None:
    assert violations("from . import model\nfrom .. import errors\n", "grader/profile/x.py", "grader.profile.x") == []
    assert violations("from .gateway import app\n", "sandboxes/__init__.py", "sandboxes", is_package=True) == []
