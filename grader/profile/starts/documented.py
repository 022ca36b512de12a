"""Start commands a repository writes down: a Procfile, Makefile targets, README and docs code, CI steps.

Every command is read as text, never run. A line is split the way `sh` would split it (quotes, `&&`, `;`, `&`,
redirections); each simple command in it is then classified: it serves (or serves a UI), it is a setup step
(ingest, index, migrate), a dependency step Viva does itself (pip install), a container command (followed through
the Dockerfile or compose file instead), or something else. A `cd` moves where the following commands run;
`export` and `VAR=value` prefixes give them environment.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import yaml

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.starts.inferred import PYTHON_PROGRAM, RUN_WRAPPERS, SERVER_PROGRAMS, framework_port

Kind = Literal["serve", "ui", "setup", "dependency", "container", "other"]

MAX_EXCERPT = 200
MAX_LINE = 4000
"""Longer lines are not commands anyone types; skipping them keeps every scan linear."""
MAX_YAML_BYTES = 1_000_000
MAX_PER_FILE = 50
"""A file that documents more starts than this is not documenting how it starts; reading stops there."""
UI_NOTE = "a UI, not an HTTP API"
CONTAINER_NOTE = "a container start, followed through the Dockerfile or compose file instead"

# --- splitting a line the way sh does ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    value: str
    """The word with its quotes removed."""
    start: int
    end: int
    """Where it is in the line, so a command can be cut out of the line as the author wrote it."""


@dataclass(frozen=True)
class _Simple:
    """One simple command: its words (redirections dropped) and whether a `&` sends it to the background."""

    words: list[_Word]
    background: bool


def _simple_commands(line: str) -> list[_Simple]:
    commands: list[_Simple] = []
    words: list[_Word] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char.isspace():
            index += 1
        elif char == "#":
            break
        elif char in "<>" or line.startswith("&>", index):
            if words and words[-1].end == index and words[-1].value.isdigit():
                words.pop()  # the `2` of `2>&1`
            index = _skip_redirection(line, index)
        elif char in ";&|":
            operator = line[index : index + 2] if line[index : index + 2] in {"&&", "||"} else char
            if words:
                commands.append(_Simple(words, operator == "&"))
            words = []
            index += len(operator)
        else:
            value, end = _read_word(line, index)
            words.append(_Word(value, index, end))
            index = end
    if words:
        commands.append(_Simple(words, False))
    return commands


def _skip_redirection(line: str, index: int) -> int:
    """The index after `> file`, `>> file`, `2>&1`, `&> file`, `< file`."""
    index += 1 if line[index] != "&" else 2
    while index < len(line) and line[index] in "<>":
        index += 1
    if line.startswith("&", index):  # `>&2`: a descriptor, not a file
        index += 1
        while index < len(line) and (line[index].isdigit() or line[index] == "-"):
            index += 1
        return index
    while index < len(line) and line[index].isspace():
        index += 1
    return _read_word(line, index)[1]


def _read_word(line: str, index: int) -> tuple[str, int]:
    value: list[str] = []
    while index < len(line) and not line[index].isspace() and line[index] not in ";&|<>":
        char = line[index]
        if char == "'":
            close = line.find("'", index + 1)
            close = len(line) if close < 0 else close
            value.append(line[index + 1 : close])
            index = close + 1
        elif char == '"':
            text, index = _double_quoted(line, index + 1)
            value.append(text)
        elif char == "\\" and index + 1 < len(line):
            value.append(line[index + 1])
            index += 2
        elif line.startswith("$(", index):
            close = _closing_paren(line, index + 1)
            value.append(line[index : close + 1])
            index = close + 1
        else:
            value.append(char)
            index += 1
    return "".join(value), index


def _double_quoted(line: str, index: int) -> tuple[str, int]:
    value: list[str] = []
    while index < len(line) and line[index] != '"':
        if line[index] == "\\" and index + 1 < len(line) and line[index + 1] in '"\\$`':
            index += 1
        value.append(line[index])
        index += 1
    return "".join(value), index + 1


def _closing_paren(line: str, index: int) -> int:
    depth = 0
    for position in range(index, len(line)):
        depth += {"(": 1, ")": -1}.get(line[position], 0)
        if depth == 0:
            return position
    return len(line) - 1


# --- reading commands ----------------------------------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_VENV_BIN = re.compile(r"^(?:\./)?(?:[\w.-]*/)*\.?v?env[\w.-]*/bin/([\w.-]+)$")
_PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.|…|\byour[-_ ]|xxx|changeme|replace[-_ ]?me|_here\b", re.I)
_WRAPPER_OPTIONS_WITH_VALUE = {"--env-file", "--with", "--python", "-p", "--extra", "--group", "--package", "-e"}
_PREFIXES = {"nohup", "exec", "time", "command"}


@dataclass
class _Shell:
    """What the lines read so far have set: the directory (repository-relative) and exported variables."""

    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    clones: set[str] = field(default_factory=set)
    """Directory names `git clone` made: `cd` into one is entering the repository itself."""
    outside: bool = False
    """A `cd` left the repository: what runs there cannot be replayed."""

    def cd(self, target: str) -> None:
        if not target or target.startswith(("~", "$", "/", "-")):
            return  # home, a variable, an absolute path: nothing Viva can follow
        head, _, tail = target.partition("/")
        if head in self.clones:
            target = tail or "."
        joined = posixpath.normpath(posixpath.join(self.cwd or ".", target))
        if joined == ".." or joined.startswith("../"):
            self.outside = True
        else:
            self.cwd = "" if joined == "." else joined


@dataclass(frozen=True)
class _Step:
    """A simple command, read: what kind it is, the command to run (wrappers and prefixes gone), where, with what."""

    kind: Kind
    command: str
    cwd: str
    env: dict[str, str]
    notes: tuple[str, ...] = ()
    background: bool = False


def _read_line(line: str, shell: _Shell) -> list[_Step]:
    """The steps one command line runs, updating `shell` with its `cd`s and exports."""
    if len(line) > MAX_LINE:
        return []
    steps = []
    for simple in _simple_commands(line):
        step = _read_simple(line, simple, shell)
        if step is not None and not shell.outside:
            steps.append(step)
    return steps


def _read_simple(line: str, simple: _Simple, shell: _Shell) -> _Step | None:
    words = [word.value for word in simple.words]
    index = 0
    while index < len(words) and words[index] in _PREFIXES:
        index += 1
    head = words[index] if index < len(words) else ""
    if head in {"cd", "pushd"}:
        shell.cd(words[index + 1] if index + 1 < len(words) else "")
        return None
    if head == "export":
        shell.env |= _assignments(words[index + 1 :])
        return None
    if head in {"source", ".", ""}:
        return None
    if head == "git" and words[index + 1 : index + 2] == ["clone"]:
        shell.clones.add(_clone_directory(words[index + 2 :]))
        return None
    if head == "env":
        index += 1
    prefix_env: dict[str, str] = {}
    while index < len(words) and _ASSIGNMENT.match(words[index]):
        prefix_env |= _assignments(words[index : index + 1])
        index += 1
    if index >= len(words):
        shell.env |= prefix_env  # `OPENAI_API_KEY=…` alone on a line: the docs mean "set this"
        return None
    return _step(line, simple, index, shell, prefix_env)


def _step(line: str, simple: _Simple, index: int, shell: _Shell, prefix_env: dict[str, str]) -> _Step | None:
    words = [word.value for word in simple.words]
    notes: list[str] = []
    if words[index] in RUN_WRAPPERS and words[index + 1 : index + 2] == ["run"]:
        notes.append(f"`{words[index]} run` dropped: the sandbox has the dependencies installed already")
        index += 2
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in _WRAPPER_OPTIONS_WITH_VALUE else 1
        if index >= len(words):
            return None
    program = line[simple.words[index].start : simple.words[index].end]
    venv = _VENV_BIN.match(words[index])
    if venv:
        notes.append(f"`{words[index]}` run as `{venv[1]}`: the sandbox has no project virtualenv")
        program = venv[1]
    command = program + line[simple.words[index].end : simple.words[-1].end]
    env, placeholders = _usable_env({**shell.env, **prefix_env})
    notes += [f"{name} left to Viva's environment: the docs give a placeholder" for name in placeholders]
    kind = _kind([venv[1] if venv else words[index], *words[index + 1 :]])
    if kind == "ui":
        notes.append(UI_NOTE)
    return _Step(kind, command, shell.cwd, env, tuple(notes), simple.background)


def _assignments(words: list[str]) -> dict[str, str]:
    return {match[1]: match[2] for word in words if (match := _ASSIGNMENT.match(word))}


def _usable_env(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The variables with real values, and the names whose value is a placeholder ("sk-...", "<your key>")."""
    placeholders = [name for name, value in env.items() if not value or _PLACEHOLDER.search(value)]
    return {name: value for name, value in env.items() if name not in placeholders}, placeholders


