"""Finding how to talk to the candidate's app: the manifest first, then the app's own OpenAPI document and the
static profile, then the shape of a live answer. Nothing here knows any particular app; names are matched by
the vocabulary RAG services use (question/query/prompt in, answer/response out, citations/sources, cost).

What cannot be found is listed in `missing`, with a viva.toml paragraph the candidate can add.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import msgspec

from grader.dynamic.model import AppInterface
from grader.profile import RepoProfile
from grader.profile.goldens import golden_inputs
from grader.profile.manifest import Manifest
from grader.profile.model import StartCandidate

QUESTION_FIELDS = ("question", "query", "q", "prompt", "message", "input", "text", "user_input", "msg", "question_text")
ANSWER_FIELDS = ("answer", "response", "result", "output", "reply", "completion", "text", "content", "message")
CITATION_FIELDS = ("citations", "sources", "references", "refs", "documents", "context", "source_documents", "cited")
COST_FIELDS = ("cost_usd", "cost", "usd", "total_cost", "price_usd", "spend_usd", "cost_dollars")
DOCUMENT_FIELDS = ("text", "document", "content", "body", "doc")
QUERY_PATH_HINTS = re.compile(r"ask|query|chat|answer|question|search|rag|qa|complet|generate", re.I)
INGEST_PATH_HINTS = re.compile(r"ingest|document|docs|upload|index|add|corpus|knowledge", re.I)
OPENAPI_PATHS = ("/openapi.json", "/schema/openapi.json", "/docs/openapi.json", "/swagger.json", "/apispec_1.json")
BUDGET_ENV = re.compile(
    r"""(?:environ(?:\.get)?\s*[\[(]\s*|getenv\s*\(\s*)["']([A-Z][A-Z0-9_]*(?:BUDGET|CEILING|SPEND|MAX_COST|COST_LIMIT|LIMIT_USD)[A-Z0-9_]*)["']"""
)
PORT_IN_COMMAND = re.compile(r"(?:--port[ =]|-p |--bind[ =][\w.]*:|:)(\d{2,5})\b")
GENERIC_QUESTIONS = [
    "What does this project do?",
    "How is the system deployed?",
    "What happens when a request fails?",
    "How are documents split into chunks?",
    "Which model answers the questions?",
    "How is cost tracked?",
    "How fast is a typical answer?",
    "What data does the assistant use?",
    "How are answers evaluated?",
    "Who maintains this service?",
]
MAX_GOLDEN = 500
FRAMEWORK_PORTS = {"flask": 5000, "quart": 5000, "streamlit": 8501, "gradio": 7860}
DOCUMENTED_ROUTE = re.compile(
    r"curl\b[^\n]*?(?:-X\s*(?P<method>GET|POST|PUT)\b[^\n]*?)?(?:https?://)?(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::\d+)?"
    r"(?P<curl>/[\w/{}.-]*)|\b(?P<verb>GET|POST|PUT)\s+`?(?P<path>/[\w/{}.-]+)"
)
PROVIDER_VARIABLE = re.compile(
    r"^(?:OPENAI|AZURE_OPENAI|ANTHROPIC|GROQ|MISTRAL|COHERE|GEMINI|GOOGLE|TOGETHER|OPENROUTER|DEEPSEEK|LITELLM|"
    r"OLLAMA|HF|HUGGINGFACE(?:HUB)?)_\w*(?:KEY|TOKEN|URL|BASE|ENDPOINT|HOST)\w*$"
)


def plan_interface(profile: RepoProfile, root: Path, budget_variable: str | None) -> AppInterface:
    """Everything knowable before the app starts: how to start it, its evals, its budget variable, its goldens."""
    manifest = _manifest(profile)
    found = AppInterface()
    if manifest is not None:
        found.start_command, found.start_source = manifest.app.start, "viva.toml [app].start"
        found.start_tier, found.workdir, found.setup = "declared", manifest.app.workdir, list(manifest.app.setup)
        found.port, found.health = manifest.app.port, manifest.app.health or None
        found.startup_seconds, found.env = manifest.app.startup_seconds, dict(manifest.app.env)
        if manifest.query is not None:
            found.query_path, found.query_method = manifest.query.path, manifest.query.method
            found.request_template = manifest.query.request
            found.answer_pointer = manifest.query.answer
            found.citations_pointer = manifest.query.citations
            found.cost_pointer = manifest.query.cost
            found.query_source = "viva.toml [query]"
        if manifest.ingest is not None:
            found.ingest_path, found.ingest_method = manifest.ingest.path, manifest.ingest.method
            found.ingest_template = manifest.ingest.request
        if manifest.evals is not None:
            found.evals_command, found.evals_source = manifest.evals.command, "viva.toml [evals].command"
            found.evals_cases_path = manifest.evals.cases
        if manifest.budget is not None:
            found.budget_env, found.budget_source = manifest.budget.env, "viva.toml [budget].env"
            found.alert_pattern = manifest.budget.alert
        if manifest.golden is not None:
            found.golden_path = manifest.golden.queries
    elif profile.starts:
        use_start(found, profile.starts[0])
    if found.budget_env is None:
        found.budget_env, found.budget_source = _budget_env(profile, root, budget_variable)
    if found.evals_command is None:
        found.evals_command, found.evals_source = _detect_evals(profile, root)
    _goldens(found, profile, root)
    found.documented_routes, found.documented_fields = documented_routes(root)
    if found.start_command is None:
        found.missing.append("start")
    if found.evals_command is None:
        found.missing.append("evals")
    if found.budget_env is None:
        found.missing.append("budget")
    return found


def documented_routes(root: Path) -> tuple[list[str], dict[str, str]]:
    """Routes the README and docs show how to call (a curl to localhost, "POST /ask"), in order, at most ten, and
    the field each one's example body sends first, when it shows one."""
    routes: list[str] = []
    fields: dict[str, str] = {}
    docs = sorted(root.glob("README*")) + sorted(root.glob("docs/*.md"))
    for path in docs[:20]:
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_text(errors="replace")[:500_000]
        for match in DOCUMENTED_ROUTE.finditer(text):
            route = (match.group("curl") or match.group("path") or "").rstrip(".,)")
            line = text[match.start() : text.find("\n", match.end()) if "\n" in text[match.end() :] else len(text)]
            verb = match.group("method") or match.group("verb")
            method = verb or ("POST" if re.search(r"\s(?:-d|--data|--json)\b", line) else "GET")
            entry = f"{method} {route}"
            if not route or route in {"/", "/docs", "/health", "/healthz", "/openapi.json"} or entry in routes:
                continue
            routes.append(entry)
            body_field = re.search(r"""(?:-d|--data(?:-raw)?|--json)\s+['"]?\{\s*\\?"(\w+)\\?"\s*:""", line)
            if body_field:
                fields[entry] = body_field.group(1)
    return routes[:10], fields


def use_start(found: AppInterface, start: StartCandidate, port: int | None = None) -> None:
    """Start the app the way `start` says (detected, so no health route is known: any answer means ready)."""
    found.start_command = start.command
    found.start_source = f"{start.source} ({start.tier}, {start.evidence.location})"
    found.start_tier, found.workdir, found.setup = start.tier, start.workdir, list(start.setup)
    found.port = port or start_port(start)
    found.env = provider_free(start.env)
    found.health = None


def start_port(start: StartCandidate) -> int:
    """Where the app will listen: what the source said, else the command, else its framework's default."""
    if start.port is not None:
        return start.port
    if start.env.get("PORT", "").isdigit():
        return int(start.env["PORT"])  # ENV PORT=7000 read by an entrypoint script
    stated = PORT_IN_COMMAND.search(start.command)
    if stated:
        return int(stated.group(1))
    return next((port for word, port in FRAMEWORK_PORTS.items() if word in start.command), 8000)


def provider_free(env: dict[str, str]) -> dict[str, str]:
    """The project's own variables without its provider endpoints and keys: those point at the gateway."""
    return {name: value for name, value in env.items() if not PROVIDER_VARIABLE.match(name)}


def discover_query(found: AppInterface, openapi: dict[str, Any] | None, profile: RepoProfile) -> None:
    """Fill the query and ingest routes from the app's OpenAPI document, else from the routes the profile saw."""
    if found.query_path is None and openapi is not None:
        _from_openapi(found, openapi)
    if found.query_path is None:
        _from_profile_routes(found, profile)
    if found.query_path is None and "query" not in found.missing:
        found.missing.append("query")


def infer_pointers(found: AppInterface, reply: Any) -> None:
    """Where the answer, citations and cost sit, read from a live answer when no schema or manifest said so."""
    if isinstance(reply, str):
        found.answer_pointer = found.answer_pointer or ""
        return
    if not isinstance(reply, dict):
        return
    if found.answer_pointer is None:
        found.answer_pointer = _pointer_to(reply, ANSWER_FIELDS, str)
    if found.citations_pointer is None:
        found.citations_pointer = _pointer_to(reply, CITATION_FIELDS, list)
    if found.cost_pointer is None:
        found.cost_pointer = _pointer_to(reply, COST_FIELDS, (int, float))
        if found.cost_pointer is None and isinstance(reply.get("usage"), dict):
            inner = _pointer_to(reply["usage"], COST_FIELDS, (int, float))
            found.cost_pointer = f"/usage{inner}" if inner else None
    if found.answer_pointer is None:
        found.notes.append("the answer's field could not be recognised; the whole response body is read as the answer")
        found.answer_pointer = ""


def resolve_pointer(document: Any, pointer: str | None) -> Any:
    """RFC 6901 JSON pointer; None when it does not resolve."""
    if pointer is None:
        return None
    if pointer == "":
        return document
    current = document
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def manifest_snippet(found: AppInterface) -> str:
    """The viva.toml paragraph that would have told Viva what it could not find."""
    lines = ["manifest_version = 1", "", "[app]"]
    lines.append(f"start = {json.dumps(found.start_command or 'uvicorn app.main:app --host 127.0.0.1 --port 8000')}")
    if found.workdir:
        lines.append(f"workdir = {json.dumps(found.workdir)}")
    if found.setup:
        lines.append(f"setup = {json.dumps(found.setup)}")
    lines.append(f"port = {found.port}")
    # A detected start has no known health route: "/" is what Viva waited on (any answer), a manifest's own stays.
    lines.append(
        f'health = "{found.health or "/health"}"'
        if found.health
        else '# health = "/health"  # a route that answers 200 once the app is ready'
    )
    if found.env:
        lines += ["", "[app.env]"] + [f"{name} = {json.dumps(value)}" for name, value in sorted(found.env.items())]
    if "query" in found.missing or found.query_path is None:
        lines += ["", "[query]", 'path = "/ask"', 'method = "POST"', 'request = \'{"question": "{question}"}\'']
        lines += ['answer = "/answer"', 'citations = "/citations"', 'cost = "/cost_usd"']
    if "evals" in found.missing:
        lines += ["", "[evals]", 'command = "python -m pytest -q evals"', 'cases = "evals/golden.jsonl"']
    if "budget" in found.missing:
        lines += ["", "[budget]", 'env = "APP_BUDGET_USD"  # the variable your app reads its spending ceiling from']
    if "golden" in found.missing:
        lines += ["", "[golden]", 'queries = "evals/golden.jsonl"']
    return "\n".join(lines)


# --- the pieces ---------------------------------------------------------------------------------------------


def _manifest(profile: RepoProfile) -> Manifest | None:
    if profile.manifest is None:
        return None
    try:
        return msgspec.convert(profile.manifest, Manifest)
    except msgspec.ValidationError:
        return None


def _budget_env(profile: RepoProfile, root: Path, configured: str | None) -> tuple[str | None, str]:
    if configured:
        return configured, "the rubric's budget_variable"
    places = [item.path for item in profile.cost.ceilings] + [item.path for item in profile.cost.accounting]
    places += [path.relative_to(root).as_posix() for path in sorted(root.rglob("*.py"))[:400] if path.is_file()]
    for relative in dict.fromkeys(places):
        path = root / relative
        try:
            text = path.read_text(errors="replace")[:200_000]
        except OSError:
            continue
        match = BUDGET_ENV.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            return match.group(1), f"read from the environment at {relative}:{line}"
    return None, ""


def _detect_evals(profile: RepoProfile, root: Path) -> tuple[str | None, str]:
    for directory in ("evals", "eval", "evaluation", "tests/evals"):
        folder = root / directory
        if folder.is_dir() and any(folder.glob("test_*.py")):
            return f"python -m pytest -q {directory}", f"pytest files in {directory}/"
    files = sorted({item.path for item in profile.evals.parametrized_evidence if item.path.endswith(".py")})
    if files:
        return "python -m pytest -q " + " ".join(shlex.quote(path) for path in files), "eval parametrizations in tests"
    for pattern in ("evals/run*.py", "eval*/run*.py", "run_evals.py", "evaluate.py", "evals/*.py"):
        scripts = sorted(path for path in root.glob(pattern) if path.is_file() and not path.name.startswith("_"))
        if scripts:
            relative = scripts[0].relative_to(root).as_posix()
            return f"python {shlex.quote(relative)}", f"eval script {relative}"
    return None, ""


def _goldens(found: AppInterface, profile: RepoProfile, root: Path) -> None:
    candidates = [found.golden_path, found.evals_cases_path]
    candidates += [
        item.path for item in sorted(profile.evals.golden_sets, key=lambda g: (not g.hand_written, -g.cases))
    ]
    for relative in filter(None, candidates):
        path = (root / relative).resolve()
        if not path.is_file() or not path.is_relative_to(root.resolve()):
            continue
        questions = golden_inputs(relative, path.read_text(errors="replace")[:5_000_000], MAX_GOLDEN)
        if questions:
            found.golden_path = relative
            found.golden_queries = [question[:2000] for question in questions]
            return
    found.golden_queries = list(GENERIC_QUESTIONS)
    found.missing.append("golden")
    found.notes.append("no golden query set was found; latency and citations used Viva's generic questions")


def _from_openapi(found: AppInterface, document: dict[str, Any]) -> None:
    best: tuple[int, str, str, str, dict[str, Any]] | None = None
    ingest: tuple[str, str, str] | None = None
    for path, operations in (document.get("paths") or {}).items():
        if not isinstance(operations, dict) or "{" in path:
            continue
        for method, operation in operations.items():
            if method.upper() not in ("GET", "POST", "PUT") or not isinstance(operation, dict):
                continue
            fields = _input_fields(document, method.upper(), operation)
            rank = 2 * bool(QUERY_PATH_HINTS.search(path))
            question = next((name for name in QUESTION_FIELDS if name in fields), None)
            if question and method.upper() in ("GET", "POST"):
                score = rank + (3 if question in ("question", "query", "q", "prompt") else 1)
                if best is None or score > best[0]:
                    best = (score, path, method.upper(), question, operation)
            document_field = next((name for name in DOCUMENT_FIELDS if name in fields), None)
            if document_field and method.upper() in ("POST", "PUT") and INGEST_PATH_HINTS.search(path):
                ingest = ingest or (path, method.upper(), document_field)
    if best is None:
        return
    _, path, method, field, chosen = best
    _response_pointers(found, document, chosen)
    found.query_path, found.query_method = path, "GET" if method == "GET" else "POST"
    found.request_template = field if method == "GET" else json.dumps({field: "{question}"})
    found.query_source = f"the app's OpenAPI document ({method} {path})"
    if ingest and found.ingest_path is None and ingest[0] != path:
        found.ingest_path, found.ingest_method = ingest[0], "PUT" if ingest[1] == "PUT" else "POST"
        found.ingest_template = json.dumps({ingest[2]: "{document}"})


def _input_fields(document: dict[str, Any], method: str, operation: dict[str, Any]) -> set[str]:
    if method == "GET":
        return {
            str(p.get("name"))
            for p in operation.get("parameters") or []
            if isinstance(p, dict) and p.get("in") == "query"
        }
    content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    return set(_properties(document, content.get("schema")))


def _response_pointers(found: AppInterface, document: dict[str, Any], operation: dict[str, Any]) -> None:
    responses = operation.get("responses") or {}
    ok = responses.get("200") or responses.get("201") or {}
    schema = (((ok.get("content") or {}).get("application/json")) or {}).get("schema")
    properties = _properties(document, schema)
    if not properties:
        return
    found.answer_pointer = found.answer_pointer or next((f"/{n}" for n in ANSWER_FIELDS if n in properties), None)
    found.citations_pointer = found.citations_pointer or next(
        (f"/{n}" for n in CITATION_FIELDS if n in properties), None
    )
    found.cost_pointer = found.cost_pointer or next((f"/{n}" for n in COST_FIELDS if n in properties), None)


def _properties(document: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > 5:
        return {}
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        target: Any = document
        for part in reference[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _properties(document, target, depth + 1)
    for combined in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(combined), list):
            merged: dict[str, Any] = {}
            for part in schema[combined]:
                merged |= _properties(document, part, depth + 1)
            return merged
    properties = schema.get("properties")
    return dict(properties) if isinstance(properties, dict) else {}


def _from_profile_routes(found: AppInterface, profile: RepoProfile) -> None:
    for route in sorted(profile.routes, key=lambda r: not QUERY_PATH_HINTS.search(r.path)):
        if "{" in route.path or route.method.upper() not in ("GET", "POST"):
            continue
        question = next((name for name in QUESTION_FIELDS if name in route.request_fields), None)
        if question is None:
            continue
        found.query_path, found.query_method = route.path, "GET" if route.method.upper() == "GET" else "POST"
        found.request_template = question if found.query_method == "GET" else json.dumps({question: "{question}"})
        found.query_source = f"the static profile ({route.method} {route.path} at {route.evidence.location})"
        found.answer_pointer = found.answer_pointer or next(
            (f"/{n}" for n in ANSWER_FIELDS if n in route.response_fields), None
        )
        found.citations_pointer = found.citations_pointer or next(
            (f"/{n}" for n in CITATION_FIELDS if n in route.response_fields), None
        )
        found.cost_pointer = found.cost_pointer or next(
            (f"/{n}" for n in COST_FIELDS if n in route.response_fields), None
        )
        return


def _pointer_to(reply: dict[str, Any], names: tuple[str, ...], kind: type | tuple[type, ...]) -> str | None:
    for name in names:
        if name in reply and isinstance(reply[name], kind) and not isinstance(reply[name], bool):
            return "/" + name.replace("~", "~0").replace("/", "~1")
    return None
