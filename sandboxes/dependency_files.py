"""Which of a candidate's files say what the app depends on, read as data: nothing of the candidate's runs here.

From the directory the app starts in up to the repository's root, the first directory with a dependency file wins.
In it a lock file comes first (uv.lock, poetry.lock, Pipfile.lock: exact versions), then requirements*.txt, then
pyproject.toml (PEP 621, else Poetry), Pipfile, setup.cfg and setup.py (read with `ast`, never executed). Every
requirement goes through deps.parse_requirements' checks; a file that cannot be read becomes a note, never an error.
"""

from __future__ import annotations

import ast
import configparser
import posixpath
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from sandboxes.deps import ParsedRequirements, Refused, parse_requirements
from sandboxes.lock_files import (
    LOCAL_REASON,
    MAX_PACKAGES,
    URL_REASON,
    VCS_REASON,
    Locked,
    read_pipfile_lock,
    read_poetry_lock,
    read_uv_lock,
)

MAX_FILE_BYTES = 2 * 1024 * 1024
"""The largest dependency file read; a bigger one is noted and skipped."""
MAIN_REQUIREMENTS = ("requirements.txt", "requirements-prod.txt", "requirements/base.txt", "requirements/prod.txt")
"""The requirements files installed, all those present, in this order; other requirements*.txt are only noted."""
_DEV_NAME = re.compile(r"dev|test|doc|lint|ci\b|type|check", re.IGNORECASE)
_OPERATORS = r"===|==|!=|<=|>=|~=|<|>|\^|~|="


class DependencySource(msgspec.Struct, frozen=True):
    """A file requirements were read from (repository-relative) and what it was read as."""

    path: str
    kind: str
    """requirements, pyproject (PEP 621), pyproject (Poetry), uv.lock, poetry.lock, Pipfile.lock, Pipfile,
    setup.cfg or setup.py."""

    def describe(self) -> str:
        return f"{self.path} ({self.kind})"


class CollectedRequirements(msgspec.Struct, frozen=True):
    """What the dependency layer installs, the files it came from, and what was read but not taken (and why)."""

    parsed: ParsedRequirements
    sources: list[DependencySource]
    notes: list[str]


def collect_requirements(root: Path, app_dir: str = "") -> CollectedRequirements:
    """The requirements of the app that starts in `app_dir` (repository-relative; the root when empty)."""
    notes: list[str] = []
    for relative in _directories(root, app_dir, notes):
        directory = _Directory(root, relative, notes)
        for reader in _READERS:
            found = reader(directory)
            if found is not None:
                return _collected(directory, found)
    notes.append("no dependency file found (lock files, requirements*.txt, pyproject.toml, Pipfile, setup.cfg/.py)")
    return CollectedRequirements(ParsedRequirements([], []), [], notes)


@dataclass(frozen=True)
class _Found:
    sources: list[DependencySource]
    parsed: ParsedRequirements


class _Directory:
    """One directory of the repository: its files read within bounds, each once, what went wrong noted."""

    def __init__(self, root: Path, relative: str, notes: list[str]) -> None:
        self.root, self.relative, self.notes = root, relative, notes
        self._texts: dict[str, str | None] = {}
        self._tomls: dict[str, dict[str, Any] | None] = {}

    def path(self, name: str) -> str:
        return f"{self.relative}/{name}" if self.relative else name

    def exists(self, name: str) -> bool:
        return (self.root / self.path(name)).is_file()

    def text(self, name: str) -> str | None:
        if name not in self._texts:
            self._texts[name] = _read_bounded(self.root, self.path(name), self.notes)
        return self._texts[name]

    def toml(self, name: str) -> dict[str, Any] | None:
        if name not in self._tomls:
            text, data = self.text(name), None
            if text is not None:
                try:
                    data = tomllib.loads(text)
                except (tomllib.TOMLDecodeError, RecursionError) as error:
                    self.notes.append(f"{self.path(name)} is not valid TOML, not read ({_short(error)})")
            self._tomls[name] = data
        return self._tomls[name]