def _clone_directory(args: list[str]) -> str:
    positional = [arg for arg in args if not arg.startswith("-")]
    if len(positional) > 1:
        return positional[1]
    url = positional[0] if positional else ""
    return url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")


# --- what a command does -------------------------------------------------------------------------------------------

_CONTAINER_PROGRAMS = {"docker", "docker-compose", "podman", "podman-compose", "nerdctl"}
_DEPENDENCY_PROGRAMS = {"pip", "pip3", "pipx", "poetry", "pipenv", "pdm", "uv", "conda", "mamba", "micromamba",
                        "virtualenv", "pyenv", "brew", "apt", "apt-get", "npm", "yarn", "pnpm", "rye"}  # fmt: skip
_RUN_CLIS = {"flask", "quart", "litestar"}
_UI_CLIS = {"streamlit", "chainlit"}
_PYTHON_DEPENDENCY_MODULES = {"pip", "venv", "virtualenv", "ensurepip", "pipx", "poetry", "uv"}
_PYTHON_TOOL_MODULES = {"pytest", "unittest", "http", "doctest", "mypy", "ruff", "black", "isort", "pylint",
                        "flake8", "build", "twine", "spacy", "nltk", "json", "timeit", "pdb", "jupyter",
                        "notebook", "coverage", "pre_commit", "ipykernel", "webbrowser"}  # fmt: skip
