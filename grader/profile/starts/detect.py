"""Every way a repository says its app starts, best first, each with where it says so and a tier.

The files that can say it are read here, bounded, as data: viva.toml (declared); Dockerfiles anywhere and compose
files, the one a compose file or the README points at first, and a Procfile (packaged); README and docs code blocks,
Makefile targets and CI steps that start the service (documented); pyproject scripts, `python -m` packages,
`__main__` blocks and module-level app objects (inferred). Within a tier, sources keep the order they are read in;
across tiers, `TIERS` decides. The sandbox tries them in that order (grader/dynamic/run.py).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from grader.model import Evidence
from grader.profile.model import EnvNeed, StartCandidate, StartTier
from grader.profile.starts import compose, dockerfile, documented, env, inferred

T = TypeVar("T")
NONE_FOUND: list[StartCandidate] = []
"""What a parser that crashed found (never appended to: every caller concatenates)."""

TIERS: dict[StartTier, str] = {
    "declared": "the candidate told Viva how to start it: viva.toml [app].start",
    "packaged": "what the project ships to run itself: a Dockerfile's CMD/ENTRYPOINT, a compose service's command, "
    "a Procfile",
    "documented": "a command the README, docs, a Makefile target or a CI step gives for starting the service",
    "inferred": "Viva's own reading of the code: a pyproject script, a `python -m` package, a `__main__` block, a "
    "module-level app object and its framework's default command",
}
"""The start tiers, most certain first: the table docs/DYNAMIC.md shows (a test holds them to each other)."""

DOCKER_COMMAND = re.compile(r"^\s*(?:\$ )?(docker(?:-compose| compose| build)[^\n`]*)", re.M)
NOT_STARTS = ("sleep infinity", "tail -f /dev/null", "sleep inf", "/bin/sh", "bash", "sh")
"""Commands that keep a container alive for someone to exec into (a devcontainer's), not the app's start."""
SKIP_DIRS = {".devcontainer", ".git", "node_modules", ".venv", "venv", "env", "__pycache__", "site-packages", "dist",
             "build", ".tox", ".mypy_cache", ".pytest_cache", ".next", "target", ".idea", ".vscode"}  # fmt: skip
MAX_FILES = 5000
MAX_FILE_BYTES = 1_000_000
MAX_PYTHON_FILES = 1500
MAX_CANDIDATES = 12
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template", "env.example", ".env.dist", "example.env")


@dataclass
class RepoFiles:
    """The texts start detection reads, by repository-relative POSIX path."""

    dockerfiles: dict[str, str] = field(default_factory=dict)
    composes: dict[str, str] = field(default_factory=dict)
    makefiles: dict[str, str] = field(default_factory=dict)
    procfiles: dict[str, str] = field(default_factory=dict)
    markdown: dict[str, str] = field(default_factory=dict)
    workflows: dict[str, str] = field(default_factory=dict)
    pyprojects: dict[str, str] = field(default_factory=dict)
    python: dict[str, str] = field(default_factory=dict)
    env_examples: dict[str, str] = field(default_factory=dict)
    root: Path | None = None
    other: dict[str, str] = field(default_factory=dict)
    """Env files (.env) a compose file may name, and anything else read on demand."""

    def read(self, path: str) -> str | None:
        for table in (self.dockerfiles, self.env_examples, self.other, self.composes):
            if path in table:
                return table[path]
        return None


def detect_starts(root: Path, declared: StartCandidate | None = None) -> tuple[list[StartCandidate], list[EnvNeed]]:
    """The ways `root` says it starts, best first (at most MAX_CANDIDATES, no command twice), and the variables its
    code reads at start. `declared` is viva.toml's start, when the manifest gives one."""
    files = gather(root)
    found: list[StartCandidate] = [declared] if declared is not None else []
    found += _packaged(files)
    found += _through_scripts(_documented(files), _scripts(files))
    found += _inferred(files)
    order = list(TIERS)
    ranked = sorted(enumerate(found), key=lambda item: (order.index(item[1].tier), item[0]))
    unique: dict[tuple[str, str], StartCandidate] = {}
    for _, candidate in ranked:
        if " ".join(candidate.command.split()) in NOT_STARTS:
            continue
        key = (" ".join(candidate.command.split()), candidate.workdir)
        kept = unique.get(key)
        if kept is None:
            unique[key] = candidate
        elif kept.port is None and candidate.port is not None:
            # The README says `python -m bot`; the code it runs says which port: keep the better-sourced command
            # with the port the code gives.
            unique[key] = msgspec.structs.replace(kept, port=candidate.port, port_source=candidate.port_source)
    located = [_locate_script(start, files) for start in unique.values()]
    return located[:MAX_CANDIDATES], _safely(list[EnvNeed](), env.env_needs, files.python, files.env_examples)


SCRIPT_RUN = re.compile(r"^(python3?|streamlit run|chainlit run|fastapi dev|fastapi run) ([\w./-]+\.py)\b")


def _locate_script(start: StartCandidate, files: RepoFiles) -> StartCandidate:
    """`python chat.py` in a README at the root, where chat.py lives only in rag/: run it where it is, as a
    reader would (the README assumed a `cd` it did not write). Only when exactly one such file exists; its setup
    steps (`python indexing.py` beside it) move with it."""
    match = SCRIPT_RUN.match(start.command)
    if match is None or files.root is None or (files.root / start.workdir / match.group(2)).is_file():
        return start
    name = match.group(2).rsplit("/", 1)[-1]
    places = [path for path in files.python if path.rsplit("/", 1)[-1] == name]
    if len(places) != 1:
        return start
    directory = places[0].rpartition("/")[0]
    return msgspec.structs.replace(
        start,
        command=start.command.replace(match.group(2), name, 1),
        workdir=directory,
        notes=[*start.notes, f"{match.group(2)} is at {places[0]}: run from {directory or 'the root'}"],
    )


def gather(root: Path) -> RepoFiles:
    """Read the files that can say how the app starts; never follows symlinks, skips vendored trees."""
    files = RepoFiles(root=root)
    seen = 0
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(name for name in subdirectories if name not in SKIP_DIRS)
        for name in sorted(names):
            seen += 1
            if seen > MAX_FILES:
                return files
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            table = _table_for(files, relative, name)
            if table is None or path.is_symlink():
                continue
            text = _read(path)
            if text is None:
                continue
            if table is files.python and len(files.python) >= MAX_PYTHON_FILES:
                continue  # every module counts: where the app's imports resolve decides where it runs from
            table[relative] = text
    return files


def _table_for(files: RepoFiles, relative: str, name: str) -> dict[str, str] | None:
    lower = name.lower()
    if lower == "dockerfile" or lower.startswith("dockerfile.") or lower.endswith(".dockerfile"):
        return files.dockerfiles
    if lower in {"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"} or (
        lower.startswith(("docker-compose.", "compose.")) and lower.endswith((".yml", ".yaml"))
    ):
        return files.composes
    if lower in {"makefile", "gnumakefile"}:
        return files.makefiles
    if lower == "procfile":
        return files.procfiles
    if lower.endswith((".md", ".rst")) and (lower.startswith("readme") or relative.lower().startswith("docs/")):
        return files.markdown
    if (relative.startswith(".github/workflows/") and lower.endswith((".yml", ".yaml"))) or lower == ".gitlab-ci.yml":
        return files.workflows
    if lower == "pyproject.toml":
        return files.pyprojects
    if lower.endswith(".py"):
        return files.python
    if lower in ENV_EXAMPLES:
        return files.env_examples
    if lower == ".env":
        return files.other
    return None


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", errors="replace")


def _readme_pointed(files: RepoFiles) -> tuple[set[str], set[str]]:
    """(Dockerfiles, compose files) the README and docs name in their docker commands: `docker build -f
    deploy/Dockerfile .`, `docker build -t qa service/`, `docker compose -f compose.prod.yaml up`."""
    dockerfiles: set[str] = set()
    composes: set[str] = set()
    for text in files.markdown.values():
        for line in DOCKER_COMMAND.findall(text):
            words = line.split()
            named = [words[i + 1] for i, word in enumerate(words[:-1]) if word in {"-f", "--file"}]
            if "build" in words and "compose" not in words:
                context = next((word for word in reversed(words) if not word.startswith("-") and word != "build"), ".")
                dockerfiles |= {posixpath.normpath(name) for name in named}
                if not named:
                    dockerfiles.add(posixpath.normpath(f"{context}/Dockerfile"))
            else:
                composes |= {posixpath.normpath(name) for name in named}
    return dockerfiles, composes


def _packaged(files: RepoFiles) -> list[StartCandidate]:
    found: list[StartCandidate] = []
    pointed, others = _compose_dockerfiles(files)
    readme_dockerfiles, readme_composes = _readme_pointed(files)
    composes = sorted(
        files.composes.items(), key=lambda item: (item[0] not in readme_composes, item[0].count("/"), item[0])
    )
    for path, text in composes:
        parsed = _safely(None, compose.parse_compose, path, text)
        if parsed is not None:
            start = _safely(None, compose.compose_start, parsed, files.read)
            if start is not None:
                found.append(start)
    ordered = sorted(
        (path for path in files.dockerfiles if path not in others),
        key=lambda path: (path not in readme_dockerfiles, path not in pointed, path.count("/"), path),
    )
    for path in ordered:
        parsed_file = _safely(None, dockerfile.parse_dockerfile, path, files.dockerfiles[path])
        if parsed_file is None:
            continue
        context = path.rsplit("/", 1)[0] if "/" in path else ""
        start = _safely(None, dockerfile.dockerfile_start, parsed_file, context=context)
        if start is not None and context and not _is_dir(files, start.workdir):
            # `backend/Dockerfile` built from the repository root (`docker build -f backend/Dockerfile .`): its
            # COPY paths are the root's, not its own directory's.
            from_root = _safely(None, dockerfile.dockerfile_start, parsed_file, context="")
            if from_root is not None and _is_dir(files, from_root.workdir):
                start = msgspec.structs.replace(from_root, notes=[*from_root.notes, "built from the repository root"])
        if start is not None:
            found.append(start)
    for path, text in files.procfiles.items():
        found += _safely(NONE_FOUND, documented.procfile_starts, path, text)
    return found


def _is_dir(files: RepoFiles, relative: str) -> bool:
    return files.root is None or (files.root / relative).is_dir()


def _compose_dockerfiles(files: RepoFiles) -> tuple[set[str], set[str]]:
    """(Dockerfiles a compose file builds its app service from: tried first; those it builds other services from —
    a frontend, a loader, a model puller — which are not the app and are not tried)."""
    app_files: set[str] = set()
    other_files: set[str] = set()
    for path, text in files.composes.items():
        parsed = _safely(None, compose.parse_compose, path, text)
        if parsed is None:
            continue
        app = _safely(None, compose.app_service, parsed)
        for service in parsed.services:
            if service.build_context is None:
                continue
            context = service.build_context.strip("/")
            name = service.dockerfile or "Dockerfile"
            built = posixpath.normpath(f"{context}/{name}") if context else name
            (app_files if app is not None and service.name == app.name else other_files).add(built)
    return app_files, other_files - app_files


def _documented(files: RepoFiles) -> list[StartCandidate]:
    found: list[StartCandidate] = []
    targets: dict[str, StartCandidate] = {}
    for path, text in sorted(files.makefiles.items(), key=lambda item: (item[0].count("/"), item[0])):
        for start in _safely(NONE_FOUND, documented.makefile_starts, path, text):
            targets.setdefault(start.source.removeprefix("Makefile target "), start)
    readmes = sorted(files.markdown, key=lambda path: (not path.lower().startswith("readme"), path.count("/"), path))
    for path in readmes:
        for start in _safely(NONE_FOUND, documented.markdown_starts, path, files.markdown[path]):
            found.append(_through_makefile(start, targets))
    found += targets.values()
    for path, text in sorted(files.workflows.items()):
        found += _safely(NONE_FOUND, documented.ci_starts, path, text)
    return found


def _through_makefile(start: StartCandidate, targets: dict[str, StartCandidate]) -> StartCandidate:
    """A README's `make run` is the Makefile's target `run`: its recipe, where the README says to run it (the
    sandbox has no `make`, and the recipe is what the README means)."""
    words = start.command.split()
    if len(words) == 2 and words[0] == "make" and words[1] in targets:
        target = targets[words[1]]
        return msgspec.structs.replace(target, notes=[*target.notes, f"`{start.command}` at {start.evidence.location}"])
    return start


def _through_scripts(found: list[StartCandidate], scripts: list[StartCandidate]) -> list[StartCandidate]:
    """A README's `poetry run serve` / `uv run serve` names the pyproject script `serve`, which the sandbox does
    not install as a command: start it the way the script's entry point says, where the README says so."""
    by_name = {start.source.removeprefix("pyproject script "): start for start in scripts}
    replaced = []
    for start in found:
        words = start.command.split()
        script = None
        if len(words) == 3 and words[0] in {"poetry", "uv", "pdm", "hatch", "rye"} and words[1] == "run":
            script = by_name.get(words[2])
        if script is None:
            replaced.append(start)
            continue
        replaced.append(
            msgspec.structs.replace(
                start,
                command=script.command,
                workdir=script.workdir,
                port=script.port or start.port,
                port_source=script.port_source or start.port_source,
                notes=[*start.notes, f"`{start.command}` runs the pyproject script {words[2]}"],
            )
        )
    return replaced


def _scripts(files: RepoFiles) -> list[StartCandidate]:
    found: list[StartCandidate] = []
    for path, text in sorted(files.pyprojects.items(), key=lambda item: (item[0].count("/"), item[0])):
        found += _safely(NONE_FOUND, inferred.pyproject_starts, path, text, files.python)
    return found


UI_SCRIPT_NAMES = ("streamlit_app.py", "app.py", "main.py", "Home.py", "home.py", "ui.py", "chat.py")


def _streamlit_scripts(files: RepoFiles) -> list[StartCandidate]:
    """A Streamlit app is a script that imports streamlit and is run with `streamlit run` (Streamlit Community
    Cloud's convention: streamlit_app.py): usual entry names first, shallow before deep, at most two."""
    found = []
    for path, text in files.python.items():
        if "tests/" in path or path.rsplit("/", 1)[-1].startswith("test_"):
            continue
        line = next((n for n, row in enumerate(text.splitlines(), 1) if re.match(r"\s*import streamlit\b", row)), 0)
        if not line:
            continue
        directory, _, name = path.rpartition("/")
        rank = (
            name not in UI_SCRIPT_NAMES,
            path.count("/"),
            UI_SCRIPT_NAMES.index(name) if name in UI_SCRIPT_NAMES else 99,
        )
        excerpt = text.splitlines()[line - 1].strip()
        start = StartCandidate(
            tier="inferred",
            source="Streamlit script",
            command=f"streamlit run {name} --server.port 8501 --server.headless true",
            evidence=Evidence(path, line, excerpt),
            workdir=directory,
            port=8501,
            port_source="the framework's default",
            notes=[documented.UI_NOTE],
        )
        found.append((rank, path, start))
    return [start for _, _, start in sorted(found)[:2]]


def _inferred(files: RepoFiles) -> list[StartCandidate]:
    found = _scripts(files)
    found += _safely(NONE_FOUND, _streamlit_scripts, files)
    found += _safely(NONE_FOUND, inferred.module_main_starts, files.python)
    found += _safely(NONE_FOUND, inferred.app_object_starts, files.python)
    return found


def _safely(fallback: T, build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`build(*args, **kwargs)`; a parser's crash on a hostile file costs that file's candidates, never the
    grading."""
    try:
        return build(*args, **kwargs)
    except Exception:
        return fallback


def declared_start(manifest_start: Evidence | None, app: dict[str, object] | None) -> StartCandidate | None:
    """viva.toml's [app] as the declared start (its port, workdir, env and setup as the candidate wrote them)."""
    if manifest_start is None or app is None:
        return None
    port = app.get("port")
    env_table = app.get("env")
    setup = app.get("setup")
    return StartCandidate(
        tier="declared",
        source="viva.toml",
        command=str(app.get("start", manifest_start.excerpt)),
        evidence=manifest_start,
        workdir=str(app.get("workdir") or ""),
        port=port if isinstance(port, int) else 8000,
        port_source="viva.toml",
        env={str(key): str(value) for key, value in env_table.items()} if isinstance(env_table, dict) else {},
        setup=[str(step) for step in setup] if isinstance(setup, list) else [],
    )
