"""How a Dockerfile says its image starts, read with Docker's own rules and never run.

`parse_dockerfile` splits the text into stages of instructions (parser directives, line continuations, heredocs,
exec or shell form); `image_config` follows the target stage's `FROM <stage>` chain to what the image carries at
run time (ENV, WORKDIR, CMD, ENTRYPOINT, EXPOSE, what COPY put where); `dockerfile_start` turns that into a
StartCandidate: one `sh -c` command line run from the repository directory that `COPY . .` put in WORKDIR.
Pure functions: text in, data out, and no input makes them raise.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from grader.model import Evidence
from grader.profile.model import StartCandidate
from sandboxes.variables import expand_variable, substitute, unset_references

MAX_DOCKERFILE_CHARS = 1_000_000
MAX_NOTES = 20
MAX_SKIPPED = 100
"""Skipped steps listed per start; a hostile file's thousands of RUN lines end in one "more" line."""
SH = ["/bin/sh", "-c"]
"""Docker's default SHELL, which shell-form CMD and ENTRYPOINT run under."""
SHELLS = {"sh", "bash", "ash", "dash", "zsh"}

RunValue = str | list[str]
"""A CMD or ENTRYPOINT: shell-form text, or exec-form arguments."""

_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S*)\s*")
_KEYWORD = re.compile(r"\s*([A-Za-z]+)(?:\s+(.*))?", re.S)
_HEREDOC = re.compile(r"(?<!<)<<(?!<)(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_KEYWORDS = {"RUN", "COPY", "ADD"}
KEYWORDS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FROM_REFERENCE = re.compile(r"(?:^|\s)--from=([^\s]+)|--mount=\S*?\bfrom=([^,\s]+)")
_FILE_SUFFIXES = (".txt", ".py", ".toml", ".lock", ".cfg", ".json", ".sh", ".ini", ".yaml", ".yml", ".md", ".env")
_PYTHON_TAG = re.compile(r"(\d+)\.(\d+)")
_PYTHON_IN_TAG = re.compile(r"python-?(\d)\.(\d{1,2})(?!\d)")

_PORT_VALUE = r"(?P<value>\d{1,5}(?!\d)|\$\{[A-Za-z_]\w*(?::?-\d{1,5})?\}|\$[A-Za-z_]\w*)"
_PORT_PATTERNS = (
    re.compile(r"(?:--port|--server\.port|--server-port)(?:=|\s+)['\"]?" + _PORT_VALUE),
    # host:port as gunicorn/hypercorn --bind and `manage.py runserver` take it: 0.0.0.0:8000, :8000, [::]:8000
    re.compile(r"(?<![\w./\-])(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:]*\])?:" + _PORT_VALUE),
    re.compile(r"\brunserver\s+['\"]?" + _PORT_VALUE),
)
_PORT_REFERENCE = re.compile(r"\$\{?([A-Za-z_]\w*)(?::?-(\d{1,5}))?\}?")


class Instruction(msgspec.Struct, frozen=True):
    keyword: str
    """Upper-case, as Docker reads it (`cmd` and `CMD` are one instruction)."""
    value: str
    """The raw text after the keyword, continuation lines joined (and a heredoc's body after a newline)."""
    line: int
    """The 1-based line the instruction starts on."""
    exec_form: list[str] | None = None
    """The arguments, when the value is a JSON array of strings (exec form); None for shell form."""


class Stage(msgspec.Struct, frozen=True):
    base: str
    """The image or earlier stage it starts from, global ARGs substituted."""
    name: str | None
    """The `AS name`, lower-case as Docker compares it."""
    instructions: list[Instruction]
    line: int


class Dockerfile(msgspec.Struct, frozen=True):
    path: str
    stages: list[Stage]
    global_args: dict[str, str]
    """ARGs declared before the first FROM, with their defaults (usable in FROM lines)."""
    notes: list[str]
    escape: str = "\\"
    """The escape character (`# escape=` changes it): continues lines and escapes characters in words."""


class ImageConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the target stage's image carries at run time, read along its `FROM <stage>` chain."""

    stage: Stage
    base_image: str
    """The real image at the root of the chain."""
    python_version: str | None
    env: dict[str, str]
    """The chain's ENV, and the target stage's own ARGs (ENV wins)."""
    workdir: str
    """The absolute WORKDIR in the image ("/" when none is set)."""
    entrypoint: Instruction | None
    cmd: Instruction | None
    shell: list[str]
    exposed: list[int]
    copies: list[tuple[str, str]]
    """(source directory relative to the build context, absolute destination) for each COPY/ADD of a directory."""
    skipped: list[str]
    notes: list[str]


def shell_join(args: list[str]) -> str:
    """Exec-form arguments as one `sh -c` command line; an argument is quoted only when sh would change it."""
    return shlex.join(args)


def parse_dockerfile(path: str, text: str) -> Dockerfile:
    """The stages of a Dockerfile and its global ARGs; what cannot be read becomes a note, never an error."""
    if len(text) > MAX_DOCKERFILE_CHARS:
        return Dockerfile(path, [], {}, [f"{path}: longer than {MAX_DOCKERFILE_CHARS} characters; not read"])
    if "\x00" in text:
        return Dockerfile(path, [], {}, [f"{path}: binary content; not read"])
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    escape = _escape_directive(lines)
    notes: list[str] = []
    instructions = _instructions(path, lines, escape, notes)
    parsed = _stages(path, instructions, escape, notes)
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES:] = [f"{path}: {len(notes) - MAX_NOTES} more notes not listed"]
    return parsed