_SERVE_TARGETS = {"run", "serve", "start", "dev"}
_DEPENDENCY_TARGETS = {"install", "setup", "venv", "deps", "dependencies", "requirements", "bootstrap", "env"}
_NOT_SERVING_WORDS = (
    "test",
    "eval",
    "bench",
    "lint",
    "cli",
    "query",
    "ask",
    "check",
    "export",
    "backup",
    "sync",
    "report",
)
"""A script named so is a one-off that is not needed to serve."""
_SETUP_WORDS = ("ingest", "index", "reindex", "embed", "seed", "migrat", "load", "download", "fetch", "scrap",
                "crawl", "prep", "preprocess", "populat", "setup", "init", "train", "finetune", "upload",
                "build", "generat", "convert", "import", "vectori", "chunk")  # fmt: skip
"""A script named so prepares data (or a model) the service then serves."""
_DJANGO_SETUP = {"migrate", "loaddata", "collectstatic", "createcachetable"}


def _kind(words: list[str]) -> Kind:
    program, args = posixpath.basename(words[0]), words[1:]
    if program in _CONTAINER_PROGRAMS:
        return "container"
    if PYTHON_PROGRAM.match(program):
        return _python_kind(args)
    return _tool_kind(program, args)


def _tool_kind(program: str, args: list[str]) -> Kind:
    """What a tool's command does; the same whether run directly or as `python -m tool`."""
    if program in SERVER_PROGRAMS:
        return "serve"
    if program == "fastapi":
        return "serve" if args[:1] in (["run"], ["dev"]) else "other"
    if program in _RUN_CLIS:
        if "run" in args:
            return "serve"
        return "setup" if _one_off(" ".join(a for a in args if not a.startswith("-"))) == "setup" else "other"
    if program in _UI_CLIS:
        return "ui" if args[:1] == ["run"] else "other"
    if program == "gradio":
        return "ui" if args else "other"
    if program == "make":
        return _make_kind(args)
    if program == "alembic":
        return "setup" if "upgrade" in args else "other"
    if program in _DEPENDENCY_PROGRAMS:
        return "dependency"
    return "other"


def _python_kind(args: list[str]) -> Kind:
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] not in {"-m", "-c"}:
        index += 2 if args[index] in {"-X", "-W"} else 1
    args = args[index:]
    if not args or args[0] == "-c":
        return "other"
    if args[0] == "-m":
        return _python_module_kind(args[1], args[2:]) if len(args) > 1 else "other"
    if not args[0].endswith(".py"):
        return "other"
    name = posixpath.basename(args[0]).removesuffix(".py")
    if name == "manage":
        return _django_kind(args[1:])
    if name == "setup" and args[1:2] and args[1] in {"install", "develop", "build", "sdist", "bdist_wheel"}:
        return "dependency"
    return _script_kind(name, args[1:])


def _python_module_kind(module: str, args: list[str]) -> Kind:
    top = module.split(".", maxsplit=1)[0]
    if top in _PYTHON_DEPENDENCY_MODULES:
        return "dependency"
    as_tool = _tool_kind(module, args)
    if as_tool != "other" or top in _PYTHON_TOOL_MODULES:
        return as_tool
    return _script_kind(module.rsplit(".", 1)[-1], args)


def _script_kind(name: str, args: list[str]) -> Kind:
    """A script serves unless its name, or its first subcommand (`python main.py ingest`), says it is a one-off."""
    first = next((arg for arg in args if not arg.startswith("-")), "")
    for said in (name, first if re.match(r"^[a-z][\w-]*$", first) else ""):
        kind = _one_off(said)
        if kind is not None:
            return kind
    return "serve"