def _read_bounded(root: Path, relative: str, notes: list[str]) -> str | None:
    """A regular file inside the repository, at most MAX_FILE_BYTES, not binary; None (with a note) otherwise."""
    path = root / relative
    try:
        if not path.is_file():
            return None
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(root.resolve()):
            notes.append(f"{relative} is a link out of the repository: not read")
            return None
        if resolved.stat().st_size > MAX_FILE_BYTES:
            notes.append(f"{relative} is over {MAX_FILE_BYTES // 1024 // 1024} MB: not read")
            return None
        with resolved.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        notes.append(f"{relative} could not be read: {error.strerror or error}")
        return None
    if len(data) > MAX_FILE_BYTES:
        notes.append(f"{relative} grew past {MAX_FILE_BYTES // 1024 // 1024} MB while read: not read")
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # `pip freeze > requirements.txt` in Windows PowerShell writes UTF-16 with a byte-order mark; pip reads it.
        notes.append(f"{relative} is UTF-16 (as Windows PowerShell writes it): read as such")
        return data.decode("utf-16", errors="replace")
    if b"\0" in data:
        notes.append(f"{relative} is binary: not read")
        return None
    return data.decode("utf-8-sig", errors="replace")


def _directories(root: Path, app_dir: str, notes: list[str]) -> list[str]:
    """`app_dir` and its parents up to the root, those that are directories inside the repository."""
    relative = PurePosixPath(app_dir.replace("\\", "/").strip().strip("/") or ".")
    if relative.is_absolute() or ".." in relative.parts:
        notes.append(f"app directory {app_dir[:100]!r} is outside the repository: the root is read instead")
        relative = PurePosixPath(".")
    found = []
    for candidate in [relative, *relative.parents]:
        path = root / candidate
        if path.is_dir() and path.resolve().is_relative_to(root.resolve()):
            found.append("" if str(candidate) == "." else str(candidate))
    return found


def _collected(directory: _Directory, found: _Found) -> CollectedRequirements:
    requirements = list(dict.fromkeys(found.parsed.requirements))
    if len(requirements) > MAX_PACKAGES:
        directory.notes.append(f"{len(requirements)} requirements: only the first {MAX_PACKAGES} are installed")
        requirements = requirements[:MAX_PACKAGES]
    _note_unread_files(directory, found)
    parsed = ParsedRequirements(requirements, found.parsed.refused[:MAX_PACKAGES])
    return CollectedRequirements(parsed, found.sources, directory.notes)


def _note_unread_files(directory: _Directory, found: _Found) -> None:
    used = {source.path for source in found.sources}
    kind = found.sources[0].kind
    others = ["uv.lock", "poetry.lock", "Pipfile.lock", "requirements.txt", "Pipfile", "setup.py"]
    if kind not in ("uv.lock", "poetry.lock"):
        others.append("pyproject.toml")  # a uv or Poetry lock reads it for the project's own name and dependencies
    unread = [name for name in others if directory.path(name) not in used and directory.exists(name)]
    if unread:
        directory.notes.append(f"also present, not read for dependencies: {', '.join(unread)} ({kind} comes first)")
    here = directory.root / directory.relative
    patterns = ("*requirements*.txt", "requirements/*.txt", "requirements*/*.txt")
    names = sorted({str(path.relative_to(here).as_posix()) for pattern in patterns for path in here.glob(pattern)})
    for name in [name for name in names if name not in MAIN_REQUIREMENTS][:20]:
        why = "development, test or docs requirements" if _DEV_NAME.search(name) else "not a main requirements file"
        directory.notes.append(f"{directory.path(name)} not installed ({why})")