def _escape_directive(lines: list[str]) -> str:
    """The `# escape=` parser directive; Docker reads directives only before the first other line."""
    escape = "\\"
    for line in lines:
        match = _DIRECTIVE.fullmatch(line)
        if match is None:
            break
        if match[1].lower() == "escape" and match[2] in {"\\", "`"}:
            escape = match[2]
    return escape


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _continued(line: str, escape: str) -> tuple[str, bool]:
    """The line without a trailing escape character (and the spaces after it), and whether it continues."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[: -len(escape)], True
    return line, False


def _instructions(path: str, lines: list[str], escape: str, notes: list[str]) -> list[Instruction]:
    instructions: list[Instruction] = []
    index = 0
    while index < len(lines):
        if _is_blank_or_comment(lines[index]):
            index += 1
            continue
        start = index + 1
        text, index = _logical_line(lines, index, escape)
        match = _KEYWORD.fullmatch(text)
        if match is None:
            notes.append(f"{path}:{start}: not an instruction: {text.strip()[:80]}")
            continue
        keyword, value = match[1].upper(), match[2] or ""
        if keyword not in KEYWORDS:
            notes.append(f"{path}:{start}: unknown instruction {match[1][:40]} (Docker would refuse to build)")
        if keyword in _HEREDOC_KEYWORDS and _HEREDOC.search(value):
            body, index = _heredoc_bodies(path, start, value, lines, index=index, notes=notes)
            value = f"{value}\n{body}"
        instructions.append(Instruction(keyword, value.rstrip(), start, _exec_form(value)))
    return instructions


def _logical_line(lines: list[str], index: int, escape: str) -> tuple[str, int]:
    """One instruction's text from `index`, continuations joined as Docker joins them (comment and blank lines
    inside a continuation are dropped), and the index after it."""
    parts: list[str] = []
    while index < len(lines):
        body, continued = _continued(lines[index], escape)
        parts.append(body)
        index += 1
        if not continued:
            break
        while index < len(lines) and _is_blank_or_comment(lines[index]):
            index += 1
    return "".join(parts), index


def _heredoc_bodies(
    path: str, start: int, value: str, lines: list[str], *, index: int, notes: list[str]
) -> tuple[str, int]:
    """The lines of each `<<EOF` heredoc the instruction opens, up to its terminator, and the index after them."""
    body: list[str] = []
    for match in _HEREDOC.finditer(value):
        strip_tabs, terminator = match[1] == "-", match[3]
        while index < len(lines):
            line = lines[index]
            index += 1
            if (line.lstrip("\t") if strip_tabs else line) == terminator:
                break
            body.append(line)
        else:
            notes.append(f"{path}:{start}: heredoc {terminator} is never closed")
    return "\n".join(body), index


def _exec_form(value: str) -> list[str] | None:
    """Docker's exec form: the value is a JSON array of strings. Anything else is shell form."""
    if not value.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