def _one_off(name: str) -> Kind | None:
    words = [word for word in re.split(r"[\s_.-]+", name.lower()) if word]
    if any(word.startswith(_NOT_SERVING_WORDS) for word in words):
        return "other"
    if any(word.startswith(_SETUP_WORDS) for word in words):
        return "setup"
    return None


def _django_kind(args: list[str]) -> Kind:
    command = args[0] if args else ""
    if command == "runserver":
        return "serve"
    if command in _DJANGO_SETUP or _one_off(command) == "setup":
        return "setup"
    return "other"


def _make_kind(args: list[str]) -> Kind:
    targets = [arg for arg in _make_arguments(args) if "=" not in arg]
    target = targets[0] if targets else ""
    if target in _SERVE_TARGETS:
        return "serve"
    if target in _DEPENDENCY_TARGETS:
        return "dependency"
    return "setup" if _one_off(target) == "setup" else "other"


def _make_arguments(args: list[str]) -> list[str]:
    """The targets and assignments of a make command line, its options (and their values) dropped."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in {"-C", "-f", "--directory", "--file", "-I", "-j"}:
            skip = True
        elif not arg.startswith("-"):
            kept.append(arg)
    return kept


# --- candidates ----------------------------------------------------------------------------------------------------


def _evidence(path: str, line: int | None, text: str) -> Evidence:
    return Evidence(path, line, text.strip()[:MAX_EXCERPT])


def _candidate(
    step: _Step, *, tier: Literal["packaged", "documented"], source: str, evidence: Evidence, setup: list[_Step]
) -> StartCandidate:
    port, port_source = framework_port(step.command)
    return StartCandidate(
        tier=tier,
        source=source,
        command=step.command,
        evidence=evidence,
        workdir=step.cwd,
        port=port,
        port_source=port_source,
        env=step.env,
        setup=_setup_commands(setup, step.cwd, step.env),
        notes=list(dict.fromkeys(step.notes)),
    )


def _setup_commands(steps: list[_Step], workdir: str, env: dict[str, str]) -> list[str]:
    """Each setup step as a command run from `workdir` with `env`: a `cd` first when it ran elsewhere, the
    variables it had that the start does not have prefixed."""
    commands: list[str] = []
    for step in steps:
        command = step.command
        own = {name: value for name, value in step.env.items() if env.get(name) != value}
        own_env = " ".join(f"{name}={shlex.quote(value)}" for name, value in own.items())
        command = f"{own_env} {command}" if own_env else command
        if step.cwd != workdir:
            command = f"cd {shlex.quote(posixpath.relpath(step.cwd or '.', workdir or '.'))} && {command}"
        commands.append(command)
    return list(dict.fromkeys(commands))


def _unique(candidates: list[StartCandidate]) -> list[StartCandidate]:
    seen: set[tuple[str, str]] = set()
    kept: list[StartCandidate] = []
    for candidate in candidates:
        key = (candidate.workdir, " ".join(candidate.command.split()))
        if key not in seen:
            seen.add(key)
            kept.append(candidate)
    return kept


def _with_notes(candidates: list[StartCandidate], notes: list[str]) -> list[StartCandidate]:
    """File-level notes (a container start the file also gives) added to each candidate the file gave."""
    if not notes:
        return candidates
    return [
        msgspec.structs.replace(candidate, notes=list(dict.fromkeys([*candidate.notes, *notes])))
        for candidate in candidates
    ]


def _logical_lines(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    """(line number, the line with backslash continuations joined, the first physical line)."""
    index = 0
    while index < len(lines):
        number, first = lines[index]
        joined = first
        while joined.rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            joined = joined.rstrip()[:-1].rstrip() + " " + lines[index][1].strip()
        yield number, joined, first
        index += 1


# --- Procfile ------------------------------------------------------------------------------------------------------

_PROCESS = re.compile(r"^([A-Za-z0-9_.-]+)\s*:\s*(\S.*)$")


def procfile_starts(path: str, text: str) -> list[StartCandidate]:
    """The `web:` process first, then others that serve; a `release:` process's commands become setup."""
    base = posixpath.dirname(path)
    processes = [
        (number, match[1], match[2])
        for number, line in enumerate(text.splitlines(), start=1)
        if (match := _PROCESS.match(line.strip()))
    ]
    release = [
        step
        for _, name, command in processes
        if name == "release"
        for step in _read_line(command, _Shell(base))
        if step.kind not in {"dependency", "container"}
    ]
    found: list[StartCandidate] = []
    for number, name, command in sorted(processes, key=lambda process: process[1] != "web"):
        if name == "release":
            continue
        steps = [step for step in _read_line(command, _Shell(base)) if step.kind not in {"dependency", "container"}]
        serving = [index for index, step in enumerate(steps) if step.kind in {"serve", "ui"}]
        if not serving and not (name == "web" and steps):
            continue  # a worker, a clock: not the service
        last = serving[-1] if serving else len(steps) - 1
        setup = release + [step for step in steps[:last] if step.kind == "setup"]
        evidence = _evidence(path, number, f"{name}: {command}")
        found.append(_candidate(steps[last], tier="packaged", source="Procfile", evidence=evidence, setup=setup))
    return _unique(found)