def _check(path: str, entries: list[tuple[int, str]], refused: list[Refused]) -> ParsedRequirements:
    """Each entry through parse_requirements on its own, so one entry can never become two lines."""
    requirements: list[str] = []
    refused = list(refused)
    for line, text in entries[:MAX_PACKAGES]:
        if re.search(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", text):
            refused.append(
                Refused(line, text[:200].encode("unicode_escape").decode(), "spans more than one line", path)
            )
            continue
        parsed = parse_requirements(text)
        requirements += parsed.requirements
        refused += [Refused(line, item.text, item.reason, path) for item in parsed.refused]
    return ParsedRequirements(requirements, refused)


def _check_file(path: str, text: str) -> ParsedRequirements:
    parsed = parse_requirements(text)
    refused = [msgspec.structs.replace(item, source=path) for item in parsed.refused]
    return ParsedRequirements(parsed.requirements, refused)


def _from_lock(directory: _Directory, name: str, read: Callable[[str], Locked]) -> _Found | None:
    text = directory.text(name)
    if text is None:
        return None
    path = directory.path(name)
    try:
        locked = read(text)
    except (ValueError, RecursionError) as error:
        directory.notes.append(f"{path} not read ({_short(error)}): the next dependency file is used")
        return None
    directory.notes.extend(locked.notes)
    refused = [Refused(0, text[:200], reason, path) for text, reason in locked.refused]
    return _Found([DependencySource(path, name)], _check(path, [(0, pin) for pin in locked.pins], refused))


def _uv_lock(directory: _Directory) -> _Found | None:
    pyproject = directory.toml("pyproject.toml") if directory.exists("uv.lock") else None
    name = _table((pyproject or {}).get("project")).get("name")
    return _from_lock(directory, "uv.lock", lambda text: read_uv_lock(text, name if isinstance(name, str) else None))


def _poetry_lock(directory: _Directory) -> _Found | None:
    pyproject = directory.toml("pyproject.toml") if directory.exists("poetry.lock") else None
    return _from_lock(directory, "poetry.lock", lambda text: read_poetry_lock(text, pyproject))


def _pipfile_lock(directory: _Directory) -> _Found | None:
    return _from_lock(directory, "Pipfile.lock", read_pipfile_lock)


def _requirements_files(directory: _Directory) -> _Found | None:
    """Every main requirements file present; an `-r` of one of them is not refused, as it is read anyway."""
    texts = {name: text for name in MAIN_REQUIREMENTS if (text := directory.text(name)) is not None}
    if not texts:
        return None
    requirements: list[str] = []
    refused: list[Refused] = []
    for name, text in texts.items():
        parsed = _check_file(directory.path(name), text)
        requirements += parsed.requirements
        refused += [item for item in parsed.refused if _included(name, item.text) not in texts]
    sources = [DependencySource(directory.path(name), "requirements") for name in texts]
    return _Found(sources, ParsedRequirements(requirements, refused))


def _included(name: str, line: str) -> str:
    """The file an `-r other.txt` line of `name` includes, relative to the directory; "" for any other line."""
    match = re.fullmatch(r"(?:-r|--requirement)(?:\s+|=)(\S+)", line.strip())
    return posixpath.normpath(posixpath.join(posixpath.dirname(name), match.group(1))) if match else ""


def _pyproject(directory: _Directory) -> _Found | None:
    data = directory.toml("pyproject.toml")
    if data is None:
        return None
    path = directory.path("pyproject.toml")
    project = _table(data.get("project"))
    dynamic = _list(project.get("dynamic"))
    if "dependencies" in project and "dependencies" not in dynamic:
        items = _list(project.get("dependencies"))
        entries = [(0, item) for item in items if isinstance(item, str)]
        refused = [
            Refused(0, repr(item)[:200], "not a requirement string", path)
            for item in items
            if not isinstance(item, str)
        ]
        return _Found([DependencySource(path, "pyproject (PEP 621)")], _check(path, entries, refused))
    if "dependencies" in dynamic:
        directory.notes.append(
            f"{path}: [project] dependencies are dynamic (the build backend computes them): not read"
        )
    poetry = _table(_table(data.get("tool")).get("poetry"))
    if "dependencies" not in poetry:
        return None
    groups = [*_table(poetry.get("group")), *(["dev-dependencies"] if "dev-dependencies" in poetry else [])]
    if groups:
        directory.notes.append(f"{path}: Poetry groups not installed: {', '.join(groups[:10])}")
    entries, refused = [], []
    for name, value in list(_table(poetry.get("dependencies")).items())[:MAX_PACKAGES]:
        if name.lower() == "python":
            continue
        for item in value if isinstance(value, list) else [value]:
            if _table(item).get("optional") is True:
                directory.notes.append(f"{path}: optional dependency {name} (for an extra) not installed")
                continue
            requirement, reason = poetry_requirement(name, item)
            if reason:
                refused.append(Refused(0, f"{name} = {str(item)[:100]}", reason, path))
            else:
                entries.append((0, requirement))
    return _Found([DependencySource(path, "pyproject (Poetry)")], _check(path, entries, refused))


def _pipfile(directory: _Directory) -> _Found | None:
    data = directory.toml("Pipfile")
    if data is None or "packages" not in data:
        return None
    path = directory.path("Pipfile")
    if _table(data.get("dev-packages")):
        directory.notes.append(f"{path}: [dev-packages] not installed")
    entries, refused = [], []
    for name, value in list(_table(data.get("packages")).items())[:MAX_PACKAGES]:
        table = value if isinstance(value, dict) else {"version": value}
        reason = _source_refusal(table)
        version = table.get("version", "*")
        if not reason and not isinstance(version, str):
            reason = "not a version specifier"
        if reason:
            refused.append(Refused(0, f"{name} = {str(value)[:100]}", reason, path))
            continue
        extras = [extra for extra in _list(table.get("extras")) if isinstance(extra, str)]
        specifier = "" if str(version).strip() == "*" else str(version).strip()
        entries.append((0, _requirement(name, extras, specifier, [_str(table.get("markers"))])))
    return _Found([DependencySource(path, "Pipfile")], _check(path, entries, refused))


def _setup_cfg(directory: _Directory) -> _Found | None:
    text = directory.text("setup.cfg")
    if text is None:
        return None
    path = directory.path("setup.cfg")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
        value = parser.get("options", "install_requires", fallback=None)
    except (configparser.Error, RecursionError) as error:
        directory.notes.append(f"{path} could not be read ({_short(error)})")
        return None
    if value is None:
        return None
    if value.strip().startswith(("file:", "attr:")):
        directory.notes.append(f"{path}: install_requires = {value.strip()[:100]} is not followed")
        return _Found([DependencySource(path, "setup.cfg")], ParsedRequirements([], []))
    entries = [(0, line) for line in value.splitlines() if line.strip()]
    return _Found([DependencySource(path, "setup.cfg")], _check(path, entries, []))


def _setup_py(directory: _Directory) -> _Found | None:
    text = directory.text("setup.py")
    if text is None:
        return None
    path = directory.path("setup.py")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        directory.notes.append(f"{path} could not be parsed ({type(error).__name__}); it is never run")
        return None
    requirements, why = install_requires(tree)
    if why:
        directory.notes.append(f"{path}: {why}; setup.py is read, never run, so nothing is installed from it")
    entries = [(0, item) for item in requirements]
    return _Found([DependencySource(path, "setup.py")], _check(path, entries, []))


def install_requires(tree: ast.Module) -> tuple[list[str], str]:
    """The literal `install_requires=` of a setup() call (a list, or a module-level list it names), or why not."""
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _is_setup(node.func)]
    if not calls:
        return [], "no setup() call"
    keyword = next((item for item in calls[0].keywords if item.arg == "install_requires"), None)
    if keyword is None:
        unpacked = any(item.arg is None for item in calls[0].keywords)
        return [], "setup() takes its arguments from **kwargs" if unpacked else ""
    node: ast.expr | None = keyword.value
    if isinstance(keyword.value, ast.Name):
        node = _module_list(tree, keyword.value.id)
        if node is None:
            return [], f"install_requires is {keyword.value.id}, which is computed"
    try:
        value = ast.literal_eval(node) if node is not None else None
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return [], "install_requires is computed"
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        return [], "install_requires is not a list of strings"
    return list(value), ""


