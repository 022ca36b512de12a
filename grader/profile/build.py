"""build_profile(): one walk over the snapshot, each file read once, facts merged into a RepoProfile."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import re2  # type: ignore[import-untyped]

from grader.model import Evidence
from grader.profile import ci, deps, docs, goldens
from grader.profile.hidden import hidden_lines, visible_text
from grader.profile.manifest import MANIFEST_NAME, parse_manifest
from grader.profile.model import (
    MAX_EVIDENCE,
    CitationFacts,
    ContainerFacts,
    CostFacts,
    Dependencies,
    DependencyFile,
    EvalFacts,
    GoldenSet,
    InjectionFacts,
    LanguageStat,
    LatencyFacts,
    Note,
    ProfileLimits,
    ReadmeFacts,
    RepoProfile,
    ResilienceFacts,
    Route,
    TestFacts,
    Usage,
    Workflow,
)
from grader.profile.notebooks import notebook_code
from grader.profile.python_facts import PythonFacts, RawRoute, analyse_python, read_prompt
from grader.profile.script_prompts import SCRIPT_SUFFIXES, template_literals
from grader.profile.starts.detect import declared_start, detect_starts
from grader.profile.walk import RawFile, Skipped, walk_files

LANGUAGES = {
    ".py": "Python",
    ".ipynb": "Jupyter",
    ".js": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".jsx": "JavaScript",
    ".go": "Go",
    ".rs": "Rust",
    ".java": "Java",
    ".rb": "Ruby",
    ".sh": "Shell",
    ".html": "HTML",
    ".css": "CSS",
    ".md": "Markdown",
    ".rst": "reStructuredText",
    ".toml": "TOML",
    ".yaml": "YAML",
    ".yml": "YAML",
    ".json": "JSON",
    ".jsonl": "JSON Lines",
    ".sql": "SQL",
    ".csv": "CSV",
    ".txt": "Text",
}

LIBRARIES: dict[str, tuple[str, str]] = {
    **{
        name: (name, "framework")
        for name in ("fastapi", "flask", "litestar", "django", "starlette", "streamlit", "gradio", "aiohttp")
    },
    **{
        name: (name, "llm_sdk")
        for name in (
            "openai",
            "anthropic",
            "litellm",
            "pydantic_ai",
            "cohere",
            "mistralai",
            "transformers",
            "ollama",
            "groq",
            "instructor",
            "dspy",
        )
    },
    "langchain": ("langchain", "llm_sdk"),
    "langchain_core": ("langchain", "llm_sdk"),
    "langchain_openai": ("langchain", "llm_sdk"),
    "llama_index": ("llama_index", "llm_sdk"),
    "google.genai": ("google-genai", "llm_sdk"),
    "google.generativeai": ("google-genai", "llm_sdk"),
    **{
        name: (name, "vector_store")
        for name in (
            "chromadb",
            "faiss",
            "pinecone",
            "weaviate",
            "pgvector",
            "lancedb",
            "pymilvus",
            "qdrant_client",
            "elasticsearch",
            "opensearchpy",
            "redisvl",
        )
    },
    **{
        name: (name, "eval_framework")
        for name in ("ragas", "deepeval", "trulens", "trulens_eval", "inspect_ai", "promptfoo", "evals", "pytest")
    },
    **{name: (name, "guardrail") for name in ("guardrails", "nemoguardrails", "llm_guard", "rebuff", "lakera")},
}
DEPENDENCY_ALIASES = {
    "qdrant-client": "qdrant_client",
    "llama-index": "llama_index",
    "faiss-cpu": "faiss",
    "google-genai": "google.genai",
    "google-generativeai": "google.generativeai",
    "pydantic-ai": "pydantic_ai",
    "pydantic-ai-slim": "pydantic_ai",
    "llm-guard": "llm_guard",
    "nemoguardrails": "nemoguardrails",
    "guardrails-ai": "guardrails",
    "trulens-eval": "trulens_eval",
    "inspect-ai": "inspect_ai",
    "opensearch-py": "opensearchpy",
}
_CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".ini", ".cfg", ".env", ".json")
_BUDGET_SETTING = re.compile(
    r"^\s*[\"']?(?:export\s+)?[\w.-]*(?:budget|spend(?:ing)?_?limit|max_?(?:cost|spend)|cost_?(?:limit|cap|ceiling))"
    r"[\w-]*[\"']?\s*[:=]\s*[\"']?\$?\d",
    re.I,
)
"""`MAX_DAILY_BUDGET_USD=5`, `cost_limit: 10`, `monthly_budget = 200`: a number set as a spending limit."""
_QUANTILE_RULE = re.compile(r"histogram_quantile\s*\(\s*0?\.9[059]?\b|quantile\s*=\s*[\"']?0?\.9[059]", re.I)
"""A Prometheus or Grafana expression over a latency histogram's p90/p95/p99."""
_RULE_BOUND = re.compile(r"\)\s*(?:>=?|<=?)\s*\d|\bthreshold\s*:\s*\d", re.I)
"""…compared with a bound: an alert rule (`histogram_quantile(0.95, …) > 2`)."""
_BOUND_LINE = re.compile(r"^\s*(?:>=?|<=?)\s*\d")
"""A multi-line expr's last line: `  > 2`."""
_LOAD_THRESHOLD = re.compile(r"[\"']p\(9[059]\)\s*<\s*\d|^\s*[\"']?p9[059][\"']?\s*:\s*\d", re.I)
"""A load test's percentile target: k6's `http_req_duration: ['p(95)<500']`, Artillery's `ensure: {p95: 200}`."""
_LATENCY_CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json", ".js", ".mjs", ".ts")
_RED_TEAM_CONFIG = re.compile(r"^\s*redteam\s*:|promptfoo\s+redteam|-m\s+garak\b|\bgarak\s+--", re.I)
FLAGGED_HIDDEN = frozenset({"invisible characters", "invisible markup", "an encoded blob"})
"""Hidden text worth a reviewer's eye in the report (HTML comments are ordinary; those that address a grader are
flagged as such already)."""
_TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")
_EVAL_PATH = re.compile(r"eval|golden", re.I)
_DOCS_PATH = re.compile(r"(^|/)(docs?|documentation)/", re.I)
"""Documentation: a notebook there is a tutorial of the library, not the project's code (and docs are never
evidence of behaviour)."""
_TOOLING_PATH = re.compile(r"(^|/)(scripts?|tools|notebooks?|examples?|migrations|benchmarks?|docs)/", re.I)
"""Folders of one-off tooling beside the application (data exports, migrations, demos): what a function there
screens is not what the app's requests pass through."""
# Two RE2 patterns (linear time, over bytes) decide which files deserve a closer look. A file that matches
# neither is counted and sized but not decoded or parsed — which keeps profiling a large tree near the cost of
# reading it. FACT_SCREEN holds what the detailed analyses key on (imports of AI and web libraries, AI-app
# vocabulary, route decorators, parametrized tests, data that may be a golden set); docs.GRADER_SCREEN holds
# the anchors of text addressed to a grader. SCREEN is their union, run once per file.
_FACT_WORDS = (
    rb"(?i:\b(?:import|from)\s+(?:openai|anthropic|litellm|pydantic_ai|cohere|mistralai|ollama|transformers|fastapi|"
    rb"flask|litestar|starlette|django|aiohttp|uvicorn|gradio|streamlit|tenacity|backoff|langchain\w*|llama_index|"
    rb"chromadb|faiss|qdrant_client|pinecone|weaviate|pgvector|lancedb|pymilvus|ragas|deepeval|trulens\w*|inspect_ai|"
    rb"guardrails|nemoguardrails|llm_guard|rebuff|lakera|httpx|requests|prometheus_client|genai_prices|tokencost)\b|"
    rb"budget|citation|\bcite[sd]?\b|prompt.?injection|injection.?(?:prompt|guard|pattern|attempt|test|probe|detect)|"
    rb"(?:looks_like|detect|is|check|screen|block|contains)_?injection|jailbreak|system_prompt|golden|\.jsonl|"
    rb"evals?/|parametrize|max_retries|@retry|\bllm|quantiles?\(|percentile\(|\busd\b|_usd\b|total_cost|"
    rb"\bspent\b|locust|langsmith|langfuse|opentelemetry|\bweave\b|tracing_v2|_tokens\b|usage_metadata|token_usage|"
    rb"source_documents|sourcedocuments|source_nodes|metadata\.get\(|metadata\[|\{context\}|<context>|perf_counter|"
    rb"elapsed|latenc|red_?team|guard|moderat|sanitiz|inject|screen_|ignore \S* ?(?:previous|prior))|"
    rb"\?[\"']|\bPROMPT|\bTEMPLATE|@(?:app|router|api|bp|blueprint)\.|"
    rb"@(?:get|post|put|patch|delete)\(\s*[\"']/"
)
FACT_SCREEN = re2.compile(_FACT_WORDS)
SCREEN = re2.compile(_FACT_WORDS + b"|" + docs.GRADER_SCREEN_WORDS)
_README_START = re.compile(r"(uvicorn|gunicorn|hypercorn|flask run|litestar run|streamlit run|python3? [\w/]+\.py)")