# --- Makefile ------------------------------------------------------------------------------------------------------

_MAKE_ASSIGNMENT = re.compile(r"^(?:(export|override)\s+)*([A-Za-z_][\w.-]*)\s*(:::=|::=|:=|\?=|\+=|!=|=)\s*(.*)$")
_MAKE_RULE = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)\s*(.*)$")
_MAKE_REFERENCE = re.compile(r"\$(?:\(([^()$]*)\)|\{([^{}$]*)\}|(@))")
_MAKE_DIRECTIVES = ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "include", "-include", "sinclude", "vpath",
                    "unexport", "$(")  # fmt: skip
_DOLLAR = "\x00"
"""Stands for a `$` that make passes to sh unexpanded, while make's own references are expanded."""
_PREFERRED_TARGETS = ("run", "serve", "start", "dev", "api", "server", "up")


@dataclass
class _Rule:
    prerequisites: list[str] = field(default_factory=list)
    recipe: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Makefile:
    variables: dict[str, str] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)
    rules: dict[str, _Rule] = field(default_factory=dict)
    one_shell: bool = False
    """`.ONESHELL:` — a recipe's lines share one shell, so a `cd` carries over."""

    def assign(self, name: str, operator: str, value: str) -> None:
        value = value.replace("$$", _DOLLAR)
        if operator == "?=" and name in self.variables:
            return
        if operator == "+=" and name in self.variables:
            value = f"{self.variables[name]} {value}"
        if operator != "!=":  # `!=` runs a shell command at parse time: Viva does not
            self.variables[name] = value

    def expand(self, text: str, target: str) -> str:
        text = text.replace("$$", _DOLLAR)
        for _ in range(10):
            expanded = _MAKE_REFERENCE.sub(lambda match: self._reference(match, target), text)
            if expanded == text or len(expanded) > MAX_LINE:
                break
            text = expanded
        return text.replace(_DOLLAR, "$")

    def _reference(self, match: re.Match[str], target: str) -> str:
        if match[3]:
            return target
        name = (match[1] if match[1] is not None else match[2]).strip()
        if name == "MAKE":
            return "make"
        if name.startswith("shell "):
            return f"{_DOLLAR}({name[6:]})"
        if name in self.variables:
            return self.variables[name]
        if re.match(r"^[A-Za-z_]\w*$", name):
            return f"{_DOLLAR}{{{name}}}"  # not set here: make would take it from the environment, and so will sh
        return f"{_DOLLAR}({name})"  # a make function Viva does not evaluate


@dataclass(frozen=True)
class _RecipeLine:
    number: int
    raw: str
    command: str
    """Expanded, with the `@`/`-`/`+` prefixes gone."""
    target: str


def makefile_starts(path: str, text: str) -> list[StartCandidate]:
    """Targets run/serve/start/dev/api/server/up, in that preference, whose recipe serves."""
    makefile = _parse_makefile(text)
    base = posixpath.dirname(path)
    notes: list[str] = []
    found: list[StartCandidate] = []
    for name in _PREFERRED_TARGETS:
        if name in makefile.rules:
            candidate = _target_start(path, base, makefile, name, notes)
            if candidate is not None:
                found.append(candidate)
    return _with_notes(_unique(found), notes)


def _parse_makefile(text: str) -> _Makefile:
    makefile = _Makefile()
    current: list[str] = []
    in_define = False
    for number, line, _ in _logical_lines(list(enumerate(text.splitlines(), start=1))):
        if len(line) > MAX_LINE:
            continue
        stripped = line.strip()
        if in_define:
            in_define = stripped != "endef"
        elif line.startswith("\t"):
            if current and stripped and not stripped.startswith("#"):
                for target in current:
                    makefile.rules[target].recipe.append((number, line[1:]))
        elif not stripped or stripped.startswith("#"):
            continue
        elif stripped.startswith("define "):
            in_define, current = True, []
        elif stripped.startswith(_MAKE_DIRECTIVES):
            continue
        else:
            current = _make_statement(makefile, stripped, number, current)
    return makefile


