"""Rubric validation: structural problems (types, required fields) and the rules (catalogue, levels, ...).

Problems are collected, not raised one at a time, so an author sees everything wrong with a file at once.
Paths are msgspec-style internally ("$.criteria[2].weight") and shown without the "$." prefix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

import msgspec

from rubrics.catalogue import CATALOGUE, Params
from rubrics.errors import RubricProblem
from rubrics.model import Check, Criterion, Rubric

LineMap = dict[str, int]
"""msgspec-style path → 1-based source line; "<path>#key" holds the line of a mapping key."""

MAX_DEPTH = 6
MAX_LEAVES = 200
GRADING_LEVELS = ["0", "1", "2", "3"]
INTERVIEW_LEVELS = ["low", "medium", "high"]

_MSGSPEC_PATH = re.compile(r" - at `(?P<path>\$[^`]*)`$")
_TRANSLATIONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Expected `(int|float)`, got `(\w+)`"), lambda m: f"must be a number, got {_article(m[2])}"),
    (re.compile(r"Expected `str`, got `(\w+)`"), lambda m: f"must be text, got {_article(m[1])}"),
    (re.compile(r"Expected `bool`, got `(\w+)`"), lambda m: f"must be true or false, got {_article(m[1])}"),
    (re.compile(r"Expected `array`, got `(\w+)`"), lambda m: f"must be a list, got {_article(m[1])}"),
    (re.compile(r"Expected `object`, got `(\w+)`"), lambda m: f"must be a mapping, got {_article(m[1])}"),
    (re.compile(r"Expected `([^`]+)`, got `(\w+)`"), lambda m: f"must be {m[1]}, got {_article(m[2])}"),
    (re.compile(r"Expected `(?:int|float)` >= (\S+)"), lambda m: f"must be >= {m[1]}"),
    (re.compile(r"Expected `(?:int|float)` > (\S+)"), lambda m: f"must be > {m[1]}"),
    (re.compile(r"Expected `(?:int|float)` <= (\S+)"), lambda m: f"must be <= {m[1]}"),
    (re.compile(r"Expected `(?:int|float)` < (\S+)"), lambda m: f"must be < {m[1]}"),
    (re.compile(r"Expected `str` of length >= (\d+)"), lambda m: f"must have at least {m[1]} character(s)"),
    (re.compile(r"Expected `str` of length <= (\d+)"), lambda m: f"must have at most {m[1]} characters"),
    (re.compile(r"Expected `array` of length >= (\d+)"), lambda m: f"must have at least {m[1]} item(s)"),
    (
        re.compile(r"Expected `str` matching regex"),
        lambda m: "must be lower-case letters, digits, '_' or '-', starting with a letter",
    ),
    (re.compile(r"Invalid enum value '([^']*)'"), lambda m: f"{m[1]!r} is not one of the allowed values"),
    (re.compile(r"Object missing required field `(\w+)`"), lambda m: f"missing required field {m[1]!r}"),
]


def _article(json_type: str) -> str:
    names = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "null": "nothing",
        "array": "a list",
        "object": "a mapping",
    }
    return names.get(json_type, json_type)


def display_path(path: str) -> str:
    shown = path.removeprefix("$").removeprefix(".")
    return shown or "(document)"


def line_for(path: str, lines: LineMap) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            break
        probe = probe[:cut]
    return lines.get("$")


def translate_validation_error(
    error: msgspec.ValidationError, base: str, lines: LineMap, suggestions: list[str] | None = None
) -> RubricProblem:
    """Turn a msgspec ValidationError raised while converting the value at `base` into a readable problem."""
    text = str(error)
    match = _MSGSPEC_PATH.search(text)
    message = text[: match.start()] if match else text
    path = base + (match["path"][1:] if match else "")
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    if unknown:
        field = unknown[1]
        path = f"{path}.{field}"
        message = f"unknown field {field!r}"
        close = difflib.get_close_matches(field, suggestions or [], n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        return RubricProblem(display_path(path), message, lines.get(f"{path}#key") or line_for(path, lines))
    for pattern, render in _TRANSLATIONS:
        found = pattern.search(message)
        if found:
            message = render(found)
            break
    return RubricProblem(display_path(path), message, line_for(path, lines))


_PLACEHOLDER_CRITERIA = [{"id": "x", "title": "x", "weight": 1}]
_RUBRIC_PLACEHOLDERS: dict[str, Any] = {"id": "x", "version": 1, "title": "x", "criteria": _PLACEHOLDER_CRITERIA}
_CRITERION_PLACEHOLDERS: dict[str, Any] = {"id": "x", "title": "x", "weight": 1, "children": []}
_MAX_PROBLEMS_PER_NODE = 20


def structural_problems(data: dict[str, Any], lines: LineMap) -> list[RubricProblem]:
    """Type and required-field problems, gathered node by node so that every broken criterion is reported."""
    criteria = data.get("criteria")
    # criteria are checked one by one below; the rubric's own fields are checked around a stand-in list
    shell = {**data, "criteria": _PLACEHOLDER_CRITERIA} if isinstance(criteria, list) else data
    problems = _node_problems(shell, Rubric, "$", lines, _RUBRIC_PLACEHOLDERS)
    if isinstance(criteria, list):
        if not criteria:
            problems.append(RubricProblem("criteria", "must have at least 1 item(s)", line_for("$.criteria", lines)))
        _criteria_problems(criteria, "$.criteria", lines, problems)
    return problems


def _node_problems(
    node: dict[str, Any], struct: type[Any], path: str, lines: LineMap, placeholders: dict[str, Any]
) -> list[RubricProblem]:
    """Every field-level problem of one node: after each error, the offending field is replaced by a
    harmless placeholder (or dropped) and the conversion retried, so one bad field does not hide the next."""
    problems: list[RubricProblem] = []
    candidate = dict(node)
    fields = list(struct.__struct_fields__)
    for _ in range(_MAX_PROBLEMS_PER_NODE):
        try:
            msgspec.convert(candidate, struct)
            break
        except msgspec.ValidationError as error:
            problem = translate_validation_error(error, path, lines, fields)
            if problem in problems:
                break
            problems.append(problem)
            field = _top_field(str(error))
            if field is None:
                break
            if field in placeholders:
                candidate[field] = placeholders[field]
            elif field in candidate:
                del candidate[field]
            else:
                break
    return problems


def _top_field(message: str) -> str | None:
    """The first-level field a msgspec error is about (`$.weight` → "weight"; unknown/missing field names)."""
    named = re.match(r"Object (?:contains unknown|missing required) field `([^`]+)`", message)
    located = _MSGSPEC_PATH.search(message)
    if named and (located is None or located["path"] == "$"):
        return named[1]
    if located:
        found = re.match(r"\$\.([^.\[]+)", located["path"])
        return found[1] if found else None
    return None


def _criteria_problems(items: list[Any], path: str, lines: LineMap, problems: list[RubricProblem]) -> None:
    for index, item in enumerate(items):
        here = f"{path}[{index}]"
        if not isinstance(item, dict):
            problems.append(RubricProblem(display_path(here), "must be a mapping (a criterion)", line_for(here, lines)))
            continue
        children = item.get("children")
        shell = {**item, "children": []} if isinstance(children, list) else item
        problems.extend(_node_problems(shell, Criterion, here, lines, _CRITERION_PLACEHOLDERS))
        if isinstance(children, list):
            _criteria_problems(children, f"{here}.children", lines, problems)


def validate_rubric(rubric: Rubric, lines: LineMap) -> tuple[dict[str, Params], list[RubricProblem]]:
    """Apply the rules a well-typed rubric must also follow. Returns each leaf's validated params and the problems."""
    walker = _RuleWalker(lines)
    walker.visit(rubric.criteria, "$.criteria", "", depth=1)
    if walker.leaf_count > MAX_LEAVES:
        walker.problem("$.criteria", f"has {walker.leaf_count} leaves; a rubric may have at most {MAX_LEAVES}")
    if walker.kinds and "interview" in walker.kinds and walker.kinds != {"interview"}:
        walker.problem("$.criteria", "mixes interview dimensions with grading checks; put them in separate rubrics")
    return walker.params, walker.problems


