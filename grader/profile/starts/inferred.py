"""Starts Viva infers from the code itself: pyproject scripts, `python -m` packages, `__main__` blocks, app objects.

Everything is read with `ast` and `tomllib`, never imported or run. The command for each is the one a developer
would type to serve that object, run from the directory that makes the module's own imports resolve.
"""

from __future__ import annotations

import ast
import posixpath
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.python_facts import dotted_name

MAX_EXCERPT = 200
MAX_COMMAND = 10_000

SERVER_PROGRAMS = frozenset({"uvicorn", "gunicorn", "hypercorn", "granian", "daphne"})
"""Programs whose whole job is to serve an app."""
RUN_WRAPPERS = frozenset({"poetry", "uv", "pipenv", "pdm", "rye"})
"""Tools whose `run` subcommand runs a command inside the project's environment (the sandbox is that environment)."""
PYTHON_PROGRAM = re.compile(r"^(?:python(?:\d+(?:\.\d+)*)?|py)$")

_DEFAULT_PORTS = {
    "uvicorn": 8000, "fastapi": 8000, "gunicorn": 8000, "hypercorn": 8000, "granian": 8000, "daphne": 8000,
    "django": 8000, "flask": 5000, "quart": 5000, "streamlit": 8501, "chainlit": 8000, "gradio": 7860,
    "litestar": 8000,
}  # fmt: skip
_RUN_SUBCOMMAND = frozenset({"fastapi", "flask", "quart", "litestar", "streamlit", "chainlit"})
"""Frameworks whose CLI serves only under a subcommand (`flask run`, `fastapi dev`)."""
_PORT_OPTIONS = {"--port", "--server.port"}
_SHORT_PORT_FRAMEWORKS = frozenset({"flask", "quart", "daphne", "litestar"})
"""Where `-p` means the port (for gunicorn it is the pid file)."""
_BIND_OPTIONS = {"-b", "--bind"}
_HOST_PORT = re.compile(r"^(?:[\w.-]*|\[[0-9a-fA-F:]*\]):(.+)$")
_LITERAL_HOST_PORT = re.compile(r"^(?:localhost|[\d.]+|\[[0-9a-fA-F:]*\]):\S+$")
"""`0.0.0.0:8000` as an argument of its own (a bind address, Django's addrport)."""
_SHELL_DEFAULT = re.compile(r"^\$\{\w+:?[-=](\d+)\}$")
_SHELL_VARIABLE = re.compile(r"^\$(?:\{\w+\}|\w+|\(\w+\))$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")


def framework_port(command: str) -> tuple[int | None, str]:
    """The port `command` serves on: what it says, else its framework's default; (None, "") when unknown.

    A port taken from the environment (`--port $PORT`) is unknown here: the shell decides it."""
    if len(command) > MAX_COMMAND:
        return None, ""
    framework, args = _framework_of(_words(command))
    if framework is None:
        return None, ""
    said = _port_argument(framework, args)
    if said is not None:
        return said
    return _DEFAULT_PORTS[framework], "the framework's default"


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:  # an unbalanced quote: words are still worth a look
        return command.split()


def _framework_of(words: list[str]) -> tuple[str | None, list[str]]:
    """The framework a command line runs and the arguments it gives it."""
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word in {"env", "nohup", "exec", "time"}:
            index += 1
        elif word in RUN_WRAPPERS and words[index + 1 : index + 2] == ["run"]:
            index += 2
        else:
            break
    if index >= len(words):
        return None, []
    program, args = posixpath.basename(words[index]), words[index + 1 :]
    if PYTHON_PROGRAM.match(program):
        program, args = _python_target(args)
    if program in _DEFAULT_PORTS and (program not in _RUN_SUBCOMMAND or {"run", "dev"} & set(args)):
        return program, args
    return None, []


