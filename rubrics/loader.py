"""Load a rubric from YAML or JSON text, with every problem reported by field path and source line.

Parsing goes through yaml.compose so each value keeps its line; values are then built with PyYAML's
safe constructor (no arbitrary tags), aliases are refused (a rubric has no use for them, and they are
how "billion laughs" documents explode), and the document is size-capped before it is parsed at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from rubrics.catalogue import Params
from rubrics.errors import RubricInvalid, RubricProblem, RubricSyntaxError
from rubrics.model import Criterion, Rubric
from rubrics.validate import LineMap, structural_problems, translate_validation_error, validate_rubric

MAX_DOCUMENT_BYTES = 1_000_000
MAX_NODES = 20_000

Format = Literal["yaml", "json", "auto"]


class LoadedRubric(msgspec.Struct, frozen=True):
    """A validated rubric, its content hash, where it came from, and each leaf's validated parameters
    keyed by the leaf's dotted path ("latency.p95")."""

    rubric: Rubric
    content_hash: str
    source: str
    params: dict[str, Params]


def load_rubric_file(path: Path) -> LoadedRubric:
    """Load a rubric file. Raises RubricSyntaxError / RubricInvalid with the file name as the source."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise RubricSyntaxError(
                f"file is {size:,} bytes; a rubric may be at most {MAX_DOCUMENT_BYTES:,}", None, source
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RubricSyntaxError("no such file", None, source) from None
    except IsADirectoryError:
        raise RubricSyntaxError("is a directory, not a rubric file", None, source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RubricSyntaxError(f"not UTF-8 text (byte {error.start})", None, source) from None
    fmt: Format = "json" if path.suffix.lower() == ".json" else "yaml"
    return load_rubric_text(text, source=source, fmt=fmt)


def load_rubric_text(text: str, *, source: str = "<text>", fmt: Format = "auto") -> LoadedRubric:
    """Parse, check the structure, then check the rules; every problem found is reported at once."""
    if len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise RubricSyntaxError(f"document is larger than {MAX_DOCUMENT_BYTES:,} bytes", None, source)
    data, lines = _parse(text, source)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise RubricInvalid(
            [RubricProblem("(document)", f"a rubric must be a mapping of fields, got {kind}", 1)], source
        )
    problems = structural_problems(data, lines)
    if problems:
        raise RubricInvalid(problems, source)
    try:
        rubric = msgspec.convert(data, Rubric)
    except msgspec.ValidationError as error:  # structural_problems should have caught it; report it all the same
        raise RubricInvalid([translate_validation_error(error, "$", lines)], source) from None
    params, problems = validate_rubric(rubric, lines)
    if problems:
        raise RubricInvalid(problems, source)
    return LoadedRubric(rubric=rubric, content_hash=content_hash(rubric, params), source=source, params=params)


def content_hash(rubric: Rubric, params: dict[str, Params]) -> str:
    """sha256 of the rubric's canonical content, with every check's parameters as validated (defaults
    filled in): formatting and comments do not change it; any change of meaning does."""
    tree = msgspec.to_builtins(rubric)
    _drop_raw_params(tree["criteria"])  # replaced by the validated params, so `{}` and explicit defaults hash alike
    canonical = {"rubric": tree, "params": {path: msgspec.to_builtins(value) for path, value in params.items()}}
    encoded = msgspec.json.encode(canonical, order="sorted")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _drop_raw_params(criteria: list[dict[str, Any]]) -> None:
    for node in criteria:
        if isinstance(node.get("check"), dict):
            node["check"].pop("params", None)
        _drop_raw_params(node.get("children", []))


def leaf_paths(rubric: Rubric) -> list[tuple[str, Criterion]]:
    """(dotted path, leaf) for every leaf, depth first in document order."""
    found: list[tuple[str, Criterion]] = []

    def visit(nodes: list[Criterion], prefix: str) -> None:
        for node in nodes:
            path = f"{prefix}{node.id}"
            if node.is_leaf:
                found.append((path, node))
            else:
                visit(node.children, f"{path}.")

    visit(rubric.criteria, "")
    return found


def _parse(text: str, source: str) -> tuple[Any, LineMap]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RubricSyntaxError(f"not valid YAML/JSON: {error.problem or error.context}", line, source) from None
    except yaml.YAMLError as error:
        raise RubricSyntaxError(f"not valid YAML/JSON: {error}", None, source) from None
    if root is None:
        return None, {}
    lines: LineMap = {}
    try:
        _index_lines(root, "$", lines, set())
    except RubricSyntaxError as error:
        raise RubricSyntaxError(error.reason, error.line, source) from None
    constructor = yaml.SafeLoader("")
    try:
        data = constructor.construct_document(root)
    except yaml.constructor.ConstructorError as error:
        line = error.problem_mark.line + 1 if error.problem_mark is not None else None
        raise RubricSyntaxError(f"unsupported YAML: {error.problem}", line, source) from None
    return data, lines


def _index_lines(node: yaml.Node, path: str, lines: LineMap, seen: set[int]) -> None:
    """Record the 1-based line of every value under its msgspec-style path ("$.criteria[2].weight").

    Refuses aliases (a node reached twice) and documents with more than MAX_NODES nodes.
    """
    if id(node) in seen:
        raise RubricSyntaxError("YAML aliases (&anchor / *alias) are not allowed in a rubric", node.start_mark.line + 1)
    seen.add(id(node))
    if len(seen) > MAX_NODES:
        raise RubricSyntaxError(f"document has more than {MAX_NODES:,} values", node.start_mark.line + 1)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            lines[f"{path}.{name}#key"] = key.start_mark.line + 1
            _index_lines(value, f"{path}.{name}", lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, f"{path}[{index}]", lines, seen)