def _make_statement(makefile: _Makefile, stripped: str, number: int, current: list[str]) -> list[str]:
    """Read an assignment or a rule line; the targets recipe lines that follow belong to."""
    assignment = _MAKE_ASSIGNMENT.match(stripped)
    if assignment:
        makefile.assign(assignment[2], assignment[3], assignment[4].strip())
        if assignment[1] and "export" in stripped.split()[:2]:
            makefile.exported.add(assignment[2])
        return []
    if stripped.startswith("export "):
        makefile.exported |= set(stripped.split()[1:])
        return []
    rule = _MAKE_RULE.match(stripped)
    if rule is None:
        return []
    targets = rule[1].split()
    prerequisites, _, inline = rule[2].partition(";")
    if ".ONESHELL" in targets:
        makefile.one_shell = True
    if "=" in prerequisites:
        return current  # a target-specific variable, not a rule
    named = [target for target in targets if not target.startswith(".") and "%" not in target]
    for target in named:
        rule_of = makefile.rules.setdefault(target, _Rule())
        rule_of.prerequisites += prerequisites.split("|")[0].split()
        if inline.strip():
            rule_of.recipe.append((number, inline.strip()))
    return named


def _recipe_lines(makefile: _Makefile, name: str, visited: set[str]) -> list[_RecipeLine]:
    """The lines make runs for `name`: its prerequisites' recipes first, `$(MAKE) other` followed once."""
    rule = makefile.rules.get(name)
    if rule is None or name in visited or len(visited) > 50:
        return []
    visited.add(name)
    lines: list[_RecipeLine] = []
    for prerequisite in rule.prerequisites:
        lines += _recipe_lines(makefile, makefile.expand(prerequisite, name), visited)
    for number, raw in rule.recipe:
        command = makefile.expand(raw, name).strip().lstrip("@-+").strip()
        words = command.split()
        if words[:1] == ["make"] and _make_arguments(words[1:]):
            sub_targets = [arg for arg in _make_arguments(words[1:]) if "=" not in arg]
            if sub_targets and all(target in makefile.rules for target in sub_targets):
                for target in sub_targets:
                    lines += _recipe_lines(makefile, target, visited)
                continue
        lines.append(_RecipeLine(number, raw, command, name))
    return lines


def _target_start(path: str, base: str, makefile: _Makefile, name: str, notes: list[str]) -> StartCandidate | None:
    exported_names = makefile.exported & set(makefile.variables)
    exported = {key: makefile.expand(makefile.variables[key], name) for key in sorted(exported_names)}
    shell = _Shell(base, dict(exported))
    read: list[tuple[_RecipeLine, _Step]] = []
    for line in _recipe_lines(makefile, name, set()):
        if not makefile.one_shell:
            shell = _Shell(base, dict(exported))  # each recipe line runs in a shell of its own
        read += [(line, step) for step in _read_line(line.command, shell)]
    serving = [index for index, (_, step) in enumerate(read) if step.kind in {"serve", "ui"}]
    containers = [f"`{step.command}`" for _, step in read if step.kind == "container"]
    if not serving:
        if containers:
            notes.append(f"Makefile target {name} runs {', '.join(containers)}: {CONTAINER_NOTE}")
        return None
    last = serving[-1]
    line, step = read[last]
    setup = [earlier for recipe_line, earlier in read[:last] if _is_make_setup(recipe_line, earlier)]
    skipped = [
        f"Makefile target {recipe_line.target} runs `{earlier.command}`: Viva installs the dependencies itself"
        for recipe_line, earlier in read[:last]
        if earlier.kind == "dependency"
    ]
    if containers:
        skipped.append(f"the target also runs {', '.join(containers)} (companion containers are not started)")
    step = _Step(step.kind, step.command, step.cwd, step.env, (*step.notes, *skipped), step.background)
    evidence = _evidence(path, line.number, line.raw)
    return _candidate(step, tier="documented", source=f"Makefile target {name}", evidence=evidence, setup=setup)


def _is_make_setup(line: _RecipeLine, step: _Step) -> bool:
    """Setup by its command, or a prerequisite target named like setup (`index:` running `./scripts/index.sh`)."""
    if step.kind == "setup":
        return True
    return step.kind == "other" and _one_off(line.target) == "setup" and line.target not in _DEPENDENCY_TARGETS


# --- README and docs -----------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_PROMPT = re.compile(r"^\s*(?:\([\w.-]+\)\s*)?[$%>]\s+")
_INDENTED = re.compile(r"^(?: {4}|\t)")


@dataclass(frozen=True)
class _Block:
    """Lines that are code: a fenced or indented block, or one inline `code` span."""

    lines: list[tuple[int, str]]


