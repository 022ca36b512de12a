"""Load a rubric from YAML or JSON text, with every problem reported by field path and source line.

JSON goes through the same YAML path (the JSON a rubric needs is valid YAML). Before anything is parsed, a cheap
scan of the text refuses documents that are too big, nest brackets too deep or spell numbers too long; while
parsing, the composer bounds nesting and the number of values and refuses aliases (how "billion laughs" documents
explode) and tags (a rubric is plain data). Values are built with PyYAML's safe constructor, which here also refuses
duplicate and non-text keys. Whatever the input, the caller gets a LoadedRubric or a RubricError, never a crash.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from rubrics.catalogue import Params
from rubrics.errors import RubricInvalid, RubricProblem, RubricSyntaxError
from rubrics.model import Criterion, Rubric
from rubrics.validate import LineMap, structural_problems, translate_validation_error, validate_rubric

# Limits a real rubric never reaches (the built-ins are under 8 KB, nest 8 deep and hold about 500 values; a big
# hand-written rubric stays under 100 KB and nests under 30), set where a hostile document is refused in milliseconds.
MAX_DOCUMENT_BYTES = 256_000
"""The server's own cap on a rubric's source. Pure-Python PyYAML parses about 250 KB of rubric a second (the old
1 MB cap let one request cost six seconds of CPU)."""
MAX_NESTING = 50
"""Lists and mappings inside each other. A rubric tree is at most 6 criteria deep, about 16 YAML levels with checks
and params. PyYAML's composer recurses per level (Python's stack overflows after a few hundred) and its scanner is
quadratic in the depth of `[`/`{` brackets: 20,000 `[` cost 1.7 s of CPU before crashing."""
MAX_NUMBER_DIGITS = 100
"""A weight or a parameter needs at most ~20 digits; Python refuses to read an integer of more than 4,300."""
MAX_NODES = 20_000
"""Values (keys, scalars, lists, mappings): ~2.5 times a rubric of MAX_LEAVES leaves, each with levels and params."""

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
    try:
        _check_limits(text)
        data, lines = _parse(text)
    except RubricSyntaxError as error:
        raise RubricSyntaxError(error.reason, error.line, source) from None
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


_BRACKET = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(rf"[0-9][0-9_:]{{{MAX_NUMBER_DIGITS},}}")  # YAML 1.1 integers may hold '_' and ':'


def _check_limits(text: str) -> None:
    """Refuse, before any parsing, a document whose size, bracket depth or number lengths no rubric comes near.

    Brackets are counted in strings and comments too: a rubric with 50 unclosed `[` in its prose does not exist.
    Indentation depth is left to the composer (`_RubricLoader.compose_node`): the scanner is linear in it.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_DOCUMENT_BYTES:
        raise RubricSyntaxError(f"document is {size:,} bytes; a rubric may be at most {MAX_DOCUMENT_BYTES:,}")
    depth = 0
    for bracket in _BRACKET.finditer(text):
        depth = depth + 1 if bracket[0] in "[{" else max(depth - 1, 0)
        if depth > MAX_NESTING:
            raise RubricSyntaxError(
                f"brackets are nested more than {MAX_NESTING} deep", _line_at(text, bracket.start())
            )
    number = _LONG_NUMBER.search(text)
    if number is not None:
        raise RubricSyntaxError(f"a number has more than {MAX_NUMBER_DIGITS} digits", _line_at(text, number.start()))


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


class _LineIndex:
    """Lines as an editor numbers them, from a character offset. YAML's own marks count U+0085, U+2028, U+2029 and
    a lone carriage return as line breaks too, so they can name a line past the document's last."""

    def __init__(self, text: str) -> None:
        self.breaks = [match.start() for match in re.finditer("\n", text)]

    def of(self, mark: Any) -> int | None:
        """The line of a YAML mark (PyYAML's pure or C one; both carry the character offset), None for none."""
        return None if mark is None else bisect.bisect_left(self.breaks, mark.index) + 1

    def node(self, node: yaml.Node) -> int:
        return bisect.bisect_left(self.breaks, node.start_mark.index) + 1