class _RuleWalker:
    """Walks the criteria tree once, collecting problems and validated params."""

    def __init__(self, lines: LineMap) -> None:
        self.lines = lines
        self.problems: list[RubricProblem] = []
        self.params: dict[str, Params] = {}
        self.kinds: set[str] = set()
        self.leaf_count = 0

    def problem(self, path: str, message: str, key_line: bool = False) -> None:
        line = self.lines.get(f"{path}#key") if key_line else None
        self.problems.append(RubricProblem(display_path(path), message, line or line_for(path, self.lines)))

    def visit(self, nodes: list[Criterion], path: str, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.problem(path, f"the tree is deeper than {MAX_DEPTH} levels")
            return
        seen: dict[str, int] = {}
        for index, node in enumerate(nodes):
            here = f"{path}[{index}]"
            if node.id in seen:
                self.problem(
                    f"{here}.id", f"duplicate id {node.id!r} (also criteria entry {seen[node.id]} at this level)"
                )
            seen.setdefault(node.id, index)
            dotted = f"{prefix}{node.id}"
            if node.children:
                if node.check is not None:
                    self.problem(
                        f"{here}.check",
                        "a criterion with children is scored from them and cannot have a check",
                        key_line=True,
                    )
                self.visit(node.children, f"{here}.children", f"{dotted}.", depth + 1)
            else:
                self.leaf(node, here, dotted)

    def leaf(self, node: Criterion, here: str, dotted: str) -> None:
        self.leaf_count += 1
        if node.check is None:
            self.problem(here, "a leaf criterion needs a `check` (or `children`)")
            return
        self.kinds.add(node.check.kind)
        params = self.check(node.check, f"{here}.check")
        if params is not None:
            self.params[dotted] = params
        self.levels(node, here)

    def check(self, check: Check, path: str) -> Params | None:
        spec = CATALOGUE.get(check.name)
        if spec is None:
            close = difflib.get_close_matches(check.name, list(CATALOGUE), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(f"{path}.name", f"unknown check {check.name!r}{hint}")
            return None
        if spec.kind != check.kind:
            self.problem(f"{path}.kind", f"check {check.name!r} is a {spec.kind} check, not {check.kind}")
            return None
        try:
            return msgspec.convert(check.params, spec.params)
        except msgspec.ValidationError as error:
            fields = list(spec.params.__struct_fields__)
            self.problems.append(translate_validation_error(error, f"{path}.params", self.lines, fields))
            return None

    def levels(self, node: Criterion, here: str) -> None:
        if not node.levels or node.check is None:
            return
        expected = INTERVIEW_LEVELS if node.check.kind == "interview" else GRADING_LEVELS
        names = [level.name for level in node.levels]
        if names != expected:
            self.problem(
                f"{here}.levels", f"levels must be named {', '.join(expected)} in that order; got {', '.join(names)}"
            )