def markdown_starts(path: str, text: str) -> list[StartCandidate]:
    """Commands in code (fenced, indented, inline) that start a web service or a UI, in the order written; a
    block's setup commands (ingest, migrate) that come before its serve command become that start's setup."""
    source = "README" if _is_readme(path) else "docs"
    # A README in a subdirectory documents that directory; other docs speak from the repository root.
    base = posixpath.dirname(path) if source == "README" else ""
    clones: set[str] = set()
    notes: list[str] = []
    found: list[StartCandidate] = []
    for block in _markdown_blocks(text):
        found += _block_starts(path, block, _Shell(base, clones=clones), source, notes)
        if len(found) >= MAX_PER_FILE:
            break
    return _with_notes(_unique(found), notes)


def _is_readme(path: str) -> bool:
    return posixpath.basename(path).lower().startswith("readme")


def _markdown_blocks(text: str) -> Iterator[_Block]:
    fence: str | None = None
    code: list[tuple[int, str]] = []
    indented: list[tuple[int, str]] = []
    after_blank = True
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                yield _Block(code)
                fence, code, after_blank = None, [], True
            else:
                code.append((number, line))
            continue
        opener = _FENCE.match(line)
        if indented and (opener or (line.strip() and not _INDENTED.match(line))):
            yield _Block(indented)
            indented = []
        if opener and not (opener[1][0] == "`" and "`" in opener[2]):
            fence = opener[1]
        elif indented or (after_blank and line.strip() and _INDENTED.match(line)):
            indented.append((number, line))
        elif len(line) <= MAX_LINE:
            yield from (_Block([(number, span)]) for span in _inline_spans(line))
        after_blank = not line.strip()
    if code or indented:
        yield _Block(code or indented)


def _inline_spans(line: str) -> Iterator[str]:
    """The `code` spans of a line: text between two backtick runs of the same length (found without a regex that
    could backtrack over a line of backticks)."""
    runs = [(match.start(), match.end()) for match in re.finditer(r"`+", line)]
    index = 0
    while index + 1 < len(runs):
        (_, opened), (closing, after) = runs[index], runs[index + 1]
        if after - closing == opened - runs[index][0]:
            if " " in line[opened:closing].strip():  # every serving command has an argument
                yield line[opened:closing]
            index += 2
        else:
            index += 1


def _block_starts(path: str, block: _Block, shell: _Shell, source: str, notes: list[str]) -> list[StartCandidate]:
    setup: list[_Step] = []
    found: list[StartCandidate] = []
    for number, line, first in _command_lines(block):
        if len(found) >= MAX_PER_FILE:
            break
        for step in _read_line(line, shell):
            if step.kind == "setup":
                setup.append(step)
            elif step.kind in {"serve", "ui"}:
                evidence = _evidence(path, number, first)
                found.append(_candidate(step, tier="documented", source=source, evidence=evidence, setup=setup))
            elif step.kind == "container":
                notes.append(f"{path}:{number} also gives `{step.command}`: {CONTAINER_NOTE}")
    return found


def _command_lines(block: _Block) -> Iterator[tuple[int, str, str]]:
    """A block's command lines, prompts stripped; when some lines carry a prompt, the others are output."""
    prompted = any(_PROMPT.match(line) for _, line in block.lines)
    lines: list[tuple[int, str]] = []
    continuing = False
    for number, line in block.lines:
        if prompted and not continuing and not _PROMPT.match(line):
            continue
        lines.append((number, _PROMPT.sub("", line, count=1) if not continuing else line))
        continuing = line.rstrip().endswith("\\")
    raw = dict(block.lines)
    for number, line, _ in _logical_lines(lines):
        yield number, line, raw[number]  # evidence shows the line as written, prompt and all


# --- CI workflows --------------------------------------------------------------------------------------------------

_EXPRESSION = "${{"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader is much faster, and refuses absurd nesting instead of recursing through it."""


def ci_starts(path: str, text: str) -> list[StartCandidate]:
    """Steps of a GitHub Actions workflow (or GitLab CI job) that start the service in the background (`… &`),
    usually to test it; the setup steps before them in the same job become setup."""
    if len(text) > MAX_YAML_BYTES:
        return []
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 — the safe loader, in C when libyaml is there
    except (yaml.YAMLError, RecursionError, MemoryError, ValueError, TypeError):
        return []
    if not isinstance(data, dict):
        return []
    finder = _LineFinder(text.splitlines())
    if posixpath.basename(path).lower().startswith(".gitlab-ci"):
        return _unique(_gitlab_starts(path, data, finder))
    return _unique(_actions_starts(path, data, finder))


class _LineFinder:
    """The line of the file a command came from, searched forward from the last one found (steps come in order)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.cursor = 0

    def find(self, command: str) -> tuple[int | None, str]:
        needle = command.strip()[:80]
        for index in itertools.chain(range(self.cursor, len(self.lines)), range(self.cursor)):
            if needle and needle in self.lines[index]:
                self.cursor = index
                return index + 1, self.lines[index]
        return None, command


