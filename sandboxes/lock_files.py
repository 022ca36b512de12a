"""Lock files read as data (uv.lock, poetry.lock, Pipfile.lock): the exact versions of a project's main
dependencies. Only what the project's own dependencies reach is kept: development groups, the project's optional
extras and packages only for Windows or macOS stay out; a package from git, a URL or a local path is refused with
the reason. A reader raises ValueError on a file it cannot make sense of; the caller turns that into a note."""

from __future__ import annotations

import json
import re
import tomllib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

MAX_PACKAGES = 2000
"""The most packages one lock file may give; past it the rest are left out with a note."""
VCS_REASON = "a VCS reference is not installed from the wheelhouse"
URL_REASON = "a direct URL reference is not installed from the wheelhouse"
LOCAL_REASON = "a local path is not installed from the wheelhouse (the project's own code is copied, not installed)"
_LINUX = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class Locked:
    """What a lock file gave: `name==version` pins, refused packages as (text, reason), and notes."""

    pins: list[str]
    refused: list[tuple[str, str]]
    notes: list[str]


@dataclass(frozen=True)
class Edge:
    """A dependency edge of the lock's graph: the (normalised) name it points at, with the extras it asks for."""

    name: str
    extras: tuple[str, ...] = ()
    marker: str = ""
    version: str = ""
    optional: bool = False


@dataclass
class _Package:
    name: str
    version: str
    refusal: str = ""
    edges: list[Edge] = field(default_factory=list)
    extras: dict[str, list[Edge]] = field(default_factory=dict)


def normalise(name: str) -> str:
    """PEP 503: `Foo_Bar.baz` and `foo-bar-baz` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def may_apply_on_linux(marker: str) -> bool:
    """False for a marker only Windows or macOS (or another platform) satisfies, whatever the Python version."""
    if not marker:
        return True
    try:
        parsed = Marker(marker)
        return any(
            parsed.evaluate({**_LINUX, "python_version": version, "python_full_version": f"{version}.0"})
            for version in _PYTHONS
        )
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def read_uv_lock(text: str, project_name: str | None) -> Locked:
    """uv.lock: the packages the root project's `dependencies` reach (its dev groups and extras left out). The root
    is the package named as the pyproject's project, else the one whose source is the directory itself."""
    data = tomllib.loads(text)
    entries = _list(data.get("package"))
    if not entries:
        raise ValueError("it has no [[package]] entries")
    notes = _capped(entries, "uv.lock")
    project = normalise(project_name) if project_name else None
    packages: dict[str, list[_Package]] = {}
    roots: list[_Package] = []
    for entry in map(_table, entries[:MAX_PACKAGES]):
        source = _table(entry.get("source"))
        package = _Package(_str(entry.get("name")), _str(entry.get("version")), _uv_refusal(source))
        package.edges = [_uv_edge(item) for item in _list(entry.get("dependencies"))]
        for extra, items in _table(entry.get("optional-dependencies")).items():
            package.extras[normalise(extra)] = [_uv_edge(item) for item in _list(items)]
        packages.setdefault(normalise(package.name), []).append(package)
        if normalise(package.name) == project or "." in source.values():
            roots.append(package)
            groups = [*_table(entry.get("dev-dependencies")), *_table(entry.get("optional-dependencies"))]
            if groups:
                notes.append(f"uv.lock: the project's groups and extras ({', '.join(groups[:10])}) are not installed")
    if not roots:
        notes.append("uv.lock names no root project: every package in it is kept")
        return _pins([p for group in packages.values() for p in group], set(), notes)
    reached = _reachable(packages, [edge for root in roots for edge in root.edges], notes)
    return _pins(reached, {id(root) for root in roots}, notes)