def _python_target(args: list[str]) -> tuple[str, list[str]]:
    """What `python …` runs: the module of `-m`, "django" for manage.py runserver, else ""."""
    if args[:1] == ["-m"] and len(args) > 1:
        return args[1], args[2:]
    if args and posixpath.basename(args[0]) == "manage.py" and "runserver" in args:
        return "django", args[args.index("runserver") + 1 :]
    return "", []


def _port_argument(framework: str, args: list[str]) -> tuple[int | None, str] | None:
    """The port the arguments name, or None when they name none."""
    for index, arg in enumerate(args):
        option, equals, inline = arg.partition("=")
        value = inline if equals else (args[index + 1] if index + 1 < len(args) else "")
        if option in _PORT_OPTIONS or (option == "-p" and framework in _SHORT_PORT_FRAMEWORKS):
            found = _port_value(value)
        elif option in _BIND_OPTIONS:
            found = _port_value(_HOST_PORT.sub(r"\1", value))
        elif arg.startswith("-b") and len(arg) > 2:
            found = _port_value(_HOST_PORT.sub(r"\1", arg[2:]))
        elif (framework == "django" and not arg.startswith("-")) or _LITERAL_HOST_PORT.match(arg):
            found = _port_value(_HOST_PORT.sub(r"\1", arg))
        else:
            continue
        if found is not None:
            return found
    return None


def _port_value(text: str) -> tuple[int | None, str] | None:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text), "the command"
    default = _SHELL_DEFAULT.match(text)
    if default:
        return int(default[1]), "the command's default"
    if _SHELL_VARIABLE.match(text):
        return None, ""
    return None


# --- reading Python ----------------------------------------------------------------------------------------------