@dataclass
class _Job:
    """What one CI job has run so far: setup steps, and where and with what its steps run."""

    path: str
    finder: _LineFinder
    env: dict[str, str]
    notes: list[str]
    setup: list[_Step] = field(default_factory=list)


def _actions_starts(path: str, data: dict[object, object], finder: _LineFinder) -> list[StartCandidate]:
    workflow_env, notes = _ci_env(data.get("env"))
    workflow_dir = _default_directory(data.get("defaults"))
    jobs = data.get("jobs")
    found: list[StartCandidate] = []
    for job in jobs.values() if isinstance(jobs, dict) else []:
        if len(found) >= MAX_PER_FILE:
            break
        if not isinstance(job, dict):
            continue
        job_env, job_notes = _ci_env(job.get("env"))
        directory = _default_directory(job.get("defaults")) or workflow_dir
        state = _Job(path, finder, {**workflow_env, **job_env}, notes + job_notes)
        steps = job.get("steps")
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                step_env, step_notes = _ci_env(step.get("env"))
                step_dir = _directory(step.get("working-directory"))
                env = {**state.env, **step_env}
                found += _script_starts(state, step["run"], step_dir or directory, env, step_notes)
    return found


def _gitlab_starts(path: str, data: dict[object, object], finder: _LineFinder) -> list[StartCandidate]:
    global_env, notes = _ci_env(data.get("variables"))
    default = data.get("default")
    before = data.get("before_script", default.get("before_script") if isinstance(default, dict) else None)
    found: list[StartCandidate] = []
    for name, job in data.items():
        if len(found) >= MAX_PER_FILE:
            break
        if not isinstance(job, dict) or "script" not in job or str(name).startswith("."):
            continue
        job_env, job_notes = _ci_env(job.get("variables"))
        state = _Job(path, finder, {**global_env, **job_env}, notes + job_notes)
        for item in [*_script_items(job.get("before_script", before)), *_script_items(job.get("script"))]:
            found += _script_starts(state, item, "", state.env, [])
    return found


def _script_items(script: object) -> list[str]:
    if isinstance(script, str):
        return [script]
    if not isinstance(script, list):
        return []
    items: list[str] = []
    for item in script[:1000]:
        nested = item if isinstance(item, list) else [item]  # a `- *anchor` of a list of commands
        items += [str(entry) for entry in nested[:1000] if isinstance(entry, str | int | float)]
    return items


def _script_starts(
    job: _Job, script: str, directory: str, env: dict[str, str], notes: list[str]
) -> list[StartCandidate]:
    shell = _Shell(directory, dict(env))
    found: list[StartCandidate] = []
    for _, line, first in _logical_lines(list(enumerate(script.splitlines(), start=1))):
        if len(found) >= MAX_PER_FILE:
            break
        for step in _read_line(line, shell):
            if step.kind == "setup":
                job.setup.append(step)
            elif step.kind in {"serve", "ui"} and step.background:
                number, text = job.finder.find(first)
                evidence = _evidence(job.path, number, text)
                started = _Step(step.kind, step.command, step.cwd, step.env, (*step.notes, *job.notes, *notes))
                found.append(
                    _candidate(started, tier="documented", source="CI step", evidence=evidence, setup=job.setup)
                )
    return found


def _ci_env(mapping: object) -> tuple[dict[str, str], list[str]]:
    """The variables a CI `env:` / `variables:` gives literally, and notes for those it computes (secrets)."""
    env: dict[str, str] = {}
    notes: list[str] = []
    for name, given in mapping.items() if isinstance(mapping, dict) else []:
        value = given.get("value") if isinstance(given, dict) else given  # GitLab's {value: …, description: …}
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float) or not re.match(r"^[A-Za-z_]\w*$", str(name)):
            continue
        if _EXPRESSION in str(value) or "$" in str(value):
            notes.append(f"{name} comes from the CI's own secrets or expressions; not replayed")
            continue
        env[str(name)] = str(value)
    return env, notes


def _default_directory(defaults: object) -> str:
    run = defaults.get("run") if isinstance(defaults, dict) else None
    return _directory(run.get("working-directory")) if isinstance(run, dict) else ""


def _directory(value: object) -> str:
    """A working-directory, repository-relative; "" for the root or what cannot be read."""
    if not isinstance(value, str):
        return ""
    value = value.replace("${{ github.workspace }}", "").strip()
    if _EXPRESSION in value or value.startswith(("/", "~")):
        return ""
    normal = posixpath.normpath(value or ".")
    return "" if normal == "." or normal.startswith("..") else normal
