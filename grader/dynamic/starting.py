"""Starting the candidate's app the way its repository says, and deciding whose failure a failed start is.

Pure: these functions read what a start attempt left behind (its command, the log tail, what the dependency
layer installed) and decide. Running the attempts is grader/dynamic/run.py's job. The rule, as docs/DYNAMIC.md
states it: when the project said how to start and that start failed in the sandbox, it is the candidate's failure
(0, with the log); when Viva could not follow what the project said — services it does not run yet, a toolchain
the sandbox lacks, a system library a skipped `RUN` step installs, models downloaded at start, a requirement the
layer could not install, or only its own guesses, which all failed — the dynamic leaves are not_run, never 0.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass

from grader.dynamic.model import Blame
from grader.profile.model import StartCandidate
from sandboxes.gateway.clients import UNSERVED_PROVIDERS

MAX_ATTEMPTS = 4
PLACEHOLDER = "viva-placeholder"

FOREIGN_TOOLS = {
    "node", "npm", "npx", "yarn", "pnpm", "bun", "deno", "go", "java", "mvn", "gradle", "cargo", "dotnet",
    "ruby", "bundle", "rails", "php", "docker", "docker-compose", "podman", "kubectl", "helm",
}  # fmt: skip
"""First words of a command the sandbox cannot run: another language's toolchain, or a container runtime."""
PYTHON_PROGRAMS = {
    "python", "python3", "uvicorn", "gunicorn", "hypercorn", "granian", "daphne", "flask", "fastapi", "litestar",
    "streamlit", "chainlit", "gradio", "celery", "waitress-serve", "quart", "sanic", "panel", "voila", "jupyter",
    "mesop", "reflex", "solara", "langgraph", "langserve", "uv", "poetry", "pipenv", "pdm",
}  # fmt: skip
"""Programs a Python project's own requirements provide: not found means the project did not declare it."""
WRAPPERS = {"poetry", "uv", "pipenv", "pdm", "hatch", "rye"}
"""`poetry run X` and friends: the sandbox already holds the dependencies, so X runs directly."""
SAFE_BINDS = {"0.0.0.0", "127.0.0.1", "localhost", "::", "[::]", "0", "::1", "[::1]"}  # noqa: S104 - bind addresses in the app's command, inside the sandbox