def read_poetry_lock(text: str, pyproject: dict[str, Any] | None) -> Locked:
    """poetry.lock: before Poetry 1.5 each package says `category = "main"|"dev"`; newer locks do not, so the
    packages kept are those the pyproject's main dependencies reach through each package's own dependencies."""
    data = tomllib.loads(text)
    entries = _list(data.get("package"))
    if not entries:
        raise ValueError("it has no [[package]] entries")
    notes = _capped(entries, "poetry.lock")
    packages: dict[str, list[_Package]] = {}
    categories: dict[int, tuple[str, bool]] = {}
    for entry in map(_table, entries[:MAX_PACKAGES]):
        package = _Package(_str(entry.get("name")), _str(entry.get("version")), _poetry_refusal(entry, notes))
        for name, value in _table(entry.get("dependencies")).items():
            package.edges += poetry_edges(name, value)
        for extra, items in _table(entry.get("extras")).items():
            package.extras[normalise(extra)] = [_extra_edge(item) for item in _list(items) if isinstance(item, str)]
        packages.setdefault(normalise(package.name), []).append(package)
        if "category" in entry:
            categories[id(package)] = (_str(entry.get("category")), entry.get("optional") is True)
    every = [package for group in packages.values() for package in group]
    if categories:  # Poetry < 1.5: the lock says which packages are the main ones
        kept = [p for p in every if categories.get(id(p), ("main", False)) == ("main", False)]
        if len(kept) < len(every):
            notes.append(f"poetry.lock: {len(every) - len(kept)} development or optional packages not installed")
        return _pins(kept, set(), notes)
    roots = poetry_roots(pyproject) if pyproject is not None else None
    if roots is None:
        notes.append("poetry.lock without the pyproject's main dependencies: every package in it is kept")
        return _pins(every, set(), notes)
    return _pins(_reachable(packages, roots, notes), set(), notes)


def read_pipfile_lock(text: str) -> Locked:
    """Pipfile.lock: its "default" section, pinned; "develop" is left out."""
    data = json.loads(text)
    default = data.get("default") if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise ValueError('it has no "default" section')
    notes = _capped(list(default), "Pipfile.lock")
    develop = data.get("develop")
    if isinstance(develop, dict) and develop:
        notes.append(f"Pipfile.lock: {len(develop)} development packages not installed")
    pins: list[str] = []
    refused: list[tuple[str, str]] = []
    platform_only: list[str] = []
    for name, value in list(default.items())[:MAX_PACKAGES]:
        entry = _table(value)
        version = _str(entry.get("version"))
        if not may_apply_on_linux(_str(entry.get("markers"))):
            platform_only.append(name)
        elif reason := _pipenv_refusal(entry):
            refused.append((name, reason))
        elif version.startswith("=="):
            pins.append(f"{name}{version}")
        else:
            refused.append((f"{name} {version}".strip(), "not pinned to one version in the lock"))
    _note_platform_only(platform_only, notes)
    return Locked(pins, refused, notes)


def poetry_roots(pyproject: dict[str, Any]) -> list[Edge] | None:
    """The edges from the project itself: [tool.poetry.dependencies] (not `python`, not optional ones) and, for
    Poetry 2, [project].dependencies. None when the pyproject has neither."""
    project = _table(pyproject.get("project"))
    poetry = _table(_table(pyproject.get("tool")).get("poetry"))
    if "dependencies" not in poetry and "dependencies" not in project:
        return None
    edges = [
        edge
        for name, value in _table(poetry.get("dependencies")).items()
        if name.lower() != "python"
        for edge in poetry_edges(name, value)
    ]
    for item in _list(project.get("dependencies")):
        try:
            requirement = Requirement(_str(item))
        except InvalidRequirement:
            continue
        edges.append(Edge(normalise(requirement.name), tuple(requirement.extras), str(requirement.marker or "")))
    return edges


def poetry_edges(name: str, value: object) -> list[Edge]:
    """A Poetry dependency (`"^1.2"`, `{version, extras, markers, optional}`, or a list of those) as edges."""
    items = value if isinstance(value, list) else [value]
    edges = []
    for item in items:
        table = _table(item)
        extras = tuple(extra for extra in _list(table.get("extras")) if isinstance(extra, str))
        marker = _str(table.get("markers"))
        edges.append(Edge(normalise(name), extras, marker, optional=table.get("optional") is True))
    return edges