class _Collector:
    """Accumulates facts file by file; `finish()` resolves what spans files."""

    def __init__(self, root: Path, limits: ProfileLimits) -> None:
        self.root = root
        self.limits = limits
        self.paths: set[str] = set()
        self.total_bytes = 0
        self.languages: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.skipped: list[Note] = []
        self.notes: list[Note] = []
        self.dependency_files: list[DependencyFile] = []
        self.lock_files: list[str] = []
        self.refused: list[Evidence] = []
        self.usages: dict[tuple[str, str], list[Evidence]] = defaultdict(list)
        self.prompts: list[Evidence] = []
        self.workflows: list[ci.RawWorkflow] = []
        self.goldens: list[tuple[str, goldens.GoldenParse, Evidence]] = []
        self.readme: ReadmeFacts | None = None
        self.container = ContainerFacts()
        self.procfile: Evidence | None = None
        self.manifest: dict[str, object] | None = None
        self.manifest_problems: list[str] = []
        self.manifest_start: Evidence | None = None
        self.grader_addressed: list[Evidence] = []
        self.readme_commands: list[Evidence] = []
        self.written_names: set[str] = set()
        self.classes: dict[str, list[str]] = {}
        self.raw_routes: list[tuple[RawRoute, Evidence]] = []
        self.apps: list[tuple[str, str, str, Evidence]] = []
        self.run_calls: list[tuple[str, Evidence]] = []
        self.test_files = 0
        self.test_functions = 0
        self.test_param_cases = 0
        self.test_evidence: list[Evidence] = []
        self.eval_param_cases = 0
        self.eval_param_evidence: list[Evidence] = []
        self.facts: dict[str, list[Evidence]] = defaultdict(list)
        self.injection_test_cases = 0
        self.answer_test_cases = 0
        self.parametrized_files: set[str] = set()

    # --- per file ---------------------------------------------------------------------------------------

    def add(self, item: RawFile | Skipped) -> None:
        self.paths.add(item.path)
        self.total_bytes += item.size
        if isinstance(item, Skipped):
            self.skipped.append(Note(item.path, item.reason))
            return
        stat = self.languages[LANGUAGES.get(Path(item.path).suffix.lower(), "Other")]
        stat[0] += 1
        stat[1] += item.data.count(b"\n") + (0 if item.data.endswith(b"\n") or not item.data else 1)
        stat[2] += item.size
        name = item.path.rsplit("/", 1)[-1]
        screened = SCREEN.search(item.data) is not None
        facts_wanted = screened and FACT_SCREEN.search(item.data) is not None
        is_python = item.path.endswith(".py")
        if is_python and not facts_wanted and _TEST_PATH.search(item.path):
            self._count_tests_cheaply(item.data)
        is_script = item.path.lower().endswith(SCRIPT_SUFFIXES)
        if not screened and not self._needs_text(item.path, name) and not (is_script and b"`" in item.data):
            return
        text, replaced = item.decode()
        if replaced:
            self.notes.append(Note(item.path, "not UTF-8: read with replacement characters"))
        lines = text.splitlines()
        if screened:
            self.grader_addressed += docs.grader_addressed(item.path, text, MAX_EVIDENCE)
        if docs.is_readme(item.path) or item.path.lower().endswith((".md", ".html", ".htm", ".rst")):
            # Text planted where a reader cannot see it is flagged in the report, and is never evidence.
            self.grader_addressed += [
                Evidence(item.path, number, lines[number - 1].strip()[:200], f"hidden: {kind}")
                for number, kind in list(hidden_lines(item.path, text).items())[:MAX_EVIDENCE]
                if kind in FLAGGED_HIDDEN
            ]
        if is_python and facts_wanted:
            self._python(item.path, text, lines)
        elif facts_wanted and item.path.lower().endswith(".ipynb") and not _DOCS_PATH.search(item.path):
            self._notebook(item.path, text)
        elif is_script and not _DOCS_PATH.search(item.path):
            self._script_prompts(item.path, text, lines)
        self._by_name(item.path, name, text, lines)

    @staticmethod
    def _needs_text(path: str, name: str) -> bool:
        """Files read for what they are, whatever words they hold."""
        return (
            deps.is_dependency_file(name)
            or name.lower() in deps.LOCK_FILES
            or ci.is_workflow(path)
            or goldens.is_golden_candidate(path)
            or docs.is_readme(path)
            or docs.is_dockerfile(path)
            or docs.is_compose(path)
            or path.lower() == "procfile"
            or path == MANIFEST_NAME
            or path.lower().endswith(docs.PROMPT_EXTENSIONS)
            or "prompt" in path.lower()
        )

    def _count_tests_cheaply(self, data: bytes) -> None:
        """Test functions in a test file that names nothing else of interest: no parse needed to count them."""
        count = data.count(b"def test")
        if count:
            self.test_files += 1
            self.test_functions += count

    def _by_name(self, path: str, name: str, text: str, lines: list[str]) -> None:
        if deps.is_dependency_file(name):
            self._dependencies(path, text)
        if name.lower() in deps.LOCK_FILES:
            self.lock_files.append(path)
        if ci.is_workflow(path):
            self.workflows.append(ci.parse_workflow(path, text))
        if goldens.is_golden_candidate(path):
            self._golden(path, text)
        if docs.is_readme(path) and self.readme is None:
            # Sections a reader can see: a heading in an HTML comment or invisible markup is no section.
            self.readme = ReadmeFacts(path, len(lines), docs.readme_sections(path, visible_text(path, text)))
            self.readme_commands = [
                Evidence(path, number, line.strip()[:200])
                for number, line in enumerate(lines, start=1)
                if _README_START.search(line)
            ]
        if docs.is_dockerfile(path):
            self.container.dockerfiles.append(Evidence(path, 1, lines[0].strip()[:200] if lines else ""))
            self.container.commands.extend(docs.docker_commands(path, text))
        if docs.is_compose(path):
            self.container.compose_files.append(Evidence(path, 1, lines[0].strip()[:200] if lines else ""))
        if path.lower() == "procfile":
            self.procfile = docs.procfile_web(path, text)
        if path == MANIFEST_NAME:
            self._manifest(path, text, lines)
        if docs.is_prompt_file(path, text):
            self.prompts.append(Evidence(path, 1, lines[0].strip()[:200] if lines else ""))
            self._prompt_file(path, text, lines)
        self._configuration(path, name, lines)

    def _script_prompts(self, path: str, text: str, lines: list[str]) -> None:
        """Prompts in JavaScript/TypeScript template literals, read like prompt files (profile/script_prompts.py)."""
        for first, literal in template_literals(text):
            self.prompts.append(Evidence(path, first, lines[first - 1].strip()[:200] if first <= len(lines) else ""))
            self._prompt_file(path, literal, lines, offset=first - 1, note="a prompt in a template literal")

    def _prompt_file(
        self, path: str, text: str, lines: list[str], *, offset: int = 0, note: str = "the prompt file"
    ) -> None:
        """A prompt kept in its own file (prompts/system.txt, a .j2 template) is read like one in code; `offset`
        places a prompt found inside a larger file (a template literal) on that file's lines."""
        reading = read_prompt(text)

        def at(number: int) -> Evidence:
            number += offset
            excerpt = lines[number - 1].strip()[:200] if 0 < number <= len(lines) else ""
            return Evidence(path, number, excerpt, note)

        if reading.gesture:
            self.facts["prompt_gestures"].append(at(reading.gesture_line))
        if reading.cites:
            self.facts["citation_prompts"].append(at(reading.cite_line))
        elif reading.asks_for_sources:
            self.facts["citation_asks"].append(at(reading.cite_line))

    def _configuration(self, path: str, name: str, lines: list[str]) -> None:
        """Configuration read as data: a spending limit set in YAML/TOML/env files, a red-team configuration,
        latency percentiles with a bound (alert rules, load-test thresholds)."""
        lower = name.lower()
        if lower.endswith(_LATENCY_CONFIG_SUFFIXES):
            self._latency_configuration(path, lines)
        if not (lower.endswith(_CONFIG_SUFFIXES) or lower.startswith(".env")):
            return
        for number, line in enumerate(lines, start=1):
            if _BUDGET_SETTING.search(line):
                self.facts["budget_settings"].append(Evidence(path, number, line.strip()[:200], "a spending limit"))
            if _RED_TEAM_CONFIG.search(line):
                self.injection_test_cases += 5  # a red-team run generates its attacks: at least the bar's worth
                self.facts["injection_tests"].append(Evidence(path, number, line.strip()[:200], "a red-team run"))

    def _latency_configuration(self, path: str, lines: list[str]) -> None:
        """Percentiles over many requests set in configuration: a Prometheus alert rule on a histogram's p95 (with a
        bound, a target), a k6 or Artillery threshold (a load test with a target). A commented-out line says
        nothing."""
        for number, line in enumerate(lines, start=1):
            if line.lstrip().startswith(("#", "//")):
                continue
            quantile, threshold = _QUANTILE_RULE.search(line), _LOAD_THRESHOLD.search(line)
            if not (quantile or threshold):
                continue
            excerpt = line.strip()[:200]
            if quantile:
                self.facts["percentiles"].append(Evidence(path, number, excerpt, "a percentile of a latency histogram"))
            if threshold:
                self.facts["load_tests"].append(Evidence(path, number, excerpt, "a load-test threshold"))
            after = [line[quantile.end() :]] if quantile else []
            after += [following for following in lines[number : number + 3] if _BOUND_LINE.match(following)][:1]
            if threshold or any(_RULE_BOUND.search(text) or _BOUND_LINE.match(text) for text in after):
                self.facts["latency_targets"].append(Evidence(path, number, excerpt, "a percentile with a bound"))

    def _python(self, path: str, text: str, lines: list[str], *, notebook: bool = False) -> None:
        is_test = not notebook and bool(_TEST_PATH.search(path))
        facts = analyse_python(text, is_test=is_test)
        if facts is None:
            self.notes.append(Note(path, "Python that does not parse: facts from it are missing"))
            return

        def evidence(line: int, note: str = "") -> Evidence:
            excerpt = lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""
            return Evidence(path, line, excerpt, note)

        for module, line in facts.imports:
            library = LIBRARIES.get(module) or LIBRARIES.get(module.split(".")[0])
            if library:
                self.usages[library].append(evidence(line))
        if is_test:
            self._tests(path, facts, evidence)
        if not _TOOLING_PATH.search(path):  # a guard protects the app's own path, not a data-export script's
            for key in ("input_guards", "output_guards"):
                self.facts[key] += [evidence(line) for line in dict.fromkeys(getattr(facts, key))]
        for key in (
            "citation_fields",
            "citation_prompts",
            "citation_validation",
            "cost_accounting",
            "ceilings",
            "alerts_only",
            "timing",
            "percentiles",
            "timeouts",
            "retries",
            "fallbacks",
            "tracing",
            "load_tests",
            "latency_targets",
            "usage_reads",
            "loose_sources",
            "citation_asks",
            "prompt_gestures",
            "eval_harness",
            "budget_settings",
        ):
            self.facts[key] += [evidence(line) for line in dict.fromkeys(getattr(facts, key))]
        for line, cases in facts.injection_tests:  # attack tests, and red-team scans wherever they live
            self.injection_test_cases += cases
            self.facts["injection_tests"].append(evidence(line, f"{cases} case(s)"))
        self.prompts += [evidence(line) for line in facts.prompts]
        self.written_names |= facts.written_names
        self.classes.update(facts.classes)
        if notebook:
            return
        self.raw_routes += [(route, evidence(route.line)) for route in facts.routes]
        module = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        self.apps += [(module, variable, framework, evidence(line)) for variable, framework, line in facts.apps]
        self.run_calls += [(target, evidence(line)) for target, line in facts.run_calls]

    def _notebook(self, path: str, text: str) -> None:
        """A notebook's code read like a module's, on the notebook's own line numbers (grader.profile.notebooks);
        never as a test file, and never as the service Viva starts (a notebook is run by hand)."""
        code = notebook_code(text)
        if code is None:
            self.notes.append(Note(path, "a notebook that is not valid JSON: its code was not read"))
            return
        self._python(path, code, code.splitlines(), notebook=True)

    def _tests(self, path: str, facts: PythonFacts, evidence: Callable[[int, str], Evidence]) -> None:
        if facts.test_functions:
            self.test_files += 1
        is_eval = bool(_EVAL_PATH.search(path))
        for name, line, cases in facts.test_functions:
            self.test_functions += 1
            self.test_param_cases += cases - 1
            self.test_evidence.append(evidence(line, ""))
            if is_eval and cases > 1:
                self.eval_param_cases += cases
                self.eval_param_evidence.append(evidence(line, f"{name}: {cases} parametrized cases"))
        self.parametrized_files |= {name for _, name in facts.parametrized_files}
        counted = {line for _, line, cases in facts.test_functions if is_eval and cases > 1}
        for line, cases in facts.answer_tests:
            if line not in counted:
                self.answer_test_cases += cases
                note = f"asks a question and asserts on the answer ({cases})"
                self.facts["answer_tests"].append(evidence(line, note))

    def _dependencies(self, path: str, text: str) -> None:
        parsed, refused, problem = deps.parse_dependency_file(path, text)
        if problem:
            self.notes.append(Note(path, problem))
        self.refused += refused
        if parsed is None:
            return
        self.dependency_files.append(parsed)
        for requirement in parsed.requirements:
            module = DEPENDENCY_ALIASES.get(requirement.name, requirement.name.replace("-", "_"))
            library = LIBRARIES.get(module)
            if library:
                self.usages[library].append(Evidence(path, requirement.line, requirement.name))

    def _golden(self, path: str, text: str) -> None:
        parsed, problem = goldens.parse_golden(path, text, self.limits.max_golden_records)
        if problem:
            self.notes.append(Note(path, problem))
        if parsed is not None:
            self.goldens.append((path, parsed, goldens.golden_evidence(path, text, parsed.first_line)))

    def _manifest(self, path: str, text: str, lines: list[str]) -> None:
        manifest, problems = parse_manifest(text)
        self.manifest_problems = problems
        self.notes += [Note(path, problem) for problem in problems]
        if manifest is not None:
            self.manifest = msgspec.to_builtins(manifest)
            line = next((n for n, text in enumerate(lines, start=1) if text.strip().startswith("start")), 1)
            self.manifest_start = Evidence(path, line, manifest.app.start[:200])

    # --- across files ------------------------------------------------------------------------------------

    def finish(self) -> RepoProfile:
        golden_sets = [self._golden_set(path, parsed, evidence) for path, parsed, evidence in self.goldens]
        evals = EvalFacts(
            golden_sets=golden_sets,
            parametrized_cases=self.eval_param_cases,
            parametrized_evidence=_cap(self.eval_param_evidence),
            answer_test_cases=self.answer_test_cases,
            answer_test_evidence=_cap(self.facts["answer_tests"]),
            harness=_cap(self.facts["eval_harness"]),
        )
        f = self.facts
        app = self.manifest.get("app") if self.manifest is not None else None
        declared = declared_start(self.manifest_start, app if isinstance(app, dict) else None)
        starts, env_needs = detect_starts(self.root, declared)
        return RepoProfile(
            file_count=len(self.paths),
            total_bytes=self.total_bytes,
            languages=sorted(
                (LanguageStat(name, *stat) for name, stat in self.languages.items()), key=lambda s: -s.lines
            ),
            skipped=self.skipped[:200],
            notes=self.notes[:200],
            dependencies=Dependencies(self.dependency_files, sorted(self.lock_files), _cap(self.refused)),
            usages=[
                Usage(name, category, _cap(items))  # type: ignore[arg-type]
                for (name, category), items in sorted(self.usages.items())
            ],
            prompts=_cap(self.prompts),
            workflows=[self._workflow(raw, evals) for raw in self.workflows],
            tests=TestFacts(self.test_files, self.test_functions, self.test_param_cases, _cap(self.test_evidence)),
            evals=evals,
            injection=InjectionFacts(
                _cap(f["input_guards"]),
                _cap(f["output_guards"]),
                _cap(f["injection_tests"]),
                self.injection_test_cases,
                gestures=_cap(f["prompt_gestures"]),
            ),
            citations=CitationFacts(
                _cap(f["citation_fields"]),
                _cap(f["citation_prompts"]),
                _cap(f["citation_validation"]),
                loose_sources=_cap(f["loose_sources"]),
                asks=_cap(f["citation_asks"]),
            ),
            cost=CostFacts(
                _cap(f["cost_accounting"]),
                _cap(f["ceilings"]),
                _cap(f["alerts_only"]),
                budget_settings=_cap(f["budget_settings"]),
                usage=_cap(f["usage_reads"]),
                tracing=_cap(f["tracing"]),
            ),
            latency=LatencyFacts(
                _cap(f["timing"]),
                _cap(f["percentiles"]),
                tracing=_cap(f["tracing"]),
                load_tests=_cap(f["load_tests"]),
                targets=_cap(f["latency_targets"]),
            ),
            resilience=ResilienceFacts(_cap(f["timeouts"]), _cap(f["retries"]), _cap(f["fallbacks"])),
            routes=[self._route(raw, evidence) for raw, evidence in self.raw_routes][:100],
            readme=self.readme,
            container=ContainerFacts(
                _cap(self.container.dockerfiles), _cap(self.container.commands), _cap(self.container.compose_files)
            ),
            manifest=self.manifest,
            manifest_problems=self.manifest_problems,
            starts=starts,
            env_needs=env_needs,
            grader_addressed=self.grader_addressed[:50],
        )

    def _golden_set(self, path: str, parsed: goldens.GoldenParse, evidence: Evidence) -> GoldenSet:
        base = path.rsplit("/", 1)[-1].lower()
        reason = ""
        if parsed.marked_generated:
            reason = "the file says it was generated"
        elif base in self.written_names:
            reason = "a script in the repository writes this file"
        elif parsed.template_share > 0.5:
            reason = f"{parsed.template_share:.0%} of the inputs are one template with values swapped"
        return GoldenSet(path, parsed.cases, hand_written=not reason, reason=reason, evidence=[evidence])

    def _workflow(self, raw: ci.RawWorkflow, evals: EvalFacts) -> Workflow:
        has_data = evals.hand_written_cases > 0
        real: list[Evidence] = []
        missing: list[Evidence] = []
        for command in raw.commands:
            text = command.excerpt
            is_pytest = bool(re.search(r"\bpytest\b", text))
            # pytest runs an eval suite when some test asks and checks answers, or runs over a golden set's file.
            goldens = {golden.path.rsplit("/", 1)[-1].lower() for golden in evals.golden_sets if golden.hand_written}
            eval_tests = evals.parametrized_cases > 0 or evals.answer_test_cases > 0
            eval_tests = eval_tests or bool(goldens & self.parametrized_files)
            if text.startswith("uses: ") and not ci.EVAL_WORDS.search(text):
                continue  # an ordinary action (checkout, setup-python)
            if not ci.EVAL_WORDS.search(text) and not (is_pytest and eval_tests):
                continue
            if text.startswith("uses: "):
                real.append(command)  # an eval action: its name is not a path in the repository
                continue
            named = ci.eval_paths(text)
            absent = [token for token in named if not self._exists(token)]
            if absent or not has_data:
                why = (
                    f"names {absent[0]!r}, which is not in the repository"
                    if absent
                    else "no eval data in the repository"
                )
                missing.append(Evidence(command.path, command.line, text, why))
            else:
                real.append(command)
        return Workflow(raw.path, raw.triggers, _cap(raw.commands), real, missing, raw.problem)

    def _exists(self, token: str) -> bool:
        token = token.rstrip("/")
        if token in self.paths or any(path.startswith(token + "/") for path in self.paths):
            return True
        parts = token.strip("/").split("/")
        if token.startswith("/") and len(parts) >= 3:
            # A path inside the job's container (`/app/evals/golden.jsonl`, the repository mounted at /app):
            # the repository path it ends with.
            tail = "/".join(parts[1:])
            if any(path == tail or path.endswith("/" + tail) for path in self.paths):
                return True
        as_module = token.replace(".", "/")
        return f"{as_module}.py" in self.paths or any(path.startswith(as_module + "/") for path in self.paths)

    def _route(self, raw: RawRoute, evidence: Evidence) -> Route:
        return Route(
            raw.method,
            raw.path,
            raw.handler,
            raw.framework,
            evidence,
            raw.request_model,
            self.classes.get(raw.request_model or "", []),
            raw.response_model,
            self.classes.get(raw.response_model or "", []),
        )


def _cap(items: list[Evidence]) -> list[Evidence]:
    return items[:MAX_EVIDENCE]


def build_profile(root: Path, limits: ProfileLimits | None = None) -> RepoProfile:
    """Profile the snapshot at `root`. Reads each file at most once; never follows symlinks; never raises on
    what a file contains (bad files become notes)."""
    limits = limits or ProfileLimits()
    return build_profile_from(root, walk_files(root, limits.max_file_bytes), limits)


def build_profile_from(root: Path, items: Iterable[RawFile | Skipped], limits: ProfileLimits) -> RepoProfile:
    """Profile the files `items` (paths relative to `root`): one project of a repository of several
    (grader.profile.projects), or the whole snapshot."""
    collector = _Collector(root, limits)
    for item in items:
        collector.add(item)
    return collector.finish()