def _parse(text: str) -> tuple[Any, LineMap]:
    """The document's data and the line of every value; every failure is a RubricSyntaxError."""
    try:
        loader = _RubricLoader(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (the whole text is checked up front)
        raise RubricSyntaxError(_reader_problem(error), _line_at(text, error.position)) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        lines: LineMap = {}
        _index_lines(root, "$", lines, loader.lines)
        return loader.construct_document(root), lines
    except yaml.MarkedYAMLError as error:
        line = loader.lines.of(error.problem_mark or error.context_mark)
        prefix = "unsupported YAML" if isinstance(error, yaml.constructor.ConstructorError) else "not valid YAML/JSON"
        raise RubricSyntaxError(f"{prefix}: {error.problem or error.context}", line) from None
    except yaml.YAMLError as error:
        raise RubricSyntaxError(f"not valid YAML/JSON: {error}") from None
    except (RecursionError, ValueError, OverflowError) as error:  # the limits should make these unreachable
        raise RubricSyntaxError(f"cannot be read as YAML/JSON ({type(error).__name__}: {error})") from None
    finally:
        loader.dispose()


def _reader_problem(error: yaml.reader.ReaderError) -> str:
    character = error.character if isinstance(error.character, int) else ord(error.character)
    return f"not valid YAML/JSON: character U+{character:04X} is not allowed"


class _RubricLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: nesting, value count, no aliases, no tags; only unique text keys."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lines = _LineIndex(text)
        self.depth = 0
        self.node_count = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # the stubs leave it untyped
        line = self.lines.of(event.start_mark)
        if isinstance(event, yaml.AliasEvent):  # refused where it is met, before anything could expand it
            raise RubricSyntaxError("YAML aliases (*name) are not allowed in a rubric", line)
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise RubricSyntaxError(f"unsupported YAML: tag {tag!r} (a rubric is plain data, without tags)", line)
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise RubricSyntaxError(f"document has more than {MAX_NODES:,} values", line)
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RubricSyntaxError(f"lists and mappings are nested more than {MAX_NESTING} deep", line)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.ScalarNode) and not node.value.isascii():
            _join_surrogate_pairs(node, self.lines.node(node))
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as error:  # an implicit int or date that is not one: 0x_, 2024-02-30
            raise RubricSyntaxError(
                f"cannot read {_spelling(node)} as {_kind(node)}: {error}", self.lines.node(node)
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # as SafeConstructor does, so that keys merged in with `<<` are checked too
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node)  # cached: the constructor builds each node once
            if not isinstance(key, str):
                raise RubricSyntaxError(_not_text_key(key_node), self.lines.node(key_node))
            line = self.lines.node(key_node)
            if key in first_seen:
                raise RubricSyntaxError(f"duplicate key {key!r} (first on line {first_seen[key]})", line)
            first_seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _join_surrogate_pairs(node: yaml.ScalarNode, line: int) -> None:
    """JSON spells a character outside the BMP as an escaped surrogate pair ("\\ud83d\\ude80"), which PyYAML leaves as
    two halves: join them. A half left alone is not text (it cannot be stored or hashed) and is refused."""
    try:
        node.value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            node.value = node.value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise RubricSyntaxError("text holds half a surrogate pair (a lone \\ud800-\\udfff escape)", line) from None


def _not_text_key(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):  # `on:`, `null:` or `1:` - YAML 1.1 reads these as other things
        return f"key {_spelling(node)} is read as {_kind(node)}, not text; quote it"
    return f"a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'} cannot be a key; keys are text"


def _spelling(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        return "a value"
    return repr(node.value[:40] + ("..." if len(node.value) > 40 else ""))


_KINDS = {"int": "an integer", "float": "a number", "bool": "true/false", "null": "null", "timestamp": "a date"}


def _kind(node: yaml.Node) -> str:
    """What YAML 1.1 reads a plain scalar as ("tag:yaml.org,2002:bool" → "true/false")."""
    name = str(node.tag).rsplit(":", 1)[-1]
    return _KINDS.get(name, name)


def _index_lines(node: yaml.Node, path: str, lines: LineMap, index: _LineIndex) -> None:
    """Record the 1-based line of every value under its msgspec-style path ("$.criteria[2].weight")."""
    lines[path] = index.node(node)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            lines[f"{path}.{name}#key"] = index.node(key)
            _index_lines(value, f"{path}.{name}", lines, index)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index_lines(item, f"{path}[{position}]", lines, index)