_DOWNLOAD = re.compile(
    r"huggingface\.co|hf_hub_download|snapshot_download|HF_HUB_OFFLINE|LocalEntryNotFoundError|"
    r"sentence[-_]transformers.*(?:download|connect)|(?:download|fetch)ing (?:the )?(?:model|weights|tokenizer)|"
    r"nltk\.download|punkt|spacy.*download|Can't load (?:tokenizer|config|model) for|We couldn't connect to",
    re.I,
)
_BUILT_PATH = r"(?:/static|/assets|/dist|/build|/frontend|node_modules|/public)"
_MISSING_PATH = r"(?:does not exist|No such file or directory)"
_BUILD_OUTPUT = re.compile(rf"{_MISSING_PATH}[^\n]*{_BUILT_PATH}|{_BUILT_PATH}[^\n]*{_MISSING_PATH}")
_IMAGE_PATH = re.compile(
    r"(?:No such file or directory|does not exist|not found)[^\n]*?['\"]((?:/app|/code|/srv|/workspace|/src|/data|"
    r"/project|/usr/src/app|/opt/app|/home/app)(?:/[^'\"\s]*)?)['\"]"
)
_READS_TERMINAL = re.compile(r"EOFError: EOF when reading a line|termios\.error|Inappropriate ioctl for device")
"""An interactive program waiting for typed input (`input()` with no terminal): a chat loop, not a service."""
_NEWER_SYNTAX = re.compile(
    r"SyntaxError: (?:f-string expression part cannot include a backslash|f-string: expressions nested too deeply|"
    r"f-string: unmatched|invalid syntax\. Perhaps you forgot a comma\?(?=.*\btype\b)|"
    r"'match' is not|cannot assign to|invalid syntax.*\btype\b)"
)
_LIBRARY_IMPORT_ERROR = re.compile(r"^(?:ImportError|AttributeError: module)", re.M)
_NO_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|nodename nor servname|Network is unreachable|"
    r"getaddrinfo failed|could not translate host name|Max retries exceeded with url: (?!.*127\.0\.0\.1)",
    re.I,
)
_SHARED_LIBRARY = re.compile(
    r"error while loading shared libraries: (\S+)|(lib[\w.+-]+\.so[\w.]*): cannot open shared object file|"
    r"OSError: (?:cannot load library|ctypes\.util)|ImportError: (lib\S+\.so\S*)",
    re.I,
)
_COMMAND_NOT_FOUND = re.compile(r"(?:^|\s|:)(?:sh: \d+: )?([\w./-]+): (?:command )?not found", re.M)
_MISSING_MODULE = re.compile(r"(?:ModuleNotFoundError: )?No module named '?([\w.]+)'?(?=\W|$)", re.M)
_DISTRIBUTION_NOT_FOUND = re.compile(r"DistributionNotFound: The '([\w.\-\[\]]+)[^']*' distribution was not found")
_GUESS_WRONG = re.compile(
    r"Error loading ASGI app|Could not import module|Attribute \"?\w+\"? not found in module|"
    r"Could not locate a Flask application|Could not import \"?[\w.]+\"?|No module named [\w.]+$|"
    r"can't open file|No such file or directory: '[^']*manage\.py'|Error: No such command",
    re.M,
)
_CONNECTION_REFUSED = re.compile(
    r"Connection refused|could not connect to server|ECONNREFUSED|Failed to establish a new connection|"
    r"connection to server at .* failed|Cannot connect to host|ConnectError|Cannot assign requested address|"
    r"ResponseHandlingException|ServiceUnavailable: Couldn't connect|Error 111 connecting",
    re.I,
)
_TRACEBACK_FILE = re.compile(r'File "(/work/app/[^"]+)", line (\d+)')
_TRACEBACK_FILE_ANY = re.compile(r'File "([^"]+)", line (\d+)')
_LISTENING = re.compile(r"(?:running on|listening (?:at|on)|serving on|started server on)\D{0,20}"
                        r"(?:https?://)?[\w.\[\]:]*?:(\d{2,5})", re.I)  # fmt: skip
_EXCEPTION_LINE = re.compile(r"^(\w[\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$", re.M)


@dataclass(frozen=True)
class StartFacts:
    """What a start attempt's verdict rests on, besides its log."""

    candidate: StartCandidate
    install_ok: bool
    installed: frozenset[str]
    """Normalised names of the requirements the dependency layer installed."""
    refused: frozenset[str]
    """Normalised names of requirements the layer refused (URLs, VCS, local paths) or could not install."""
    repo_modules: frozenset[str]
    """Top-level module and package names the repository itself provides."""
    exited: bool
    """The process had exited by the end of the attempt (else it ran but never answered)."""
    declared_anywhere: frozenset[str] = frozenset()
    """Normalised names any dependency file of the repository declares (not only the one the layer installed)."""
    unpinned: frozenset[str] = frozenset()
    """Installed requirements without an exact version (`langchain`, `openai>=1`)."""
    repo_builds: bool = False
    """The repository's Dockerfiles build something (RUN steps Viva skipped): files the app reads may come from them."""


@dataclass(frozen=True)
class Verdict:
    blame: Blame
    reason: str


def not_followed(candidate: StartCandidate) -> str | None:
    """Why Viva cannot try this start at all, or None when it can."""
    tool = first_word(candidate.command)
    if tool in FOREIGN_TOOLS:
        return f"it runs `{tool}`, which the Python sandbox does not have"
    return None


