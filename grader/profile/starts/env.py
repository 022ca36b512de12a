"""Environment variables the app reads: from its code (os.environ, getenv, pydantic settings classes), read with
`ast`, and from the example env files it ships (.env.example), read as KEY=VALUE lines.

A variable the code reads without a default is required; one it reads with a default is not. `os.getenv("X")`
without a default returns None rather than failing, so alone it is not required; when an example file lists X too,
the project expects it set, and it is.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from enum import IntEnum

from grader.model import Evidence
from grader.profile.model import EnvNeed

MAX_EXCERPT = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXAMPLE_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|PWD|CREDENTIAL|PRIVATE|AUTH", re.I)
_SECRET_VALUE = re.compile(r"^(?:sk-|sk_|pk_|ghp_|gho_|github_pat_|xox[abp]-|AKIA|AIza|eyJ|hf_)")
_SETTINGS_BASES = frozenset({"BaseSettings"})
_TEST_NAMES = frozenset({"conftest.py", "tests.py"})


class _Need(IntEnum):
    """How hard the code needs a variable; the strongest reading of a name wins."""

    DEFAULTED = 0
    """Read with a default."""
    OPTIONAL = 1
    """Read without a default, but a missing one is None, not an error (getenv("X"))."""
    REQUIRED = 2
    """Missing, it fails: os.environ["X"], a settings field without a default."""


@dataclass(frozen=True)
class _Reading:
    name: str
    evidence: Evidence
    need: _Need


@dataclass(frozen=True)
class _Example:
    name: str
    evidence: Evidence
    value: str


def env_needs(python_files: dict[str, str], env_examples: dict[str, str]) -> list[EnvNeed]:
    """The variables the code reads, in the order it reads them, then those only the example files list."""
    code_files = {path: source for path, source in python_files.items() if not _is_test(path)}
    trees = {path: tree for path, source in code_files.items() if (tree := _parse(source)) is not None}
    settings = _settings_classes(list(trees.values()))
    readings: list[_Reading] = []
    for path, tree in trees.items():
        lines = code_files[path].splitlines()
        readings += _EnvReader(path, lines).read(tree)
        readings += _settings_readings(path, lines, tree, settings)
    examples = [example for path, text in env_examples.items() for example in _example_entries(path, text)]
    return _merge(readings, examples)


def _is_test(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return "tests" in parts[:-1] or "test" in parts[:-1] or name.startswith("test_") or name in _TEST_NAMES


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _evidence(path: str, lines: list[str], line: int) -> Evidence:
    excerpt = lines[line - 1].strip()[:MAX_EXCERPT] if 0 < line <= len(lines) else ""
    return Evidence(path, line, excerpt)


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _last_name(node.value)
    return ""


# --- os.environ and getenv -----------------------------------------------------------------------------------------


class _EnvReader:
    """Readings of os.environ / getenv in one file, under whatever names the file imported them as."""

    def __init__(self, path: str, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.os_names = {"os"}
        self.environ_names: set[str] = set()
        self.getenv_names: set[str] = set()

    def read(self, tree: ast.Module) -> list[_Reading]:
        nodes = list(ast.walk(tree))
        for node in nodes:
            self._remember_import(node)
        found: list[_Reading] = []
        for node in nodes:
            reading = self._subscript(node) if isinstance(node, ast.Subscript) else None
            if isinstance(node, ast.Call):
                reading = self._call(node)
            if reading is not None:
                found.append(reading)
        return sorted(found, key=lambda reading: reading.evidence.line or 0)

    def _remember_import(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            self.os_names |= {alias.asname or "os" for alias in node.names if alias.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name == "environ":
                    self.environ_names.add(alias.asname or alias.name)
                elif alias.name == "getenv":
                    self.getenv_names.add(alias.asname or alias.name)

    def _is_environ(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.environ_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os_names
        )

    def _is_getenv(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.getenv_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "getenv"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os_names
        )

    def _subscript(self, node: ast.Subscript) -> _Reading | None:
        """os.environ["X"] read (an assignment to it sets the variable; that is no need)."""
        if not isinstance(node.ctx, ast.Load) or not self._is_environ(node.value):
            return None
        return self._reading(_string(node.slice), node.lineno, _Need.REQUIRED)

    def _call(self, node: ast.Call) -> _Reading | None:
        func = node.func
        reads = self._is_getenv(func) or (
            isinstance(func, ast.Attribute)
            and func.attr in {"get", "setdefault", "pop"}
            and self._is_environ(func.value)
        )
        if not reads or not node.args:
            return None
        has_default = len(node.args) > 1 or any(keyword.arg == "default" for keyword in node.keywords)
        if isinstance(func, ast.Attribute) and func.attr == "pop" and not has_default:
            need = _Need.REQUIRED
        else:
            need = _Need.DEFAULTED if has_default else _Need.OPTIONAL
        return self._reading(_string(node.args[0]), node.lineno, need)

    def _reading(self, name: str | None, line: int, need: _Need) -> _Reading | None:
        if name is None or not _NAME.match(name):
            return None
        return _Reading(name, _evidence(self.path, self.lines, line), need)


# --- pydantic settings classes -------------------------------------------------------------------------------------


def _settings_classes(trees: list[ast.Module]) -> dict[str, ast.ClassDef]:
    """Classes that derive from BaseSettings, directly or through other such classes in the repository, by name."""
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    names = set(_SETTINGS_BASES)
    while True:
        grown = names | {node.name for node in classes if any(_last_name(base) in names for base in node.bases)}
        if grown == names:
            return {node.name: node for node in classes if node.name in names - _SETTINGS_BASES}
        names = grown


def _settings_readings(
    path: str, lines: list[str], tree: ast.Module, settings: dict[str, ast.ClassDef]
) -> list[_Reading]:
    found: list[_Reading] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in settings:
            options = _inherited_config(node, settings)
            prefix = options.get("env_prefix")
            prefix, case_sensitive = (prefix if isinstance(prefix, str) else ""), options.get("case_sensitive") is True
            for item in node.body:
                reading = _field_reading(item, prefix, case_sensitive)
                if reading is not None:
                    name, need = reading
                    found.append(_Reading(name, _evidence(path, lines, item.lineno), need))
    return found


def _inherited_config(node: ast.ClassDef, settings: dict[str, ast.ClassDef]) -> dict[str, object]:
    """The class's settings options over those it inherits from the repository's settings classes (pydantic merges
    model_config down the hierarchy)."""
    options: dict[str, object] = {}
    chain = [node]
    while len(chain) < 10:
        parent = next((settings[_last_name(b)] for b in chain[-1].bases if _last_name(b) in settings), None)
        if parent is None or parent in chain:
            break
        chain.append(parent)
    for cls in reversed(chain):
        options |= _settings_config(cls)
    return options


def _settings_config(node: ast.ClassDef) -> dict[str, object]:
    """The options `model_config = SettingsConfigDict(...)` (or a dict), or an inner `class Config:`, sets."""
    options: dict[str, object] = {}
    for item in node.body:
        if isinstance(item, ast.Assign | ast.AnnAssign) and _assigned_name(item) == "model_config":
            value = item.value
            if isinstance(value, ast.Call):
                options |= {k.arg: _constant(k.value) for k in value.keywords if k.arg}
            elif isinstance(value, ast.Dict):
                options |= {
                    key: _constant(val) for k, val in zip(value.keys, value.values, strict=False) if (key := _string(k))
                }
        elif isinstance(item, ast.ClassDef) and item.name == "Config":
            for inner in item.body:
                name = _assigned_name(inner) if isinstance(inner, ast.Assign | ast.AnnAssign) else None
                if name and isinstance(inner, ast.Assign | ast.AnnAssign) and inner.value is not None:
                    options[name] = _constant(inner.value)
    return options


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _assigned_name(node: ast.Assign | ast.AnnAssign) -> str | None:
    target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
    target = node.target if isinstance(node, ast.AnnAssign) else target
    return target.id if isinstance(target, ast.Name) else None


def _field_reading(item: ast.stmt, prefix: str, case_sensitive: bool) -> tuple[str, _Need] | None:
    """The variable a settings field reads and whether it must be set; None for what is not a field."""
    if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
        return None
    field = item.target.id
    if field.startswith("_") or field == "model_config" or _last_name(item.annotation) == "ClassVar":
        return None
    alias, has_default = _field_alias_and_default(item.value)
    name = alias if alias else prefix + field
    name = name if case_sensitive else name.upper()
    if not _NAME.match(name):
        return None
    return name, _Need.DEFAULTED if has_default else _Need.REQUIRED


def _field_alias_and_default(value: ast.expr | None) -> tuple[str | None, bool]:
    """`Field(default, alias=…)`: the env name it gives, if a string, and whether there is a default (`...` is
    pydantic's "required")."""
    if not (isinstance(value, ast.Call) and _last_name(value.func) == "Field"):
        return None, value is not None and not _is_ellipsis(value)
    keywords = {keyword.arg: keyword.value for keyword in value.keywords if keyword.arg}
    aliases = (_string(keywords.get(key)) for key in ("validation_alias", "alias", "env"))
    alias = next((text for text in aliases if text), None)
    has_default = bool(value.args and not _is_ellipsis(value.args[0])) or "default_factory" in keywords
    has_default = has_default or ("default" in keywords and not _is_ellipsis(keywords["default"]))
    return alias, has_default


def _is_ellipsis(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


# --- example env files ---------------------------------------------------------------------------------------------


def _example_entries(path: str, text: str) -> list[_Example]:
    found: list[_Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _EXAMPLE_LINE.match(line)
        if match is None:
            continue
        name, value = match[1], _example_value(match[2])
        shown = "***" if value and _looks_secret(name, value) else value
        found.append(_Example(name, Evidence(path, number, f"{name}={shown}"[:MAX_EXCERPT]), value))
    return found


def _example_value(raw: str) -> str:
    """The value with its quotes and any trailing ` # comment` removed."""
    raw = raw.strip()
    if raw[:1] in {'"', "'"}:
        close = raw.find(raw[0], 1)
        return raw[1:close] if close > 0 else raw[1:]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _looks_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.match(value))


# --- merging -------------------------------------------------------------------------------------------------------


def _merge(readings: list[_Reading], examples: list[_Example]) -> list[EnvNeed]:
    """One need per name: the code's first reading as evidence and its strongest need; the example file's value."""
    first: dict[str, _Reading] = {}
    strongest: dict[str, _Need] = {}
    for reading in readings:
        first.setdefault(reading.name, reading)
        strongest[reading.name] = max(strongest.get(reading.name, _Need.DEFAULTED), reading.need)
    example_of: dict[str, _Example] = {}
    for example in examples:
        example_of.setdefault(example.name, example)
    needs: list[EnvNeed] = []
    for name, reading in first.items():
        given = example_of.get(name)
        need = strongest[name]
        required = need is _Need.REQUIRED or (given is not None and need is _Need.OPTIONAL)
        needs.append(EnvNeed(name, reading.evidence, required, given.value if given else None))
    for name, listed in example_of.items():
        if name not in first:
            needs.append(EnvNeed(name, listed.evidence, True, listed.value))
    return needs