def _stages(path: str, instructions: list[Instruction], escape: str, notes: list[str]) -> Dockerfile:
    global_args: dict[str, str] = {}
    heads: list[tuple[str, str | None, int]] = []
    bodies: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            heads.append(_from(instruction, global_args, escape))
            bodies.append([])
        elif bodies:
            bodies[-1].append(instruction)
        elif instruction.keyword == "ARG":
            for name, default in _arg_declarations(instruction.value, global_args, escape):
                if default is not None:  # `ARG NAME` alone declares it unset
                    global_args[name] = default
        else:
            notes.append(f"{path}:{instruction.line}: {instruction.keyword} before the first FROM")
    if not heads:
        notes.append(f"{path}: no FROM instruction")
    stages = [Stage(base, name, body, line) for (base, name, line), body in zip(heads, bodies, strict=True)]
    return Dockerfile(path, stages, global_args, notes, escape)


def _from(instruction: Instruction, global_args: dict[str, str], escape: str) -> tuple[str, str | None, int]:
    """`FROM [--platform=...] image [AS name]` as (image, name, line); only global ARGs are in scope here."""
    words = [word for word in words_of(instruction.value, global_args, escape) if not word.startswith("--")]
    base = words[0] if words else ""
    name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
    return base, name, instruction.line


# Words and variables, as Docker's shell lexer reads ENV, ARG, WORKDIR, EXPOSE, COPY and FROM values.