def _is_setup(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "setup") or (
        isinstance(func, ast.Attribute) and func.attr == "setup"
    )


def _module_list(tree: ast.Module, name: str) -> ast.expr | None:
    """The one module-level value assigned to `name`, or None when it is assigned more than once or changed."""
    values = [
        statement.value
        for statement in tree.body
        if (isinstance(statement, ast.Assign) and any(_is_name(target, name) for target in statement.targets))
        or (isinstance(statement, ast.AnnAssign) and _is_name(statement.target, name))
    ]
    changed = any(
        (isinstance(node, ast.AugAssign) and _is_name(node.target, name))
        or (isinstance(node, ast.Attribute) and _is_name(node.value, name))
        for node in ast.walk(tree)
    )
    return values[0] if len(values) == 1 and not changed else None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def poetry_requirement(name: str, value: object) -> tuple[str, str]:
    """A Poetry dependency (`"^1.2"` or `{version, extras, markers, python, platform}`) as a PEP 508 line, and
    "" — or "" and the reason it is not one (git, path, url, an unreadable constraint)."""
    table = value if isinstance(value, dict) else {"version": value}
    reason = _source_refusal(table)
    constraint = table.get("version", "*")
    if reason:
        return "", reason
    specifier = poetry_specifier(constraint) if isinstance(constraint, str) else None
    if specifier is None:
        return "", f"not a Poetry version constraint: {str(constraint)[:60]!r}"
    extras = [extra for extra in _list(table.get("extras")) if isinstance(extra, str)]
    python = poetry_specifier(_str(table.get("python")) or "*") or ""
    markers = [
        _str(table.get("markers")),
        " and ".join(f'python_version {spec.operator} "{spec.version}"' for spec in _specifiers(python)),
        f'sys_platform == "{_str(table.get("platform"))}"' if _str(table.get("platform")) else "",
    ]
    return _requirement(name, extras, specifier, markers), ""