def first_word(command: str) -> str:
    """The program a command line runs, past `VAR=value` prefixes, `exec` and `cd dir &&`."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    while words and (("=" in words[0] and not words[0].startswith("-")) or words[0] in {"exec", "nohup", "env"}):
        words = words[1:]
    if "&&" in words:
        words = words[words.index("&&") + 1 :]
    return words[0].rsplit("/", 1)[-1] if words else ""


def unwrap(command: str) -> tuple[str, list[str]]:
    """Drop `poetry run` / `uv run` / … in front of a command; the sandbox holds the dependencies already."""
    words = command.split(maxsplit=2)
    if len(words) == 3 and words[0] in WRAPPERS and words[1] == "run":
        return words[2], [f"ran `{words[2]}` without `{words[0]} run`: the sandbox already has the dependencies"]
    return command, []


def rewrite_bind(command: str) -> tuple[str, list[str]]:
    """A bind address the tunnel cannot reach (the container's hostname, a LAN address) becomes 0.0.0.0."""
    rewritten: list[str] = []

    def host_flag(match: re.Match[str]) -> str:
        if match.group(2) in SAFE_BINDS or match.group(2).startswith("$"):
            return match.group(0)
        rewritten.append(f"bind address {match.group(2)} → 0.0.0.0, so the tunnel reaches the app")
        return f"{match.group(1)}0.0.0.0"  # noqa: S104 - inside the sandbox, which has no network but loopback

    command = re.sub(r"(--host[ =])([^\s\"']+)", host_flag, command)
    command = re.sub(r"((?:-b|--bind)[ =])([^\s:\"']+)(?=:\d)", host_flag, command)
    return command, rewritten


def announced_port(log: str) -> int | None:
    """The port the app's own log says it listens on ("Uvicorn running on http://0.0.0.0:9000", "Running on …")."""
    found = _LISTENING.findall(log)
    return int(found[-1]) if found else None


def placeholders(needed: list[tuple[str, str | None]], have: set[str]) -> dict[str, str]:
    """Harmless values for variables the app reads at start and nobody set: the example file's value when there
    is one, else a placeholder. Secrets never come from the host; provider keys point at the gateway already."""
    return {name: (example or PLACEHOLDER) for name, example in needed if name not in have}


def blame_failed_start(facts: StartFacts, log: str) -> Verdict:
    """Whose failure a start that did not answer is, from its log and what the sandbox had."""
    viva = _viva_limitation(facts, log)
    if viva is not None:
        return Verdict("viva", viva)
    candidate, tier = facts.candidate, facts.candidate.tier
    missing = _MISSING_MODULE.findall(log)
    if missing and "." in missing[-1] and _normalise(missing[-1].split(".")[0]) in facts.installed:
        package = missing[-1].split(".")[0]
        if package in facts.unpinned:
            return Verdict(
                "candidate",
                f"its requirements leave `{package}` unpinned, and the version installed today has no "
                f"`{missing[-1]}`: {_last_error(log)}",
            )
        return Verdict("viva", f"the installed `{package}` has no `{missing[-1]}` in this sandbox's Python")
    if missing:
        module = missing[-1].split(".")[0]
        if module in facts.repo_modules:
            if (
                tier != "declared"
            ):  # the module is there: it is where it ran from (or an uninstalled project) that fails
                return Verdict("viva", f"the project's own module `{module}` is in the repository but does not "
                                       f"import from where `{candidate.command}` runs (the project may be meant to be "
                                       "installed, `pip install -e .`, which Viva does not do)")  # fmt: skip
            return Verdict("candidate", f"the app failed at start importing its own module: {_last_error(log)}")
        if _TRACEBACK_FILE_ANY.search(log) and not _raised_in_repo(log):
            return Verdict(
                "viva",
                f"an installed library needs `{module}`, which the sandbox's dependency layer lacks (an optional "
                f"extra or a platform build): {_last_error(log)}",
            )
        if facts.refused:
            # The layer came out partial: a package it lacks may well have brought `module` with it.
            return Verdict(
                "viva",
                f"`{module}` is missing, and the sandbox's install was incomplete (without "
                f"{', '.join(sorted(facts.refused)[:3])}), which may be what brings it: {_last_error(log)}",
            )
        near = difflib.get_close_matches(module, sorted(facts.repo_modules), n=1, cutoff=0.75)
        if near:
            return Verdict("candidate", f"the app imports `{module}`, which is neither in its requirements nor in the "
                                        f"repository (which has `{near[0]}`): {_last_error(log)}")  # fmt: skip
        return Verdict(
            "candidate", f"a dependency missing from its own requirements: `{module}` is imported but not declared"
        )
    if tier == "inferred" and "attempted relative import" in log:
        return Verdict(
            "viva", f"Viva's guess `{candidate.command}` ran the package from the wrong place ({_last_error(log)})"
        )
    if _raised_in_repo(log):
        return Verdict("candidate", f"the app crashed at start in its own code: {_last_error(log)}")
    if tier == "inferred":
        return Verdict("viva", f"Viva's guess `{candidate.command}` did not start the app ({_last_error(log)})")
    if not facts.exited:
        return Verdict("candidate", "the app kept running but never answered on its port")
    return Verdict("candidate", f"the start command failed: {_last_error(log) or 'it exited without a word'}")


def _viva_limitation(facts: StartFacts, log: str) -> str | None:
    missing = _MISSING_MODULE.findall(log)
    if missing and "." in missing[-1] and _normalise(missing[-1].split(".")[0]) in facts.installed:
        return None  # a submodule an installed package lacks: the version question is decided below
    if missing and _normalise(missing[-1].split(".")[0]) in facts.refused:
        return f"the requirement for `{missing[-1]}` could not be installed in the sandbox"
    run_steps = [step for step in facts.candidate.skipped if " RUN " in f" {step}"]
    installed_by_run = _installed_by(run_steps, [*(name.split(".")[0] for name in missing), *_not_found(log)])
    if installed_by_run is not None:
        name, step = installed_by_run
        return f"`{name}` is installed by a Dockerfile RUN step, which Viva does not replay ({step})"
    top = _normalise(missing[-1].split(".")[0]) if missing else ""
    if missing and top in facts.declared_anywhere and top not in facts.installed:
        return (
            f"`{missing[-1].split('.')[0]}` is declared by the project elsewhere than what Viva installed from "
            "(another dependency file, or a Dockerfile's or README's pip install)"
        )
    built = _BUILD_OUTPUT.search(log)
    if built and (facts.repo_builds or any(" RUN " in f" {step}" for step in facts.candidate.skipped)):
        return (
            f"the app needs files its image builds ({built.group(0)[:120]}), and Viva does not replay the Dockerfile's "
            "build steps"
        )
    if _READS_TERMINAL.search(log):
        return (
            f"`{facts.candidate.command}` is an interactive terminal program (it waited for typed input), not a web "
            "service Viva can probe over HTTP"
        )
    newer = _NEWER_SYNTAX.search(log)
    if newer:
        return (
            f"the code uses syntax of a newer Python than the sandbox's ({newer.group(0)[:100]}): with a registry the "
            "sandbox runs the Python the project's image names"
        )
    image_path = _IMAGE_PATH.search(log)
    if image_path:
        return (
            f"the app reads `{image_path.group(1)}`, a path in its own image's layout (WORKDIR, a volume), which the "
            "sandbox does not recreate"
        )
    distribution = _DISTRIBUTION_NOT_FOUND.search(log)
    if distribution:
        return (
            f"the installed dependencies lack `{distribution.group(1)}`, which one of the project's requirements "
            "needs at start: the sandbox's dependency layer is incomplete"
        )
    if missing and not facts.install_ok and missing[-1].split(".")[0] not in facts.repo_modules:
        return f"the dependencies did not install in the sandbox, so `{missing[-1]}` was missing"
    unserved = _unserved_provider(log)
    if unserved:
        return unserved
    if _DOWNLOAD.search(log):
        return "the app downloads models or data when it starts, and the sandbox has no network"
    library = _SHARED_LIBRARY.search(log)
    if library:
        name = next(group for group in library.groups() if group) if any(library.groups()) else "a system library"
        skipped = [step for step in facts.candidate.skipped if " RUN " in f" {step}"]
        where = (
            f" (the Dockerfile installs system packages with RUN, which Viva does not replay: {skipped[0]})"
            if skipped
            else ""
        )
        return f"the app needs the system library {name}, which the sandbox does not have{where}"
    tool = _COMMAND_NOT_FOUND.search(log)
    if tool and tool.group(1).rsplit("/", 1)[-1] in FOREIGN_TOOLS:
        return f"the app runs `{tool.group(1)}`, which the Python sandbox does not have"
    if tool and facts.refused and tool.group(1).rsplit("/", 1)[-1] in PYTHON_PROGRAMS:
        return (
            f"the sandbox's install was incomplete (without {', '.join(sorted(facts.refused)[:3])}), so "
            f"`{tool.group(1)}` was not there"
        )
    if tool and not facts.install_ok:
        return f"the dependencies did not install in the sandbox, so `{tool.group(1)}` was not there"
    program = _normalise(tool.group(1).rsplit("/", 1)[-1]) if tool else ""
    if tool and program and (program in facts.declared_anywhere or program in facts.installed):
        # Declared, yet no command: the install did not provide it, or resolved it (offline, wheels only) to an
        # old version without its command (`chainlit` backtracked to 0.1.0 when its newest pins could not be met).
        return f"`{tool.group(1)}` is declared by the project, but the sandbox's install did not provide it"
    if tool and tool.group(1).rsplit("/", 1)[-1] not in PYTHON_PROGRAMS and "/" not in tool.group(1):
        return f"the app runs `{tool.group(1)}`, a program the Python sandbox does not have"
    if _NO_NETWORK.search(log):
        return (
            "the app connects to another host at start (a database, a vector store, an API), and the sandbox has "
            "no network"
        )
    if _CONNECTION_REFUSED.search(log):
        return "the app needs a service at start (a database, a vector store, a cache) that Viva does not run yet"
    if _LIBRARY_IMPORT_ERROR.search(log) and _TRACEBACK_FILE_ANY.search(log) and not _raised_in_repo(log):
        return f"the installed libraries do not work together in this sandbox: {_last_error(log)}"
    if not facts.install_ok and not _raised_in_repo(log):
        return "the dependencies did not install in the sandbox, and the app did not start without them"
    if facts.candidate.tier == "inferred" and _GUESS_WRONG.search(log) and not _raised_in_repo(log):
        return f"Viva's guess `{facts.candidate.command}` did not start the app ({_last_error(log)})"
    return None


def _unserved_provider(log: str) -> str | None:
    """An app that needs a provider the gateway does not serve (Gemini, Cohere, Bedrock, …): its key or its host in
    the last lines of the log (`ValueError: GEMINI_API_KEY not found`, a connection to generativelanguage…)."""
    tail = "\n".join(log.splitlines()[-25:])
    for provider in UNSERVED_PROVIDERS:
        named = [var for var in provider.env_vars if re.search(rf"\b{var}\b", tail)]
        named += [host for host in provider.hosts if "*" not in host and host in tail]
        if named:
            return (
                f"the app needs {provider.name} ({named[0]}), a provider Viva's gateway does not serve, so its "
                "model-dependent checks cannot run"
            )
    return None


def _not_found(log: str) -> list[str]:
    return [match.rsplit("/", 1)[-1] for match in _COMMAND_NOT_FOUND.findall(log)]


def _installed_by(run_steps: list[str], names: list[str]) -> tuple[str, str] | None:
    """The first of `names` (a missing module or command) that a skipped RUN step installs, with that step."""
    for name in names:
        word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.I)
        for step in run_steps:
            if re.search(r"\b(?:pip3?|uv pip|poetry|conda|apt(?:-get)?|apk|npm)\b", step) and word.search(step):
                return name, step
    return None


def _raised_in_repo(log: str) -> bool:
    """The traceback's innermost frame is the project's own file (not a library's, not Viva's command)."""
    frames = _TRACEBACK_FILE_ANY.findall(log)
    if not frames:
        return False
    path = frames[-1][0]
    return path.startswith("/work/app/") and "/site-packages/" not in path and "/.venv/" not in path


def _last_error(log: str) -> str:
    errors = _EXCEPTION_LINE.findall(log)
    if errors:
        return str(errors[-1]).strip()[:300]
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalised(names: list[str]) -> frozenset[str]:
    """PEP 503 names (and their import spellings) of requirement strings ("Flask-Cors>=4" → flask-cors)."""
    found = set()
    for text in names:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
        if match:
            found.add(_normalise(match.group(1)))
            found.add(_normalise(match.group(1)).replace("-", "_"))
    return frozenset(found)
