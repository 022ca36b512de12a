"""Dependency files, parsed as text (never handed to pip): what is required and whether it is pinned."""

from __future__ import annotations

import json
import re
import tomllib

from grader.model import Evidence
from grader.profile.model import DependencyFile, Requirement

LOCK_FILES = {"uv.lock", "poetry.lock", "pipfile.lock", "pdm.lock", "requirements.lock", "conda-lock.yml"}
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;#]*)")
_EXACT = re.compile(r"^\s*===?\s*[A-Za-z0-9._+!-]+\s*$")


def is_dependency_file(name: str) -> bool:
    lower = name.lower()
    return (lower.startswith("requirements") and lower.endswith((".txt", ".in"))) or lower in {
        "pyproject.toml",
        "pipfile",
        "setup.cfg",
        "package.json",
        "environment.yml",
    }


def parse_dependency_file(path: str, text: str) -> tuple[DependencyFile | None, list[Evidence], str | None]:
    """(the parsed file, refused option lines, a problem note). Never raises on bad input."""
    name = path.rsplit("/", 1)[-1].lower()
    try:
        if name.endswith((".txt", ".in")):
            requirements, refused = _requirements_txt(path, text)
            return DependencyFile(path, "requirements", requirements), refused, None
        if name == "pyproject.toml":
            return DependencyFile(path, "pyproject", _pyproject(text)), [], None
        if name == "pipfile":
            return DependencyFile(path, "pipfile", _pipfile(text)), [], None
        if name == "package.json":
            return DependencyFile(path, "npm", _package_json(text)), [], None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError, TypeError, AttributeError) as error:
        return None, [], f"could not parse {name}: {str(error)[:160]}"
    return None, [], None


def _requirements_txt(path: str, text: str) -> tuple[list[Requirement], list[Evidence]]:
    requirements: list[Requirement] = []
    refused: list[Evidence] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-") or "://" in line or line.startswith((".", "/")) or " @ " in line:
            refused.append(Evidence(path, number, raw.strip()[:200], "option or direct reference"))
            continue
        match = _REQUIREMENT.match(line)
        if match:
            spec = match["spec"].strip()
            requirements.append(Requirement(match["name"].lower(), spec, bool(_EXACT.match(spec)), number))
    return requirements, refused


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def _pyproject(text: str) -> list[Requirement]:
    data = tomllib.loads(text)
    found: list[Requirement] = []
    for entry in data.get("project", {}).get("dependencies", []) or []:
        match = _REQUIREMENT.match(str(entry))
        if match:
            spec = match["spec"].strip()
            found.append(Requirement(match["name"].lower(), spec, bool(_EXACT.match(spec)), _line_of(text, str(entry))))
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}
    for name, value in poetry.items():
        if name.lower() == "python":
            continue
        spec = value if isinstance(value, str) else str(value.get("version", "")) if isinstance(value, dict) else ""
        pinned = bool(re.fullmatch(r"=?=?\s*\d[\w.]*", spec.strip()))
        found.append(Requirement(name.lower(), spec, pinned, _line_of(text, name)))
    return found


def _pipfile(text: str) -> list[Requirement]:
    data = tomllib.loads(text)
    found: list[Requirement] = []
    for name, value in (data.get("packages", {}) or {}).items():
        spec = value if isinstance(value, str) else str(value.get("version", "*")) if isinstance(value, dict) else "*"
        found.append(Requirement(name.lower(), spec, bool(_EXACT.match(spec)), _line_of(text, name)))
    return found


def _package_json(text: str) -> list[Requirement]:
    data = json.loads(text)
    found: list[Requirement] = []
    for section in ("dependencies", "devDependencies"):
        for name, spec in (data.get(section, {}) or {}).items():
            spec_text = str(spec)
            pinned = bool(re.fullmatch(r"\d+\.\d+\.\d+[\w.-]*", spec_text))
            found.append(Requirement(name.lower(), spec_text, pinned, _line_of(text, f'"{name}"')))
    return found