def poetry_specifier(constraint: str) -> str | None:
    """A Poetry constraint as a PEP 440 specifier: `^1.2.3` → `>=1.2.3,<2.0.0`, `~1.2` → `>=1.2,<1.3`, `*` → ``,
    `1.2.*` → `==1.2.*`, `1.2` → `==1.2`; of `A || B` the last alternative. None when it is not one."""
    chosen = constraint.rsplit("||", maxsplit=1)[-1].strip()
    parts: list[str] = []
    for token in filter(None, re.split(r"[\s,]+", re.sub(rf"({_OPERATORS})\s+", r"\1", chosen))):
        match = re.fullmatch(rf"({_OPERATORS})?(.+)", token)
        operator, version = (match.group(1) or "", match.group(2)) if match else ("", token)
        try:
            if operator in ("^", "~"):
                parts += _bounds(version, caret=operator == "^")
            elif operator in ("", "=") and version not in ("*", "x", "X"):
                parts.append(f"=={version[:-2]}.*" if version.endswith((".*", ".x")) else f"=={version}")
            elif operator not in ("", "="):
                parts.append(operator + version)
        except InvalidVersion:
            return None
    try:
        SpecifierSet(",".join(parts))
    except InvalidSpecifier:
        return None
    return ",".join(parts)


def _bounds(version: str, *, caret: bool) -> list[str]:
    """^: the leftmost non-zero part may not change; ~: the minor version (the major when only that is given)."""
    release = list(Version(version).release)
    if caret:
        index = next((i for i, part in enumerate(release) if part), len(release) - 1)
    else:
        index = 0 if len(release) == 1 else 1
    upper = [*release[:index], release[index] + 1] + [0] * (len(release) - index - 1)
    return [f">={version}", f"<{'.'.join(map(str, upper))}"]


def _specifiers(specifier: str) -> SpecifierSet:
    try:
        return SpecifierSet(specifier)
    except InvalidSpecifier:
        return SpecifierSet()


def _requirement(name: str, extras: list[str], specifier: str, markers: list[str]) -> str:
    kept = [marker for marker in markers if marker]
    marker = " and ".join(f"({item})" for item in kept) if len(kept) > 1 else "".join(kept)
    return name + (f"[{','.join(extras)}]" if extras else "") + specifier + (f" ; {marker}" if marker else "")


