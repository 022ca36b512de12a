"""Is this repository one project, or several? find_layout() reads the folder structure and the root README.

Candidates submit course repositories (a folder per week's project), sets of quickstarts and cookbooks, and monorepos
that keep experiments beside the app. A reviewer does not credit such a repository with the union of every
project's features: a feature counts when it is in the project the README presents as the main one, or, with no
main one, in most of its projects (docs/LABELLING.md). Reading it as one tree would give a course repository the
golden set of one week and the Dockerfile of another.

The rules are structural, so that they hold for repositories Viva has never seen:

- a **project** is a folder, at the top level or one level down under a folder that only groups others
  (`recipes/`, `packages/`, `crews/`), that has a README of its own and code of its own;
- folders named for a *part* of one system (backend, frontend, api, docs, tests, evals, notebooks …) are parts,
  not projects: a backend and a frontend are one app;
- the root with code of its own is a project itself, and then the folders beside it are its examples or tools:
  not a collection;
- the **main** project is the one the root README runs: its commands (fenced or inline code), the recipes of the
  Makefile targets they invoke and the compose files they bring up name exactly one project's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.profile.walk import SKIPPED_DIRS, RawFile, Skipped, walk_files

CODE_SUFFIXES = (".py", ".ipynb", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".go", ".rs", ".java", ".rb")

# Root-level code that belongs to the repository's tooling, not to a project of its own.
_TOOLING_FILES = {"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py", "dodo.py"}
_TOOLING_NAME = re.compile(r"\.config\.(?:[cm]?js|ts)$|^\.")

PART_NAMES = {
    "frontend", "front-end", "front_end", "backend", "back-end", "back_end", "client", "server", "api", "web",
    "webapp", "web-app", "ui", "app", "apps", "src", "lib", "core", "services", "service", "worker", "workers",
    "docs", "doc", "documentation", "tests", "test", "testing", "eval", "evals", "evaluation", "evaluations",
    "benchmarks", "bench", "scripts", "tools", "notebooks", "notebook", "data", "datasets", "infra", "deploy",
    "deployment", "k8s", "helm", "terraform", "docker", "config", "configs", "assets", "static", "images",
    "public", "migrations", "prompts",
}  # fmt: skip
"""Folder names that are parts of one system, never projects of a collection."""

MAX_WALK_ENTRIES = 20_000
"""A bound on the folders and files looked at: the layout of a hostile tree costs no more than this."""

_README = re.compile(r"^readme(?:\.(?:md|markdown|rst|txt))?$", re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_MAKE_CALL = re.compile(r"\bmake\s+(?:-\S+\s+)*([A-Za-z0-9_.-]+)")
_COMPOSE_CALL = re.compile(r"\bdocker[- ]compose\b(?:\s+-f\s+(\S+))?")
_MAKE_RULE = re.compile(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*::?(?!=)\s*(.*)$")
_LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?[^)]*\)|href=[\"']([^\"']+)[\"']")
_COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")


@dataclass(frozen=True)
class Layout:
    """The projects of a repository of several (empty for one project) and the main one, if the README runs one."""

    projects: tuple[str, ...] = ()
    main: str | None = None
    reason: str = ""

    @property
    def collection(self) -> bool:
        return len(self.projects) >= 2


@dataclass
class _Folder:
    path: str
    readme: bool = False
    code_here: int = 0
    code_below: int = 0
    children: list[_Folder] | None = None


def find_layout(root: Path) -> Layout:
    """The repository's layout. Never raises on what the tree holds: an unreadable tree is one project."""
    try:
        tree = _scan(root)
    except OSError:
        return Layout()
    root_code = tree.code_here
    projects: list[str] = []
    loose_code = 0  # code in top-level folders that are neither projects nor groups of projects
    for child in tree.children or []:
        grouped = [grand for grand in child.children or [] if _is_project(grand)]
        if grouped and not child.code_here and (len(grouped) >= 2 or not child.readme):
            # A folder that only groups projects (its own README, if any, is their index).
            projects += [grand.path for grand in grouped]
            loose_code += child.code_below - sum(grand.code_below for grand in grouped)
        elif _is_project(child):
            projects.append(child.path)
        else:
            loose_code += child.code_below
    if root_code or len(projects) < 2:
        return Layout()
    project_code = tree.code_below - root_code - loose_code
    if loose_code > project_code // 4:
        # Much of the code is outside the projects: the folders with READMEs are parts of one app, not a collection.
        return Layout()
    projects.sort()
    main, why = _main_project(root, projects)
    return Layout(tuple(projects), main, why)


def _is_project(folder: _Folder) -> bool:
    name = folder.path.rsplit("/", 1)[-1].lower()
    return folder.readme and folder.code_below > 0 and name not in PART_NAMES


def _scan(root: Path) -> _Folder:
    """Two levels of folders below the root, with each folder's README and code counted (code at any
    depth below it). Skips what the profile's walk skips and hidden folders."""
    budget = [MAX_WALK_ENTRIES]

    def scan(path: Path, relative: str, depth: int) -> _Folder:
        folder = _Folder(relative, children=[] if depth < 2 else None)
        with os.scandir(path) as entries:
            ordered = sorted(entries, key=lambda entry: entry.name)
        for entry in ordered:
            budget[0] -= 1
            if budget[0] < 0:
                break
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIPPED_DIRS or entry.name.startswith("."):
                    continue
                child_path = f"{relative}/{entry.name}" if relative else entry.name
                if folder.children is not None:
                    child = scan(Path(entry.path), child_path, depth + 1)
                    folder.children.append(child)
                    folder.code_below += child.code_below
                else:
                    folder.code_below += _count_code(Path(entry.path), budget)
            elif entry.is_file(follow_symlinks=False):
                name = entry.name
                if _README.match(name):
                    folder.readme = True
                elif name.endswith(CODE_SUFFIXES) and not (
                    depth == 0 and (name in _TOOLING_FILES or _TOOLING_NAME.search(name))
                ):
                    folder.code_here += 1
        folder.code_below += folder.code_here
        return folder

    return scan(root, "", 0)