def words_of(text: str, values: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Whitespace-separated words, quotes removed, escapes applied and variables substituted."""
    return _lex(text, values, escape, split=True)


def word_of(text: str, values: Mapping[str, str], escape: str = "\\") -> str:
    """The text as one word (whitespace kept), quotes removed, escapes applied and variables substituted."""
    return _lex(text, values, escape, split=False)[0]


def _lex(text: str, values: Mapping[str, str], escape: str, *, split: bool) -> list[str]:
    """Docker's lexer: single quotes keep everything; in double quotes the escape character escapes only `"`, `$`
    and itself, and variables expand; unquoted, it escapes any character. `started` makes `""` a real empty word."""
    words: list[str] = []
    current: list[str] = []
    started, quote, index = False, "", 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                current.append(char)
            index += 1
            continue
        escaped = char == escape and index + 1 < len(text) and (not quote or text[index + 1] in {'"', "$", escape})
        if escaped:
            current.append(text[index + 1])
            index += 2
        elif char == "$":
            expansion, index = expand_variable(text, index, values)
            current.append(expansion)
        elif quote == '"':
            if char == '"':
                quote = ""
            else:
                current.append(char)
            index += 1
        elif char in "'\"":
            quote = char
            index += 1
        elif split and char.isspace():
            if started:
                words.append("".join(current))
                current = []
            started = False
            index += 1
            continue
        else:
            current.append(char)
            index += 1
        started = True
    if started or not split:
        words.append("".join(current))
    return words


def _arg_declarations(value: str, values: Mapping[str, str], escape: str) -> list[tuple[str, str | None]]:
    declarations: list[tuple[str, str | None]] = []
    for word in words_of(value, values, escape):
        name, equals, default = word.partition("=")
        if _NAME.fullmatch(name):
            declarations.append((name, default if equals else None))
    return declarations


def _env_pairs(value: str, values: Mapping[str, str], escape: str) -> list[tuple[str, str]]:
    """`ENV A=1 B="two words"`, or the legacy `ENV A 1` (the rest of the line is the value). Every value is
    substituted with what was set before this instruction, as Docker does."""
    parts = value.split(None, 1)
    if not parts:
        return []
    if "=" not in parts[0]:
        return [(parts[0], word_of(parts[1].strip() if len(parts) > 1 else "", values, escape))]
    pairs: list[tuple[str, str]] = []
    for word in words_of(value, values, escape):
        name, equals, setting = word.partition("=")
        if equals and name:
            pairs.append((name, setting))
    return pairs


# The target stage's chain, instruction by instruction.


@dataclass
class _Walk:
    """What the stages of a chain have set so far, as Docker's builder keeps it."""

    path: str
    escape: str
    global_args: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    shell: list[str] = field(default_factory=lambda: list(SH))
    entrypoint: Instruction | None = None
    cmd: Instruction | None = None
    cmd_set_in_stage: bool = False
    exposed: list[int] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    users: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def values(self) -> dict[str, str]:
        return {**self.args, **self.env}  # ENV wins over an ARG of the same name

    def start_stage(self) -> None:
        self.args = {}  # ARGs end with their stage; the image config (ENV, CMD...) carries on
        self.cmd_set_in_stage = False

    def read(self, instruction: Instruction) -> None:
        handler = _HANDLERS.get(instruction.keyword)
        if handler is not None:
            handler(self, instruction)


def _read_arg(walk: _Walk, instruction: Instruction) -> None:
    for name, default in _arg_declarations(instruction.value, walk.values, walk.escape):
        if default is not None:
            walk.args[name] = default
        elif name in walk.global_args:  # `ARG NAME` inside a stage brings a global ARG into scope
            walk.args[name] = walk.global_args[name]


def _read_env(walk: _Walk, instruction: Instruction) -> None:
    for name, value in _env_pairs(instruction.value, walk.values, walk.escape):
        if name == "PATH":  # it extends the image's own PATH, which we cannot see: passing it on would break sh
            walk.notes.append(f"{walk.path}:{instruction.line}: ENV PATH is the image's own; not passed on")
            continue
        walk.env[name] = value


def _read_workdir(walk: _Walk, instruction: Instruction) -> None:
    directory = word_of(instruction.value.strip(), walk.values, walk.escape).strip()
    if directory:
        walk.workdir = posixpath.normpath(posixpath.join(walk.workdir, directory))


def _read_expose(walk: _Walk, instruction: Instruction) -> None:
    for word in words_of(instruction.value, walk.values, walk.escape):
        match = re.match(r"\d{1,5}", word)
        if match and 0 < int(match[0]) < 65536:
            walk.exposed.append(int(match[0]))


def _read_copy(walk: _Walk, instruction: Instruction) -> None:
    if instruction.exec_form is not None:
        words = [substitute(word, walk.values) for word in instruction.exec_form]
    elif _HEREDOC.search(instruction.value):
        return  # the file comes from the Dockerfile itself
    else:
        words = words_of(instruction.value, walk.values, walk.escape)
    flags = [word for word in words if word.startswith("--")]
    paths = [word for word in words if not word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags) or len(paths) < 2:
        return  # --from copies from another stage or image, not from the build context
    destination = posixpath.normpath(posixpath.join(walk.workdir, paths[-1]))
    for source in paths[:-1]:
        if _is_context_directory(source):
            walk.copies.append((_context_path(source), destination))
        elif (contents := _directory_of_contents(source)) is not None:
            walk.copies.append((contents, destination))


def _read_cmd(walk: _Walk, instruction: Instruction) -> None:
    walk.cmd = instruction
    walk.cmd_set_in_stage = True


def _read_entrypoint(walk: _Walk, instruction: Instruction) -> None:
    walk.entrypoint = instruction
    if not walk.cmd_set_in_stage:  # Docker: a new ENTRYPOINT drops a CMD inherited from the base
        walk.cmd = None


def _read_shell(walk: _Walk, instruction: Instruction) -> None:
    if instruction.exec_form:
        walk.shell = list(instruction.exec_form)


def _read_user(walk: _Walk, instruction: Instruction) -> None:
    text = f"USER {instruction.value.strip()} (the sandbox runs as its own unprivileged user)"
    walk.users.append((instruction.line, f"{walk.path}:{instruction.line}: {text}"))


_HANDLERS = {
    "ARG": _read_arg,
    "ENV": _read_env,
    "WORKDIR": _read_workdir,
    "EXPOSE": _read_expose,
    "COPY": _read_copy,
    "ADD": _read_copy,
    "CMD": _read_cmd,
    "ENTRYPOINT": _read_entrypoint,
    "SHELL": _read_shell,
    "USER": _read_user,
}


def _is_context_directory(source: str) -> bool:
    """Whether a COPY source names a directory of the build context (`.`, `src`, `./app/`), not a file
    (requirements.txt, main.py), a URL or a glob."""
    if "://" in source or source.startswith("git@") or any(char in source for char in "*?["):
        return False
    if source in {".", "./", "/"}:
        return True
    last = source.rstrip("/").rsplit("/", 1)[-1]
    if last.lower().endswith(_FILE_SUFFIXES):
        return False
    return source.endswith("/") or "." not in last


def _directory_of_contents(source: str) -> str | None:
    """`COPY ./app/* /app/` puts the directory's contents in the destination, as `COPY app/ /app/` does: the
    directory (relative to the context), for a source whose only wildcard is a whole last component `*`."""
    head, _, last = source.rstrip("/").rpartition("/")
    if last != "*" or any(char in head for char in "*?["):
        return None
    return _context_path(head or ".")


def _context_path(source: str) -> str:
    """A COPY source as a POSIX path relative to the build context ("" is the context itself)."""
    normal = posixpath.normpath(source.lstrip("/") or ".")
    return "" if normal == "." else normal


def _stage_index(stages: list[Stage], reference: str, before: int) -> int | None:
    """The earlier stage a `--from=` names, by name or by number."""
    if reference.isdigit():
        return int(reference) if int(reference) < before else None
    return next((index for index in range(before - 1, -1, -1) if stages[index].name == reference.lower()), None)


def _parent(stages: list[Stage], index: int) -> int | None:
    """The earlier stage that stage `index` is built FROM, if its base names one."""
    base = stages[index].base.lower()
    return next((earlier for earlier in range(index - 1, -1, -1) if stages[earlier].name == base), None)


def _chain(stages: list[Stage], target: int) -> list[int]:
    """The target stage and the stages it is built FROM, root first."""
    chain = [target]
    while (parent := _parent(stages, chain[-1])) is not None:
        chain.append(parent)
    return chain[::-1]


def _needed_stages(stages: list[Stage], target: int) -> set[int]:
    """Every stage the target's build runs: its chain and the stages it copies or mounts from."""
    needed: set[int] = set()
    pending = [target]
    while pending:
        index = pending.pop()
        if index in needed:
            continue
        needed.add(index)
        pending += _chain(stages, index)
        for instruction in stages[index].instructions:
            for match in _FROM_REFERENCE.finditer(instruction.value):
                found = _stage_index(stages, match[1] or match[2], index)
                if found is not None:
                    pending.append(found)
    return needed


def _run_steps(path: str, stages: list[Stage], needed: set[int]) -> list[tuple[int, str]]:
    steps: list[tuple[int, str]] = []
    for index in sorted(needed):
        for instruction in stages[index].instructions:
            if instruction.keyword == "RUN":
                text = " ".join(instruction.value.split())[:120]
                steps.append((instruction.line, f"{path}:{instruction.line}: RUN {text}"))
    return steps


def _target_index(stages: list[Stage], target: str | None) -> int | None:
    if not stages:
        return None
    if target is None:
        return len(stages) - 1
    names = [stage.name for stage in stages]
    return names.index(target.lower()) if target.lower() in names else None


def image_config(dockerfile: Dockerfile, *, target: str | None = None) -> ImageConfig | None:
    """What the image built for `target` (default: the last stage) carries at run time; None when there is no
    such stage."""
    index = _target_index(dockerfile.stages, target)
    if index is None:
        return None
    stages = dockerfile.stages
    chain = _chain(stages, index)
    walk = _Walk(dockerfile.path, dockerfile.escape, dockerfile.global_args)
    for stage_index in chain:
        walk.start_stage()
        for instruction in stages[stage_index].instructions:
            walk.read(instruction)
    skipped = sorted(_run_steps(dockerfile.path, stages, _needed_stages(stages, index)) + walk.users)
    base = stages[chain[0]].base
    return ImageConfig(
        stage=stages[index],
        base_image=base,
        python_version=python_version(base),
        env=walk.values,
        workdir=walk.workdir,
        entrypoint=walk.entrypoint,
        cmd=walk.cmd,
        shell=walk.shell,
        exposed=walk.exposed,
        copies=walk.copies,
        skipped=_capped([text for _, text in skipped], dockerfile.path),
        notes=walk.notes + _json_lookalike_notes(dockerfile.path, [walk.entrypoint, walk.cmd]),
    )


def _capped(skipped: list[str], path: str) -> list[str]:
    if len(skipped) <= MAX_SKIPPED:
        return skipped
    return [*skipped[:MAX_SKIPPED], f"{path}: {len(skipped) - MAX_SKIPPED} more steps not listed"]


def _json_lookalike_notes(path: str, instructions: list[Instruction | None]) -> list[str]:
    return [
        f"{path}:{instruction.line}: {instruction.keyword} looks like a JSON array but is not valid JSON, "
        "so Docker runs it as a shell command"
        for instruction in instructions
        if instruction is not None and instruction.exec_form is None and instruction.value.lstrip().startswith("[")
    ]


# From the image's config to one command line.


def run_value(instruction: Instruction | None) -> RunValue | None:
    if instruction is None:
        return None
    return instruction.exec_form if instruction.exec_form is not None else instruction.value.strip()


def run_command(entrypoint: RunValue | None, cmd: RunValue | None, shell: list[str] | None = None) -> str | None:
    """The `sh -c` command line Docker runs for this ENTRYPOINT and CMD: exec-form entrypoint arguments with CMD
    appended (a shell-form CMD as `shell -c text`); a shell-form entrypoint ignores CMD. None when nothing runs."""
    shell = shell or SH
    if isinstance(entrypoint, str):
        return _shell_form(entrypoint, shell)
    if not entrypoint:
        return _shell_form(cmd, shell) if isinstance(cmd, str) else (shell_join(cmd) if cmd else None)
    args = list(entrypoint)
    if isinstance(cmd, str) and cmd:
        args += [*shell, cmd]
    elif isinstance(cmd, list):
        args += cmd
    return shell_join(args)


def _shell_form(text: str, shell: list[str]) -> str | None:
    if not text:
        return None
    return text if shell == SH else shell_join([*shell, text])  # under our own `sh -c`, `/bin/sh -c text` is text


def run_notes(entrypoint: RunValue | None, cmd: RunValue | None, env: Mapping[str, str]) -> list[str]:
    """What is odd about how this ENTRYPOINT and CMD run: CMD ignored, `$VAR` passed literally, or read unset."""
    notes: list[str] = []
    if isinstance(entrypoint, str) and cmd:
        notes.append("the CMD is ignored: the ENTRYPOINT is in shell form")
    for value in (entrypoint, cmd):
        literal = [arg for arg in value if "$" in arg] if isinstance(value, list) and not _runs_a_shell(value) else []
        if literal:
            notes.append(
                f"the exec-form command passes {shell_join(literal)} to the program as written "
                "(Docker substitutes no variables in exec form)"
            )
    scripts = [value for value in (entrypoint, cmd) if isinstance(value, str)]
    scripts += [value[-1] for value in (entrypoint, cmd) if isinstance(value, list) and _runs_a_shell(value)]
    for name in unset_references(" ".join(scripts), env):
        notes.append(f"the command reads ${name}, which nothing here sets")
    return notes


def _runs_a_shell(args: list[str]) -> bool:
    return len(args) >= 3 and posixpath.basename(args[0]) in SHELLS and "-c" in args


def run_port(entrypoint: RunValue | None, cmd: RunValue | None, env: Mapping[str, str]) -> tuple[int, str] | None:
    """The port this ENTRYPOINT and CMD name (see command_port). A `$PORT` in exec-form arguments is no port: the
    program receives those four characters."""
    values = [entrypoint] if isinstance(entrypoint, str) else [entrypoint, cmd]
    texts: list[str] = []
    for value in values:
        if isinstance(value, str):
            texts.append(value)
        elif value:
            texts.append(" ".join(value if _runs_a_shell(value) else [arg.replace("$", "") for arg in value]))
    return command_port(" ".join(texts), env)


def command_port(command: str, env: Mapping[str, str]) -> tuple[int, str] | None:
    """The port the command itself names (`--port 8080`, `--bind 0.0.0.0:8080`, `runserver 0.0.0.0:8000`), with
    where it came from: "the command", or "the command's default" for `${PORT:-8000}` when PORT is unset."""
    matches = sorted((match for pattern in _PORT_PATTERNS for match in pattern.finditer(command)), key=re.Match.start)
    for match in matches:
        found = _port_value(match["value"], env)
        if found is not None:
            return found
    return None


def _port_value(value: str, env: Mapping[str, str]) -> tuple[int, str] | None:
    if value.isdigit():
        return (int(value), "the command") if 0 < int(value) < 65536 else None
    reference = _PORT_REFERENCE.fullmatch(value)
    if reference is None:
        return None
    setting = env.get(reference[1], "")
    if setting.isdigit() and 0 < int(setting) < 65536:
        return int(setting), "the command"
    if reference[2] and 0 < int(reference[2]) < 65536:
        return int(reference[2]), "the command's default"
    return None


def repo_dir(copies: list[tuple[str, str]], container_dir: str, context: str = "") -> str:
    """The repository directory (POSIX, relative to the root, "" for the root) that `container_dir` holds, given
    the (source relative to `context`, absolute destination) directories copied into the image.

    Inside a copied destination: the matching place under its source (the most specific copy wins, a later one on
    a tie). Above a destination (`COPY app /code/app`, WORKDIR /code): the directory the source sits in. Else the
    context itself."""
    directory = posixpath.normpath(posixpath.join("/", container_dir))
    best: tuple[str, str] | None = None
    for source, destination in copies:
        if _within(directory, destination) and (best is None or len(destination) >= len(best[1])):
            best = (source, destination)
    if best is not None:
        return _repo_path(context, best[0], posixpath.relpath(directory, best[1]))
    for source, destination in copies:
        if _within(destination, directory):
            inner = posixpath.relpath(destination, directory)
            if source == inner or source.endswith("/" + inner):
                return _repo_path(context, source[: len(source) - len(inner)])
    return _repo_path(context)


def _within(path: str, directory: str) -> bool:
    return directory in {path, "/"} or path.startswith(directory + "/")


def _repo_path(*parts: str) -> str:
    normal = posixpath.normpath(posixpath.join(*parts)) if any(parts) else "."
    if normal in {".", ".."} or normal.startswith(("../", "/")):
        return ""
    return normal


def python_version(image: str) -> str | None:
    """The Python version an image reference names: "python:3.12-slim" → "3.12", "…:python3.11" → "3.11";
    None for "python", "python:latest" or a non-Python image."""
    reference = image.strip().split("@", 1)[0]
    repository, tag = reference, ""
    if ":" in reference.rsplit("/", 1)[-1]:
        repository, tag = reference.rsplit(":", 1)
    if repository.rsplit("/", 1)[-1].lower() == "python":
        match = _PYTHON_TAG.match(tag)
        if match:
            return f"{match[1]}.{match[2]}"
    match = _PYTHON_IN_TAG.search(tag.lower())
    return f"{match[1]}.{match[2]}" if match else None


def instruction_evidence(path: str, instruction: Instruction) -> Evidence:
    return Evidence(path, instruction.line, " ".join(f"{instruction.keyword} {instruction.value}".split())[:200])


def _deciding(entrypoint: Instruction | None, cmd: Instruction | None) -> Instruction | None:
    """The instruction that names what runs: the CMD, unless a shell-form or CMD-less ENTRYPOINT decides alone."""
    if entrypoint is not None and (entrypoint.exec_form is None or cmd is None or cmd.exec_form == []):
        return entrypoint
    return cmd or entrypoint


def dockerfile_start(dockerfile: Dockerfile, *, context: str = "", target: str | None = None) -> StartCandidate | None:
    """How the image built from `context` (the build context, relative to the repository root) starts; None when
    the target stage has neither CMD nor ENTRYPOINT (or there is no such stage)."""
    config = image_config(dockerfile, target=target)
    if config is None:
        return None
    entrypoint, cmd = run_value(config.entrypoint), run_value(config.cmd)
    command = run_command(entrypoint, cmd, config.shell)
    decided = _deciding(config.entrypoint, config.cmd)
    if command is None or decided is None:
        return None
    port = run_port(entrypoint, cmd, config.env) or ((config.exposed[0], "EXPOSE") if config.exposed else None)
    return StartCandidate(
        tier="packaged",
        source="Dockerfile" if dockerfile.path == "Dockerfile" else f"Dockerfile {dockerfile.path}",
        command=command,
        evidence=instruction_evidence(dockerfile.path, decided),
        workdir=repo_dir(config.copies, config.workdir, context),
        port=port[0] if port else None,
        port_source=port[1] if port else "",
        env=config.env,
        skipped=config.skipped,
        python_version=config.python_version,
        notes=[*dockerfile.notes, *config.notes, *run_notes(entrypoint, cmd, config.env)],
    )