def _reachable(packages: dict[str, list[_Package]], roots: list[Edge], notes: list[str]) -> list[_Package]:
    """Every package the root edges reach, with the extras each edge asks for; platform-only edges are cut."""
    seen: set[tuple[int, str]] = set()
    reached: list[_Package] = []
    platform_only: list[str] = []
    queue = deque(roots)
    while queue:
        edge = queue.popleft()
        if edge.optional:
            continue
        if not may_apply_on_linux(edge.marker):
            platform_only.append(edge.name)
            continue
        candidates = packages.get(edge.name, [])
        for package in [p for p in candidates if p.version == edge.version] or candidates:
            for extra in ("", *map(normalise, edge.extras)):
                if (id(package), extra) in seen:
                    continue
                seen.add((id(package), extra))
                if not extra:
                    reached.append(package)
                queue.extend(package.edges if not extra else package.extras.get(extra, []))
    _note_platform_only(platform_only, notes)
    return reached


def _pins(packages: list[_Package], roots: set[int], notes: list[str]) -> Locked:
    """One `name==version` per project (the highest when a lock holds several, one per platform or Python)."""
    chosen: dict[str, _Package] = {}
    refused: list[tuple[str, str]] = []
    for package in packages:
        if id(package) in roots:
            continue
        if package.refusal:
            refused.append((f"{package.name} {package.version}".strip(), package.refusal))
            continue
        key = normalise(package.name)
        if key in chosen and chosen[key].version != package.version:
            keep = max(chosen[key], package, key=lambda p: _version(p.version))
            notes.append(f"{package.name}: {chosen[key].version} and {package.version} locked, {keep.version} taken")
            chosen[key] = keep
        else:
            chosen[key] = package
    return Locked([f"{p.name}=={p.version}" for p in chosen.values()], refused, notes)


def _uv_edge(item: object) -> Edge:
    table = _table(item)
    extras = tuple(extra for extra in _list(table.get("extra")) if isinstance(extra, str))
    return Edge(normalise(_str(table.get("name"))), extras, _str(table.get("marker")), _str(table.get("version")))


def _extra_edge(item: str) -> Edge:
    """An entry of a poetry.lock package's [package.extras]: `httptools (>=0.5.0) ; sys_platform != "win32"`."""
    head, _, marker = item.partition(";")
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", head)
    return Edge(normalise(match.group(1)) if match else "", marker=marker.strip())


def _uv_refusal(source: dict[str, Any]) -> str:
    if "git" in source:
        return VCS_REASON
    if "url" in source:
        return URL_REASON
    if source.keys() & {"editable", "virtual", "directory", "path"}:
        return LOCAL_REASON
    return ""


def _poetry_refusal(entry: dict[str, Any], notes: list[str]) -> str:
    source = _table(entry.get("source"))
    kind = _str(source.get("type"))
    if kind == "git":
        return VCS_REASON
    if kind == "url":
        return URL_REASON
    if kind in ("directory", "file"):
        return LOCAL_REASON
    if kind == "legacy":
        index = _str(source.get("url"))[:100]
        notes.append(f"{_str(entry.get('name'))} is locked from the index {index!r}; the configured index is used")
    return ""


def _pipenv_refusal(entry: dict[str, Any]) -> str:
    if entry.keys() & {"git", "hg", "svn", "bzr"}:
        return VCS_REASON
    if "file" in entry or "url" in entry:
        return URL_REASON
    if "path" in entry or entry.get("editable") is True:
        return LOCAL_REASON
    return ""


def _note_platform_only(names: list[str], notes: list[str]) -> None:
    unique = sorted(set(names))
    if unique:
        more = f" and {len(unique) - 10} more" if len(unique) > 10 else ""
        notes.append(f"only for Windows or macOS, not installed: {', '.join(unique[:10])}{more}")


def _capped(entries: list[Any], file: str) -> list[str]:
    if len(entries) > MAX_PACKAGES:
        return [f"{file} lists {len(entries)} packages: only the first {MAX_PACKAGES} are read"]
    return []


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