_SKIP_DIRS = frozenset({"tests", "test", ".venv", "venv", "site-packages", "node_modules"})
_EXAMPLE_DIRS = frozenset({"examples", "example", "samples"})
_PREFERRED_FILES = frozenset({"main.py", "app.py", "server.py", "api.py", "asgi.py", "wsgi.py"})


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _is_test_or_vendored(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return bool(_SKIP_DIRS & set(parts[:-1])) or name.startswith("test_") or name in {"conftest.py", "tests.py"}


def _rank(path: str) -> tuple[bool, bool, int, str]:
    """Files named like an entry point first, then shallower ones; examples last."""
    parts = path.split("/")
    return bool(_EXAMPLE_DIRS & set(parts[:-1])), parts[-1] not in _PREFERRED_FILES, len(parts), path


def _excerpt(source_lines: list[str], line: int) -> str:
    return source_lines[line - 1].strip()[:MAX_EXCERPT] if 0 < line <= len(source_lines) else ""


def _evidence(path: str, source: str, line: int) -> Evidence:
    return Evidence(path, line, _excerpt(source.splitlines(), line))


# --- where a module imports from ---------------------------------------------------------------------------------


def _ancestors(directory: str) -> list[str]:
    """`directory` and every directory above it, deepest first, ending with the root ""."""
    found = [directory]
    while directory:
        directory = posixpath.dirname(directory)
        found.append(directory)
    return found


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


@dataclass(frozen=True)
class _Layout:
    """The repository's Python files and the directories that hold them, looked up once for every file's imports."""

    paths: frozenset[str]
    directories: frozenset[str]

    @classmethod
    def of(cls, python_files: dict[str, str]) -> _Layout:
        parents = {posixpath.dirname(path) for path in python_files}
        return cls(frozenset(python_files), frozenset(a for parent in parents for a in _ancestors(parent)))

    def has_module(self, directory: str, name: str) -> bool:
        return _join(directory, f"{name}.py") in self.paths or _join(directory, name) in self.directories

    def package_root(self, directory: str) -> str | None:
        """The parent of the top-most package directory `directory` is in; None when it is not in a package."""
        if _join(directory, "__init__.py") not in self.paths:
            return None
        while directory and _join(posixpath.dirname(directory), "__init__.py") in self.paths:
            directory = posixpath.dirname(directory)
        return posixpath.dirname(directory)


def _import_root(path: str, tree: ast.Module, layout: _Layout, fallback: str) -> str:
    """The directory to run from so that the file's own imports resolve.

    Absolute imports of the repository's own modules say it best (`from app.db import x` in backend/app/main.py
    means backend/); then the `__init__.py` chain; then `fallback`. Relative imports need the file's package."""
    directory = posixpath.dirname(path)
    ancestors = _ancestors(directory)
    votes: Counter[str] = Counter()
    relative_depth = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            relative_depth = max(relative_depth, node.level)
        for top in _absolute_import_tops(node):
            where = next((a for a in ancestors if layout.has_module(a, top)), None)
            if where is not None:
                votes[where] += 1
    if votes:
        most = max(votes.values())
        root = next(a for a in reversed(ancestors) if votes[a] == most)
    else:
        package_root = layout.package_root(directory)
        root = package_root if package_root is not None else fallback
    depth = ancestors.index(root) if root in ancestors else 0
    if depth < relative_depth < len(ancestors):
        root = ancestors[relative_depth]
    return _importable_root(path, root)


def _absolute_import_tops(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name.split(".")[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
        yield node.module.split(".")[0]


def _importable_root(path: str, root: str) -> str:
    """`root`, moved down until every directory between it and the file is a valid module name (`my-app/` is not)."""
    ancestors = _ancestors(posixpath.dirname(path))
    if root not in ancestors:
        return ancestors[0]
    for candidate in reversed(ancestors[: ancestors.index(root) + 1]):
        relative = posixpath.relpath(ancestors[0] or ".", candidate or ".")
        if relative == "." or all(part.isidentifier() for part in relative.split("/")):
            return candidate
    return ancestors[0]


def _module_name(path: str, root: str) -> str:
    relative = posixpath.relpath(path, root or ".")
    module = relative.removesuffix(".py").replace("/", ".")
    return module.removesuffix(".__init__")


# --- servers started from code -----------------------------------------------------------------------------------

_CODE_DEFAULT_PORTS = {"uvicorn": 8000, "hypercorn": 8000, "granian": 8000, "flask": 5000, "quart": 5000,
                       "socketio": 5000, "sanic": 8000, "aiohttp": 8080, "waitress": 8080}  # fmt: skip
_APP_LIKE_NAMES = frozenset({"app", "application", "api", "server", "flask_app"})
_APP_CLASSES = {"Flask": "flask", "Quart": "quart", "Sanic": "sanic", "SocketIO": "socketio", "Server": "uvicorn"}
_PORT_POSITION = {"flask": 1, "quart": 1, "socketio": 2, "werkzeug": 1}
"""Where a positional port goes: app.run(host, port), socketio.run(app, host, port), run_simple(host, port, app)."""


@dataclass(frozen=True)
class _ServerCall:
    framework: str
    line: int
    port: int | None
    port_source: str
    host: str | None


class _ModuleFacts:
    """What calls in one module refer to: module constants, what names were imported from, what objects are."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.constants: dict[str, ast.expr] = {}
        self.imported_from: dict[str, str] = {}
        self.objects: dict[str, str] = {}
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.constants[node.targets[0].id] = node.value
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node
        for child in ast.walk(tree):
            if isinstance(child, ast.ImportFrom) and child.module:
                for alias in child.names:
                    self.imported_from[alias.asname or alias.name] = child.module
            elif isinstance(child, ast.Assign) and isinstance(child.value, ast.Call):
                for target in child.targets:
                    if isinstance(target, ast.Name):
                        self.objects[target.id] = dotted_name(child.value.func)

    def server_calls(self, nodes: list[ast.stmt], depth: int = 2) -> list[_ServerCall]:
        """Calls in `nodes` that start a server, following calls to the module's own functions `depth` deep."""
        found: list[_ServerCall] = []
        calls = [node for statement in nodes for node in ast.walk(statement) if isinstance(node, ast.Call)]
        for node in calls:
            call = self.server_call(node)
            if call is not None:
                found.append(call)
            elif depth and isinstance(node.func, ast.Name) and node.func.id in self.functions:
                found += self.server_calls(self.functions[node.func.id].body, depth - 1)
        return found

    def server_call(self, call: ast.Call) -> _ServerCall | None:
        framework = self._framework_of_call(call)
        if framework is None:
            return None
        port, port_source = self._call_port(call, framework)
        host = next((k.value for k in call.keywords if k.arg == "host"), None)
        host_text = host.value if isinstance(host, ast.Constant) and isinstance(host.value, str) else None
        return _ServerCall(framework, call.lineno, port, port_source, host_text)

    def _framework_of_call(self, call: ast.Call) -> str | None:
        dotted = dotted_name(call.func)
        parts = dotted.split(".")
        root, last = parts[0], parts[-1]
        origin = self.imported_from.get(root, "")
        if dotted in {"uvicorn.run", "hypercorn.run", "granian.run"} or (dotted == "run" and origin == "uvicorn"):
            return root if dotted != "run" else "uvicorn"
        if last == "run_app":
            return "aiohttp"
        if last == "serve" and ("Granian" in dotted or root == "granian"):
            return "granian"
        if last == "serve" and (root in {"waitress", "hypercorn"} or (dotted == "serve" and origin)):
            source = root if root != "serve" else origin.split(".")[0]
            return source if source in _CODE_DEFAULT_PORTS else "serve"
        if last == "run_simple":
            return "werkzeug"
        if last == "run" and len(parts) == 2:
            if root == "socketio":
                return "socketio"
            made_by = self.objects.get(root, "").rsplit(".", 1)[-1]
            if made_by in _APP_CLASSES:
                return _APP_CLASSES[made_by]
            if root in _APP_LIKE_NAMES and not made_by:  # an app imported from elsewhere: Flask's app.run, likely
                return "flask"
        return None

    def _call_port(self, call: ast.Call, framework: str) -> tuple[int | None, str]:
        node = next((k.value for k in call.keywords if k.arg == "port"), None)
        position = _PORT_POSITION.get(framework)
        if node is None and position is not None and len(call.args) > position:
            node = call.args[position]
        if node is None:
            default = _CODE_DEFAULT_PORTS.get(framework)
            return (default, "the framework's default") if default else (None, "")
        return self.port_value(node)

    def port_value(self, node: ast.expr, depth: int = 0) -> tuple[int | None, str]:
        """An int literal, a module constant, or int(os.environ.get("PORT", 8000)) — the last is the code's
        default, which the environment can change."""
        if depth > 5:
            return None, ""
        port = _port_literal(node.value) if isinstance(node, ast.Constant) else None
        if port is not None:
            return (port, "the code") if 0 < port < 65536 else (None, "")
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.port_value(self.constants[node.id], depth + 1)
        if isinstance(node, ast.Call) and dotted_name(node.func) in {"int", "str"} and len(node.args) == 1:
            return self.port_value(node.args[0], depth + 1)
        if isinstance(node, ast.Call) and dotted_name(node.func).rsplit(".", 1)[-1] in {"getenv", "get"}:
            default = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords), None)
            return self._as_default(default, depth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return self._as_default(node.values[-1], depth)
        return None, ""

    def _as_default(self, node: ast.expr | None, depth: int) -> tuple[int | None, str]:
        port, _ = self.port_value(node, depth + 1) if node is not None else (None, "")
        return (port, "the code's default") if port is not None else (None, "")


def _port_literal(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else None


def _server_notes(call: _ServerCall) -> list[str]:
    return [f"the code binds host {call.host!r}"] if call.host else []


# --- pyproject scripts -------------------------------------------------------------------------------------------

_SERVER_WORDS = ("serve", "start", "run", "api", "web")
"""Script names made of words beginning so ("serve", "run-api", "webserver") sound like a server."""
_CLI_WORDS = ("ingest", "eval", "index", "reindex", "train", "migrat", "seed", "download", "bench", "test", "lint")
_ENTRY_POINT = re.compile(r"^\s*([\w.]+)\s*:\s*([\w.]+)\s*(?:\[[^\]]*\])?\s*$")


def pyproject_starts(path: str, text: str, python_files: dict[str, str]) -> list[StartCandidate]:
    """Console scripts that look like they serve, servers first. The sandbox installs the dependencies but not the
    project, so each runs as `python -c "…; from pkg.mod import func; sys.exit(func())"` from the package root."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, MemoryError, ValueError):
        return []
    lines = text.splitlines()
    ranked: list[tuple[int, int, StartCandidate]] = []
    for order, (table, name, target) in enumerate(_script_entries(data)):
        entry = _ENTRY_POINT.match(target)
        if entry is None:
            continue
        script = _Script(table, name, module=entry[1], function=entry[2])
        found = _script_start(script, path=path, lines=lines, python_files=python_files)
        if found is not None:
            ranked.append((found[0], order, found[1]))
    return [candidate for _, _, candidate in sorted(ranked, key=lambda item: item[:2])]


def _script_entries(data: dict[str, object]) -> list[tuple[str, str, str]]:
    """(table header, script name, "pkg.mod:func") for [project.scripts] and [tool.poetry.scripts]."""
    project = data.get("project")
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    tables = [
        ("project.scripts", project.get("scripts") if isinstance(project, dict) else None),
        ("tool.poetry.scripts", poetry.get("scripts") if isinstance(poetry, dict) else None),
    ]
    entries: list[tuple[str, str, str]] = []
    for header, table in tables:
        for name, value in table.items() if isinstance(table, dict) else []:
            target = value.get("callable") if isinstance(value, dict) else value
            if isinstance(target, str):
                entries.append((header, str(name), target))
    return entries


@dataclass(frozen=True)
class _Script:
    table: str
    """The TOML table it is under ("project.scripts")."""
    name: str
    module: str
    function: str


def _script_start(
    script: _Script, *, path: str, lines: list[str], python_files: dict[str, str]
) -> tuple[int, StartCandidate] | None:
    """(rank, candidate): 0 when the function starts a server, 1 when its name says so, 2 otherwise."""
    name, module, function = script.name, script.module, script.function
    module_path, workdir = _locate_module(posixpath.dirname(path), module, python_files)
    calls = _function_server_calls(python_files.get(module_path or ""), function)
    if not calls and _name_says(name, _CLI_WORDS):
        return None
    rank = 0 if calls else 1 if _name_says(name, _SERVER_WORDS) else 2
    head = function.split(".", maxsplit=1)[0]
    command = f'python -c "import sys; from {module} import {head}; sys.exit({function}())"'
    notes = ["the sandbox does not install the project, so the script's function is called directly"]
    if module_path is None:
        notes.append(f"module {module} is not among the repository's Python files")
    port, port_source = (calls[0].port, calls[0].port_source) if calls else (None, "")
    candidate = StartCandidate(
        tier="inferred",
        source=f"pyproject script {name}",
        command=command,
        evidence=Evidence(path, *_entry_line(lines, script.table, name)),
        workdir=workdir,
        port=port,
        port_source=port_source,
        notes=notes + (_server_notes(calls[0]) if calls else []),
    )
    return rank, candidate


def _name_says(name: str, beginnings: tuple[str, ...]) -> bool:
    """Whether a word of `name` (split at - _ .) begins with one of `beginnings` ("retrieval" is not "eval")."""
    return any(word.startswith(beginnings) for word in re.split(r"[-_.]", name.lower()))


def _locate_module(base: str, module: str, python_files: dict[str, str]) -> tuple[str | None, str]:
    """The module's file and the directory it imports from: the pyproject's directory, or its src/."""
    relative = module.replace(".", "/")
    for root in (base, _join(base, "src")):
        for candidate in (f"{relative}.py", f"{relative}/__init__.py"):
            if _join(root, candidate) in python_files:
                return _join(root, candidate), root
    src_prefix = _join(_join(base, "src"), relative)
    if any(known.startswith(src_prefix + "/") for known in python_files):
        return None, _join(base, "src")
    return None, base


def _function_server_calls(source: str | None, function: str) -> list[_ServerCall]:
    tree = _parse(source) if source is not None else None
    if tree is None:
        return []
    facts = _ModuleFacts(tree)
    definition = facts.functions.get(function)
    return facts.server_calls(definition.body) if definition is not None else []


def _entry_line(lines: list[str], table: str, name: str) -> tuple[int | None, str]:
    """The line of `name = …` under the [table] header (anywhere, if the header is not found)."""
    header = next((i for i, line in enumerate(lines) if line.strip() == f"[{table}]"), 0)
    pattern = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
    for index in range(header, len(lines)):
        if pattern.match(lines[index]):
            return index + 1, lines[index].strip()[:MAX_EXCERPT]
    return None, f"{name} = …"


# --- python -m packages and __main__ blocks ----------------------------------------------------------------------


def module_main_starts(python_files: dict[str, str]) -> list[StartCandidate]:
    """Packages whose `__main__.py` starts a server (`python -m pkg`), then scripts whose `if __name__ ==
    "__main__":` block does (`python -m pkg.mod` inside a package, else `python file.py` from its directory)."""
    layout = _Layout.of(python_files)
    packages: list[StartCandidate] = []
    scripts: list[StartCandidate] = []
    for path in sorted(python_files, key=_rank):
        if _is_test_or_vendored(path):
            continue
        tree = _parse(python_files[path])
        if tree is None:
            continue
        if posixpath.basename(path) == "__main__.py":
            packages += _package_main(path, python_files[path], tree, layout)
        else:
            scripts += _main_block(path, python_files[path], tree, layout)
    return packages + scripts


def _package_main(path: str, source: str, tree: ast.Module, layout: _Layout) -> list[StartCandidate]:
    package = posixpath.dirname(path)
    calls = _ModuleFacts(tree).server_calls(tree.body)
    if not package or not calls:
        return []
    root = _import_root(path, tree, layout, posixpath.dirname(package))
    if root == package:  # `python -m` runs the package, so it is imported from the directory above it
        root = posixpath.dirname(package)
    command = f"python -m {_module_name(package, root)}"
    return [_code_start("python -m", command, path=path, source=source, root=root, call=calls[0])]


def _main_block(path: str, source: str, tree: ast.Module, layout: _Layout) -> list[StartCandidate]:
    blocks = [node for node in tree.body if isinstance(node, ast.If) and _is_main_test(node.test)]
    facts = _ModuleFacts(tree)
    calls = [call for block in blocks for call in facts.server_calls(block.body)]
    if not calls:
        return []
    directory = posixpath.dirname(path)
    root = _import_root(path, tree, layout, directory)
    if root == directory:
        command = f"python {shlex.quote(posixpath.basename(path))}"
    else:
        command = f"python -m {_module_name(path, root)}"
    return [_code_start("__main__ block", command, path=path, source=source, root=root, call=calls[0])]


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = {side.id for side in sides if isinstance(side, ast.Name)}
    texts = {side.value for side in sides if isinstance(side, ast.Constant)}
    return names == {"__name__"} and texts == {"__main__"}


def _code_start(
    source_name: str, command: str, *, path: str, source: str, root: str, call: _ServerCall
) -> StartCandidate:
    return StartCandidate(
        tier="inferred",
        source=source_name,
        command=command,
        evidence=_evidence(path, source, call.line),
        workdir=root,
        port=call.port,
        port_source=call.port_source,
        notes=_server_notes(call),
    )


# --- module-level app objects ------------------------------------------------------------------------------------

_ASGI_CLASSES = frozenset({"FastAPI", "Litestar", "Starlette"})
_CLI_CLASSES = {"Flask": "flask", "Quart": "quart"}
_FACTORY_NAMES = frozenset({"create_app", "make_app", "build_app", "get_app", "app_factory"})
_DEFAULT_ARGS = "--host 127.0.0.1 --port 8000"


@dataclass(frozen=True)
class _AppObject:
    name: str
    kind: str
    """The class that makes it ("FastAPI", "Flask", …)."""
    line: int
    factory: bool


def app_object_starts(python_files: dict[str, str]) -> list[StartCandidate]:
    """Module-level app objects and app factories, served with their framework's usual command; and Django's
    manage.py. Entry-point file names first, then shallower files, examples last."""
    layout = _Layout.of(python_files)
    found: list[tuple[tuple[bool, bool, int, str], int, StartCandidate]] = []
    for path, source in python_files.items():
        if _is_test_or_vendored(path):
            continue
        tree = _parse(source)
        if tree is None:
            continue
        if posixpath.basename(path) == "manage.py":
            found += [(_rank(path), len(found), start) for start in _django_start(path, source)]
            continue
        apps = _app_objects(tree)
        root = _import_root(path, tree, layout, "src" if path.startswith("src/") else "") if apps else ""
        for app in apps:
            found.append((_rank(path), len(found), _app_start(path, source, root, app)))
    return [candidate for _, _, candidate in sorted(found, key=lambda item: item[:2])]


def _app_objects(tree: ast.Module) -> list[_AppObject]:
    found: list[_AppObject] = []
    for node in _module_statements(tree.body):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            kind = dotted_name(node.value.func).rsplit(".", 1)[-1]
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if kind in _ASGI_CLASSES or kind in _CLI_CLASSES:
                found += [_AppObject(t.id, kind, node.lineno, False) for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            factory_kind = _factory_kind(node)
            if factory_kind is not None:
                found.append(_AppObject(node.name, factory_kind, node.lineno, True))
    return found


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those under a top-level `if` or `try` (never inside functions)."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _module_statements(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _module_statements(node.body + node.orelse + node.finalbody)


def _factory_kind(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The framework a factory returns: its return annotation, or what a create_app-named function builds."""
    annotation = function.returns
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        returned = annotation.value.rsplit(".", 1)[-1]
    else:
        returned = dotted_name(annotation).rsplit(".", 1)[-1] if annotation is not None else ""
    if returned in _ASGI_CLASSES or returned in _CLI_CLASSES:
        return returned
    if function.name not in _FACTORY_NAMES:
        return None
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            built = dotted_name(node.func).rsplit(".", 1)[-1]
            if built in _ASGI_CLASSES or built in _CLI_CLASSES:
                return built
    return None


def _app_start(path: str, source: str, root: str, app: _AppObject) -> StartCandidate:
    target = f"{_module_name(path, root)}:{app.name}"
    if app.kind in _CLI_CLASSES:
        command = f"{_CLI_CLASSES[app.kind]} --app {target} run {_DEFAULT_ARGS}"
    else:
        factory = " --factory" if app.factory else ""
        command = f"uvicorn {target}{factory} {_DEFAULT_ARGS}"
    return StartCandidate(
        tier="inferred",
        source="app object",
        command=command,
        evidence=_evidence(path, source, app.line),
        workdir=root,
        port=8000,
        port_source="the framework's default",
        notes=[f"a {app.kind} app factory" if app.factory else f"a {app.kind} app"],
    )


def _django_start(path: str, source: str) -> list[StartCandidate]:
    line = next((n for n, text in enumerate(source.splitlines(), 1) if "DJANGO_SETTINGS_MODULE" in text), None)
    if line is None:
        return []
    return [
        StartCandidate(
            tier="inferred",
            source="app object",
            command="python manage.py runserver 127.0.0.1:8000 --noreload",
            evidence=_evidence(path, source, line),
            workdir=posixpath.dirname(path),
            port=8000,
            port_source="the framework's default",
            notes=["a Django project"],
        )
    ]