def _source_refusal(table: dict[str, Any]) -> str:
    if table.keys() & {"git", "hg", "svn", "bzr"}:
        return VCS_REASON
    if table.keys() & {"url", "file"}:
        return URL_REASON
    if "path" in table or table.get("editable") is True:
        return LOCAL_REASON
    return ""


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:120]


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


_READERS: tuple[Callable[[_Directory], _Found | None], ...] = (
    _uv_lock,
    _poetry_lock,
    _pipfile_lock,
    _requirements_files,
    _pyproject,
    _pipfile,
    _setup_cfg,
    _setup_py,
)


# --- what a project installs without a dependency file, and every name any file declares -----------------


PIP_INSTALL = re.compile(r"\b(?:python3? -m )?pip3? install\b([^;&|`#]*)")


def installs_named_elsewhere(
    collected: CollectedRequirements, root: Path, skipped_steps: list[str], dockerfile: str = ""
) -> CollectedRequirements:
    """With no dependency file, the packages the project installs another way, read as data (never run): the
    `RUN pip install a b` steps its start's Dockerfile has that Viva did not replay (`skipped_steps`, as
    "Dockerfile:4: RUN …"), else the `pip install a b` lines of its README."""
    names: list[str] = []
    where = ""
    for step in skipped_steps:
        names += _pip_install_names(step.split(": ", 1)[-1])
        where = where or f"the Dockerfile's RUN pip install ({dockerfile or 'Dockerfile'})"
    if not names:
        for readme in sorted(root.glob("README*"))[:3]:
            if readme.is_file() and not readme.is_symlink():
                for line in readme.read_text(errors="replace")[:500_000].splitlines():
                    names += _pip_install_names(line.strip().lstrip("!%$> "))
                where = where or f"the pip install lines of {readme.name}" if names else where
    if not names:
        return collected
    parsed = parse_requirements("\n".join(dict.fromkeys(names)))
    return msgspec.structs.replace(collected, parsed=parsed, notes=[*collected.notes, f"no dependency file: {where}"])


INSTALLER_TOOLS = frozenset({"pip", "pip3", "setuptools", "wheel", "uv"})
"""What `pip install --upgrade pip wheel` names for the installer itself, not the project."""


def _pip_install_names(text: str) -> list[str]:
    names: list[str] = []
    for match in PIP_INSTALL.finditer(text):
        try:
            words = shlex.split(match.group(1), posix=True)
        except ValueError:
            continue
        names += [
            word
            for word in words
            if not word.startswith("-")
            and "/" not in word
            and word != "."
            and not word.endswith((".txt", ".toml"))
            and word.lower() not in INSTALLER_TOOLS
        ]
    return names


DEPENDENCY_NAME = re.compile(r"""^\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:[<>=!~;@,"'\s]|$)""", re.M)


def declared_anywhere(root: Path) -> list[str]:
    """Every package name any dependency file of the repository mentions, roughly (requirements files, pyproject,
    setup.py, Pipfile), and what its Dockerfiles' and READMEs' `pip install` lines name: so a module the installed
    file lacks but the project declares elsewhere is not blamed on the candidate."""
    names: list[str] = []
    patterns = ("requirements*.txt", "requirements/*.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile")
    for count, path in enumerate(path for pattern in patterns for path in root.rglob(pattern)):
        if count > 50 or not path.is_file() or path.is_symlink() or path.stat().st_size > 500_000:
            continue
        text = path.read_text(errors="replace")
        names += DEPENDENCY_NAME.findall(text)
        names += re.findall(r"""["']([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:[<>=!~][^"']*)?["']""", text)
    for count, path in enumerate(
        path for pattern in ("Dockerfile*", "*.Dockerfile", "README*") for path in root.rglob(pattern)
    ):
        if count > 50 or not path.is_file() or path.is_symlink() or path.stat().st_size > 500_000:
            continue
        for line in path.read_text(errors="replace").splitlines():
            names += _pip_install_names(line.strip().lstrip("!%$> "))
    return names