def _count_code(path: Path, budget: list[int]) -> int:
    count = 0
    stack = [path]
    while stack and budget[0] > 0:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    budget[0] -= 1
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
                            stack.append(Path(entry.path))
                    elif entry.name.endswith(CODE_SUFFIXES):
                        count += 1
        except OSError:
            continue
    return count


# --- the main project ---------------------------------------------------------------------------------------------


def _main_project(root: Path, projects: list[str]) -> tuple[str | None, str]:
    """The one project the root README's commands run, with the command that says so; else (None, why)."""
    readme = next((path for path in sorted(root.iterdir()) if _README.match(path.name) and path.is_file()), None)
    if readme is None:
        return None, "no README at the root presents one of them"
    commands = _commands(_read(readme))
    text = "\n".join(commands)
    makefile = _read(root / "Makefile") if (root / "Makefile").is_file() else ""
    if makefile:
        text += "\n" + "\n".join(_recipes(makefile, _MAKE_CALL.findall(text)))
    for match in _COMPOSE_CALL.finditer(text):
        names = [match[1]] if match[1] else list(_COMPOSE_NAMES)
        for name in names:
            candidate = root / name
            if candidate.is_file() and candidate.resolve().is_relative_to(root.resolve()):
                text += "\n" + _read(candidate)
    named = [project for project in projects if _names(text, project)]
    links = [match[1] or match[2] for match in _LINK_TARGET.finditer(_prose(_read(readme)))]
    listed = [project for project in projects if any(_links_to(target, project) for target in links)]
    if len(listed) >= 3 and len(named) <= 1:
        # A README that lists its projects as a menu presents none as the main one; a command naming one of them
        # ("cd recipes/pdf-qa  # or any other") is an example of how to run each.
        return None, f"the README lists {len(listed)} of them as a menu"
    if len(named) == 1:
        return named[0], f"the README's commands run {named[0]}"
    if named:
        return None, f"the README's commands run {len(named)} of them"
    return None, "the README's commands run none of them"


def _commands(readme: str) -> list[str]:
    """The README's fenced code blocks and inline code spans, as text."""
    commands: list[str] = []
    fenced = False
    for line in readme.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            commands.append(line)
        else:
            commands += _INLINE_CODE.findall(line)
    return commands


def _links_to(target: str, project: str) -> bool:
    """Whether a link target points at the project's folder or a file in it (`./recipes/pdf-qa`, `/crews/x/`)."""
    path = target.split("#", 1)[0].split("?", 1)[0].removeprefix("./").lstrip("/")
    return path.rstrip("/") == project or path.startswith(f"{project}/")


def _prose(readme: str) -> str:
    """The README outside its fenced code blocks: where links and lists of projects are."""
    kept: list[str] = []
    fenced = False
    for line in readme.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def _recipes(makefile: str, targets: list[str]) -> list[str]:
    """The recipe lines of `targets`, and of the targets they depend on (one level), from a Makefile."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[tuple[list[str], list[str]]] = []
    for line in makefile.splitlines():
        if line.startswith("\t"):
            for _, recipe in current:
                recipe.append(line.strip())
            continue
        match = _MAKE_RULE.match(line)
        if match and not line.startswith((".", "#")):
            entry: tuple[list[str], list[str]] = (match[2].split(), [])
            current = [entry]
            for target in match[1].split():
                rules[target] = entry
        elif line.strip():
            current = []
    wanted = list(dict.fromkeys(targets))
    for target in list(wanted):
        wanted += [dependency for dependency in rules.get(target, ([], []))[0] if dependency not in wanted]
    return [line for target in wanted for line in rules.get(target, ([], []))[1]]


def _names(text: str, project: str) -> bool:
    """Whether `text` names the project's folder as a path (`cd assistant`, `apps/assistant/main.py`,
    `build: ./assistant`), not as a word inside another name."""
    return re.search(rf"(?<![\w.-])(?:\./|/)?{re.escape(project)}(?![\w.-])", text) is not None


def _read(path: Path, limit: int = 256_000) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


# --- the files of one project ----------------------------------------------------------------------------------


def main_project_files(root: Path, layout: Layout, max_file_bytes: int) -> Iterator[RawFile | Skipped]:
    """The repository's files without the other projects': the main project, the root's own files (README,
    Makefile, compose, CI) and folders that are no project's. Paths stay relative to the repository root."""
    others = tuple(f"{project}/" for project in layout.projects if project != layout.main)
    for item in walk_files(root, max_file_bytes):
        if not item.path.startswith(others):
            yield item


def project_files(root: Path, project: str, max_file_bytes: int) -> Iterator[RawFile | Skipped]:
    """One project's files as if it were the repository (paths relative to its folder), and the root's CI
    workflows, which run for every project (paths unchanged: they start with `.github/`). A project's own
    `.github/` is left out: GitHub runs only the root's."""
    for item in walk_files(root / project, max_file_bytes):
        if not item.path.startswith(".github/"):
            yield item
    if (root / ".github").is_dir():
        for item in walk_files(root / ".github", max_file_bytes):
            path = f".github/{item.path}"
            yield (
                RawFile(path, item.size, item.data)
                if isinstance(item, RawFile)
                else Skipped(path, item.size, item.reason)
            )
