"""Facts from one Python file, read with `ast` (never imported, never run).

One pass over the tree collects everything the profile needs from the file; `build.py` merges the
files and resolves what spans several (routes' models, scripts that write golden sets).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

Line = int

_INJECTION_TEXT = re.compile(
    r"ignore (all |any |the )?(previous|prior|above)|system prompt|jailbreak|\bDAN\b|developer mode|"
    r"reveal (your|the)|disregard|you are now|pretend to be",
    re.I,
)
_GUARD_NAME = re.compile(r"inject|jailbreak|guard|sanitiz|moderat|screen|leak|redact", re.I)
_OUTPUT_GUARD_NAME = re.compile(r"leak|output|redact|answer|response|post", re.I)
_CITE_FIELD = re.compile(r"^(citations?|sources?|references?|cited_\w+|chunk_ids?|source_ids?|evidence)$", re.I)
_CITE_PROMPT = re.compile(r"\bcit(e|ation)|\bsource|\bfootnote|\breferences?\b", re.I)
_RETURNED_SOURCES = re.compile(r"^(documents?|docs|passages?|chunks|contexts?|context_docs|retrieved(_\w+)?)$", re.I)
"""Keys beside an answer key in a returned dict that carry what was retrieved: `{"reply": …, "documents": […]}`."""
_CITE_FORMAT = re.compile(
    r"\[\^?\d+\]"  # [1], footnotes [^1]
    r"|\[[\w\s.#:/-]{1,40}\]"  # [doc-3], [chunk_12], [handbook.md#leave]
    r"|\[\{[^}\]]{0,40}\}\]"  # [{i}] in an f-string (its placeholder kept as {…})
    r"|[\[(]\s*(?:sources?|docs?|documents?|refs?|references?|chunks?|pages?|citations?)\b[^\])\n]{0,80}[\])]"
    r"|【[^】\n]{0,40}】|<cite\b",  # [Source: a.pdf, p. 2], (source: {file}), 【1】, <cite>
    re.I,
)
"""A format to cite in, as a prompt sets it or a context is numbered with it."""
_MARKER_PATTERN = re.compile(r"\\\[(?:\\\^)?\(?(?:\?:)?(?:\\\^)?(?:\\d|\\w|\[\^|[A-Za-z])|【")
r"""A regular expression that reads bracketed markers out of text: `\[(\d+)\]`, `\[\^(\d+)\]`, `\[([^\]]+)\]`,
`\[Source: (.*?)\]`; not `\[.*\]` or `\[[\s\S]*\]`, which pull a JSON list out of a model's reply."""
_RETRIEVED = re.compile(
    r"retriev|chunk|by_id|context|sources?|allowed|known|docs|documents?|passages?|hits|nodes", re.I
)
_SPEND = re.compile(r"spen[dt]|cost|budget|usage|charge|bill|dollars|usd", re.I)
_LIMIT = re.compile(r"ceiling|limit|budget|max|cap|threshold|allowance", re.I)
_REFUSE_CALL = re.compile(r"HTTPException|abort|refuse|reject|deny|Exceeded|Error", re.I)
_ALERT_CALL = re.compile(r"alert|notify|page|warn|error|critical|emit|metric|inc\b", re.I)
_TOKENS = re.compile(r"token", re.I)
_PRICE = re.compile(r"price|cost|rate|per_million|per_1k|usd|dollar", re.I)
_PERCENTILE = re.compile(r"^p(50|90|95|99)$|percentile|quantile", re.I)
_COST_LIBS = re.compile(r"genai_prices|tokencost|completion_cost|cost_per_token|calc_price", re.I)
_WRITE_METHODS = {"write_text", "write_bytes", "to_csv", "to_json", "to_parquet", "to_jsonl", "dump_json"}
_DATA_NAME = re.compile(r"[\w.-]+\.(jsonl|json|csv|ya?ml|tsv)$", re.I)
_LATENCY_NAME = re.compile(r"latenc|elapsed|duration|took|time_taken|response_time|time_spent|seconds|_ms$|^ms$", re.I)
_LATENCY_CONTEXT = re.compile(
    r"latenc|elapsed|duration|response_time|time_taken|seconds|_ms\b|timing|timings|\bp(50|90|95|99)\b", re.I
)
_TARGET = re.compile(r"^p9[059]|percentile|quantile", re.I)
_TRACING_MODULES = re.compile(
    r"^(langsmith|langfuse|opentelemetry|openinference|weave|phoenix|arize|agentops|helicone|traceloop|"
    r"openlit|mlflow\.tracing|azure\.monitor\.opentelemetry)\b"
)
_TRACING_TEXT = re.compile(r"LANGCHAIN_TRACING(_V2)?|LANGSMITH_TRACING|LANGFUSE_(PUBLIC|SECRET)_KEY|OTEL_EXPORTER")
_USAGE_ATTRS = {
    "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens", "usage_metadata",
    "token_usage", "prompt_eval_count", "eval_count",
}  # fmt: skip
_LOOSE_SOURCES = re.compile(r"^(source_documents|sourceDocuments|source_nodes|retrieved_docs|retrieved_documents)$")
_WITH_SOURCES = re.compile(r"WithSources|with_sources|qa_with_sources")
_CITE_ASK = re.compile(r"\bcite\b|\bcitations?\b|\bsources?\b.{0,40}\b(answer|respon|include|list|mention)", re.I)
_QUESTION_SENTENCE = re.compile(r"(?:^|[.!?\n]\s*)(?:[^.!?\n\s]+\s+){2,}[^.!?\n\s]+\?")
_GESTURE = re.compile(
    r"(do not|don't|never)\s+(follow|obey|execute)\b.{0,40}\binstructions?|"
    r"ignore\b.{0,30}\binstructions?\b.{0,40}\b(context|documents?|retrieved)|"
    r"(do not|don't|never|no)\s+(reveal\w*|disclos\w*|shar(e|ing))\b(\s+of)?.{0,30}\b(system|prompt|instructions)",
    re.I,
)
_FENCE = re.compile(r"-{3,}|={3,}|`{3}|\"{3}")
_FENCE_TAG = re.compile(r"<(context|documents?|sources?|retrieved[\w-]*)>", re.I)
_PROMPT_WORDS = re.compile(r"context|question|answer|documents?|retrieved", re.I)
_TEXT_ARG = re.compile(
    r"^(query|question|prompt|message|messages|user_input|input_text|text|content|answer|response|output|"
    r"completion|reply|user_message|msg|q)$",
    re.I,
)
_EVAL_HARNESS = re.compile(
    r"^(ragas|deepeval|promptfoo|inspect_ai|trulens|trulens_eval|giskard|phoenix\.evals|langsmith\.evaluation|"
    r"azure\.ai\.evaluation|mlflow|llama_index(?:\.core)?\.evaluation)\b"
)
_RETRIEVAL_METRIC = re.compile(
    r"(?:compute_|calc(?:ulate)?_|eval(?:uate)?_)?(?:hit_?rate|mrr|mean_reciprocal_rank|recall_at_k|precision_at_k|"
    r"ndcg(?:_at_k)?)(?:_score)?",
    re.I,
)
"""A retrieval metric computed by hand (`def hit_rate(relevance)`, `def mrr(...)`): an eval run over a question
set, the way course projects evaluate retrieval."""
_BUDGET_NAME = re.compile(r"budget|spend(ing)?_?limit|max_?(cost|spend)|cost_?(limit|cap|ceiling)", re.I)
_MOCKED = re.compile(r"fake|mock|stub|monkeypatch|dummy", re.I)
_JUDGED = re.compile(r"judge|evaluat|grade|validat|score|similar|correct", re.I)
_EVAL_CALLS = {"evaluate", "Evaluation", "EvaluationDataset", "assert_test", "GEval", "Task", "aevaluate"}
_RED_TEAM_CALLS = {"RedTeam", "RedTeamer", "redteam", "garak"}

ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "route", "api_route", "websocket"}
APP_FACTORIES = {
    "FastAPI": "fastapi",
    "Flask": "flask",
    "Litestar": "litestar",
    "Starlette": "starlette",
    "APIRouter": "fastapi",
    "Blueprint": "flask",
    "Router": "litestar",
}


@dataclass
class RawRoute:
    method: str
    path: str
    handler: str
    framework: str
    line: Line
    request_model: str | None = None
    response_model: str | None = None


@dataclass
class PythonFacts:
    """What one Python file shows. Lines are 1-based."""

    imports: list[tuple[str, Line]] = field(default_factory=list)
    test_functions: list[tuple[str, Line, int]] = field(default_factory=list)
    """(name, line, parametrized case count — 1 when not parametrized)."""
    injection_tests: list[tuple[Line, int]] = field(default_factory=list)
    input_guards: list[Line] = field(default_factory=list)
    output_guards: list[Line] = field(default_factory=list)
    citation_fields: list[Line] = field(default_factory=list)
    citation_prompts: list[Line] = field(default_factory=list)
    citation_validation: list[Line] = field(default_factory=list)
    cost_accounting: list[Line] = field(default_factory=list)
    ceilings: list[Line] = field(default_factory=list)
    alerts_only: list[Line] = field(default_factory=list)
    timing: list[Line] = field(default_factory=list)
    percentiles: list[Line] = field(default_factory=list)
    timeouts: list[Line] = field(default_factory=list)
    retries: list[Line] = field(default_factory=list)
    fallbacks: list[Line] = field(default_factory=list)
    prompts: list[Line] = field(default_factory=list)
    routes: list[RawRoute] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)
    apps: list[tuple[str, str, Line]] = field(default_factory=list)
    """(variable, framework, line) for module-level app objects."""
    run_calls: list[tuple[str, Line]] = field(default_factory=list)
    """uvicorn.run("module:app") and similar, as (target, line)."""
    written_names: set[str] = field(default_factory=set)
    """Base names of data files this file writes (open(..., "w"), .write_text, .to_csv, ...)."""
    tracing: list[Line] = field(default_factory=list)
    """A tracing integration (LangSmith, Langfuse, OpenTelemetry, Weave…): timings and usage recorded outside."""
    load_tests: list[Line] = field(default_factory=list)
    """A load-test tool (locust): latency aggregated over many requests."""
    latency_targets: list[Line] = field(default_factory=list)
    """A percentile compared with a target (`assert p95 < 3.0`, `if p95 > SLO: alert`)."""
    usage_reads: list[Line] = field(default_factory=list)
    """Token usage read from a model response (`response.usage.total_tokens`, `usage_metadata`)."""
    loose_sources: list[Line] = field(default_factory=list)
    """Retrieved documents handed back beside the answer (`return_source_documents=True`, `source_documents`)."""
    citation_asks: list[Line] = field(default_factory=list)
    """Prompt text asking the model to cite, without a format to cite in."""
    prompt_gestures: list[Line] = field(default_factory=list)
    """Prompt text that fences the context or tells the model to keep to it (no check in code)."""
    answer_tests: list[tuple[Line, int]] = field(default_factory=list)
    """Test functions that ask the system a question and assert on the answer: eval cases written as tests."""
    budget_settings: list[Line] = field(default_factory=list)
    """A spending limit as a setting or constant with a number (`max_budget_usd: float = 5.0`)."""
    parametrized_files: list[tuple[Line, str]] = field(default_factory=list)
    """Tests parametrized over a data file (`parametrize("case", load("evals/golden.jsonl"))`): (line, base name)."""
    eval_harness: list[Line] = field(default_factory=list)
    """An eval driven from code: an eval framework (ragas/DeepEval evaluate, a Weave Evaluation, an Inspect task,
    LlamaIndex's evaluation module) or retrieval metrics computed by hand (hit rate, MRR)."""


@dataclass(frozen=True)
class _Vocabulary:
    """Which families of words the file uses at all: the costlier per-node checks run only where they can match."""

    sleep: bool
    citations: bool
    tokens: bool
    spend: bool
    latency: bool

    @classmethod
    def of(cls, source: str) -> _Vocabulary:
        lower = source.lower()
        return cls(
            sleep="sleep" in lower,
            citations=any(word in lower for word in ("citation", "cite", "footnote", "marker", "\\[")),
            tokens="token" in lower,
            spend=any(word in lower for word in ("cost", "spen", "budget", "usd", "charge", "bill", "dollar")),
            latency=any(
                word in lower
                for word in (
                    "percentile",
                    "quantile",
                    "p95",
                    "p99",
                    "histogram",
                    "summary",
                    "perf_counter",
                    "monotonic",
                )
            ),
        )


def analyse_python(source: str, *, is_test: bool) -> PythonFacts | None:
    """Facts of one file; None when it does not parse (the caller notes it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    visitor = _Visitor(is_test, _Vocabulary.of(source))
    try:
        if is_test:
            visitor.visit_test_module(tree)
        else:
            visitor.visit(tree)
    except RecursionError:
        return None
    return visitor.facts


def dotted_name(node: ast.AST) -> str:
    """Dotted name of a Name/Attribute/Call chain ("client.chat.completions.create"); "" when not a name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return dotted_name(node.func)
    return ""


def _len_of_retrieved(node: ast.AST) -> bool:
    """`len(passages)`, `len(self.chunks)`: the count of what was retrieved."""
    return (
        isinstance(node, ast.Call)
        and dotted_name(node.func) == "len"
        and bool(node.args)
        and bool(_RETRIEVED.search(" ".join(_names_in(node.args[0]))))
    )


def _set_of_retrieved(node: ast.AST) -> bool:
    """`set(chunk_ids)`, `frozenset(docs)`, `{c.id for c in retrieved}`: a set made of what was retrieved."""
    if isinstance(node, ast.Call) and dotted_name(node.func) in {"set", "frozenset"} and node.args:
        return bool(_RETRIEVED.search(" ".join(_names_in(node.args[0]))))
    if isinstance(node, ast.SetComp):
        return bool(_RETRIEVED.search(" ".join(_names_in(node))))
    return False


def _names_in(node: ast.AST) -> list[str]:
    return [dotted_name(child) for child in ast.walk(node) if isinstance(child, ast.Name | ast.Attribute)]


def _strings_in(node: ast.AST) -> list[str]:
    return [child.value for child in ast.walk(node) if isinstance(child, ast.Constant) and isinstance(child.value, str)]


def _literal_length(node: ast.AST) -> int | None:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return len(node.elts)
    return None


def _is_token_arithmetic(value: ast.AST) -> bool:
    """`cost = usage.prompt_tokens * 0.15 / 1e6`: multiplication or division over token counts."""
    return any(
        isinstance(child, ast.BinOp)
        and isinstance(child.op, ast.Mult | ast.Div)
        and _TOKENS.search(" ".join(_names_in(child)))
        for child in ast.walk(value)
    )


@dataclass(frozen=True)
class PromptReading:
    gesture: bool
    """Something against injection: a rule to ignore instructions in the context, or the context fenced."""
    cites: bool
    """Asks for citations in a format (`[n]`, `[source#N]`, footnotes) that can be mapped back to sources."""
    asks_for_sources: bool
    """Asks for sources more loosely."""
    gesture_line: int = 1
    cite_line: int = 1
    """Where in the text (1-based) the rule against injection and the citation rule are, for evidence."""


def read_prompt(text: str) -> PromptReading:
    """What a prompt's text asks of the model, wherever the prompt lives (a string in code, a prompts/*.txt file)."""
    # A fence is a delimiter on both sides of the context (`-----` above and below, ``` … ```, <context> tags),
    # not one separator between chunks; "answer only from the context" is grounding, not a defence.
    fenced = len(_FENCE.findall(text)) >= 2 or bool(_FENCE_TAG.search(text))
    ruled = _GESTURE.search(text)
    gesture = bool(ruled) or (fenced and bool(re.search(r"context|documents?", text, re.I)))
    cites = bool(_CITE_PROMPT.search(text) and _CITE_FORMAT.search(text))
    where = ruled or _FENCE_TAG.search(text) or _FENCE.search(text)
    cited = re.search(r"\bcit(e|ation)", text, re.I) or _CITE_FORMAT.search(text) or _CITE_ASK.search(text)
    return PromptReading(
        gesture,
        cites,
        not cites and bool(_CITE_ASK.search(text)),
        text.count("\n", 0, where.start()) + 1 if where else 1,
        text.count("\n", 0, cited.start()) + 1 if cited else 1,
    )


def _manual_backoff(function: ast.AST) -> bool:
    """A loop that sleeps for a growing delay (2 ** attempt, delay *= 2) — a hand-written retry with backoff."""
    for loop in ast.walk(function):
        if not isinstance(loop, ast.For | ast.While):
            continue
        calls = [dotted_name(child.func) for child in ast.walk(loop) if isinstance(child, ast.Call)]
        if not any(name.endswith("sleep") for name in calls):
            continue
        for child in ast.walk(loop):
            if isinstance(child, ast.BinOp) and isinstance(child.op, ast.Pow):
                return True
            if isinstance(child, ast.AugAssign) and isinstance(child.op, ast.Mult):
                return True
    return False


class _Visitor(ast.NodeVisitor):
    def __init__(self, is_test: bool, words: _Vocabulary) -> None:
        self.facts = PythonFacts()
        self.is_test = is_test
        self.words = words
        self.module_lists: dict[str, int] = {}
        self.string_vars: dict[str, set[str]] = {}
        self.functions: list[str] = []

    def visit_test_module(self, tree: ast.Module) -> None:
        """Test files only need imports, module-level case lists and test functions (top level or in classes),
        so their bodies are not walked node by node."""
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign):
                self.visit(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                self._test_function(node)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                        self._test_function(item)

    # --- imports, module-level values -----------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        self.facts.imports += [(alias.name, node.lineno) for alias in node.names]
        for alias in node.names:
            self._imported(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            self.facts.imports.append((node.module, node.lineno))
            self._imported(node.module, node.lineno)
            if _WITH_SOURCES.search(" ".join(alias.name for alias in node.names)) and not self.is_test:
                # RetrievalQAWithSourcesChain asks the model for its SOURCES and returns them as a field.
                self.facts.citation_fields.append(node.lineno)
                self.facts.citation_prompts.append(node.lineno)

    def _imported(self, module: str, line: Line) -> None:
        if _TRACING_MODULES.match(module):
            self.facts.tracing.append(line)
        if module.split(".", maxsplit=1)[0] == "locust":
            self.facts.load_tests.append(line)
        if _EVAL_HARNESS.match(module):
            self.facts.eval_harness.append(line)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._remember_value(target.id, node.value, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and node.value is not None:
            self._remember_value(node.target.id, node.value, node.lineno)
        self.generic_visit(node)

    def _remember_value(self, name: str, value: ast.AST, line: Line) -> None:
        if (
            not self.is_test
            and _BUDGET_NAME.search(name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, int | float)
            and not isinstance(value.value, bool)
            and value.value > 0
        ):
            self.facts.budget_settings.append(line)
        if (
            not self.is_test
            and _LATENCY_NAME.search(name)
            and any(isinstance(child, ast.BinOp) and isinstance(child.op, ast.Sub) for child in ast.walk(value))
        ):
            self.facts.timing.append(line)  # `elapsed = time.time() - start`
        length = _literal_length(value)
        if length is not None and not self.functions:
            self.module_lists[name] = length
        strings = _strings_in(value)
        if strings:
            self.string_vars.setdefault(name, set()).update(strings)
        if "PROMPT" in name.upper() and strings and not self.is_test:
            self.facts.prompts.append(line)
            if any(_CITE_PROMPT.search(text) and _CITE_FORMAT.search(text) for text in strings):
                self.facts.citation_prompts.append(line)
        if isinstance(value, ast.Call) and not self.functions:
            factory = dotted_name(value.func).rsplit(".", 1)[-1]
            if factory in APP_FACTORIES:
                self.facts.apps.append((name, APP_FACTORIES[factory], line))
        if "fallback" in name.lower() and not self.is_test:
            self.facts.fallbacks.append(line)
        if not self.is_test and self.words.tokens and _PRICE.search(name) and _is_token_arithmetic(value):
            self.facts.cost_accounting.append(line)

    def visit_Constant(self, node: ast.Constant) -> None:
        if self.is_test or not isinstance(node.value, str) or len(node.value) < 40:
            return
        text = node.value
        if not _PROMPT_WORDS.search(text):
            return
        reading = read_prompt(text)
        if reading.gesture:
            self.facts.prompt_gestures.append(node.lineno)
        if reading.cites:
            self.facts.citation_prompts.append(node.lineno)
        elif reading.asks_for_sources:
            self.facts.citation_asks.append(node.lineno)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        # Each placeholder kept as `{…}`: `f"[{i}] {chunk.text}"` numbers a context as `[{…}]`.
        parts = [
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "{…}"
            for part in node.values
        ]
        self.visit_Constant(ast.Constant(value="".join(parts), lineno=node.lineno))

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring or a bare string: a comment, never evidence of what the code does
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = [key.value for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)]
        if (
            not self.is_test
            and any(_CITE_FIELD.match(key) or _RETURNED_SOURCES.match(key) for key in keys)
            and any(key.lower() in {"answer", "response", "result", "output", "reply", "completion"} for key in keys)
        ):
            self.facts.citation_fields.append(node.lineno)  # {"answer": ..., "sources": [...]}
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not self.is_test:
            if node.attr in _USAGE_ATTRS:
                self.facts.usage_reads.append(node.lineno)
            if _LOOSE_SOURCES.match(node.attr):
                self.facts.loose_sources.append(node.lineno)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = node.slice
        if not self.is_test and isinstance(key, ast.Constant) and isinstance(key.value, str):
            if key.value in _USAGE_ATTRS or key.value == "usage":
                self.facts.usage_reads.append(node.lineno)
            if _LOOSE_SOURCES.match(key.value):
                self.facts.loose_sources.append(node.lineno)
            if key.value == "source" and "metadata" in dotted_name(node.value):
                self.facts.loose_sources.append(node.lineno)  # doc.metadata["source"] shown beside the answer
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if any(isinstance(op, ast.Gt | ast.GtE | ast.Lt | ast.LtE) for op in node.ops):
            sides = [" ".join(_names_in(part)).split(".")[-1] for part in [node.left, *node.comparators]]
            if any(_TARGET.search(side.rsplit(".", 1)[-1]) for side in sides if side):
                self.facts.latency_targets.append(node.lineno)
        self.generic_visit(node)

    # --- classes and functions -------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        fields = [
            item.target.id
            for item in node.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        ]
        self.facts.classes[node.name] = fields
        if not self.is_test and any(_CITE_FIELD.match(name) for name in fields):
            line = next(
                item.lineno
                for item in node.body
                if isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and _CITE_FIELD.match(item.target.id)
            )
            self.facts.citation_fields.append(line)
        self._guard_name(node.name, node.lineno, node)
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.is_test and node.name.startswith("test"):
            self._test_function(node)
        elif not self.is_test:
            self._guard_name(node.name, node.lineno, node)
            self._route(node)
            if "fallback" in node.name.lower():
                self.facts.fallbacks.append(node.lineno)
            if _RETRIEVAL_METRIC.fullmatch(node.name):
                self.facts.eval_harness.append(node.lineno)
            if self.words.citations and self._mentions_citations(node) and self._validates_against_retrieval(node):
                self.facts.citation_validation.append(node.lineno)
            if self.words.sleep and _manual_backoff(node):
                self.facts.retries.append(node.lineno)
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _test_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        cases = 1
        # "injection", "inject_…", not "injected": `test_uses_injected_llm` tests dependency injection
        attack = bool(re.search(r"injection|inject(_|$)|jailbreak|leak|attack|adversar", node.name, re.I))
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and dotted_name(decorator.func).endswith("parametrize")):
                continue
            if len(decorator.args) >= 2:
                values = decorator.args[1]
                texts = set(_strings_in(values)) | {
                    text for name in _names_in(values) for text in self.string_vars.get(name.split(".")[0], set())
                }
                files = [text.replace("\\", "/").rsplit("/", 1)[-1] for text in texts]
                for name in files:
                    if _DATA_NAME.match(name):
                        self.facts.parametrized_files.append((node.lineno, name.lower()))
                length = _literal_length(values)
                if length is None and isinstance(values, ast.Name):
                    length = self.module_lists.get(values.id)
                cases *= max(1, length or 1)
                attack = attack or any(_INJECTION_TEXT.search(text) for text in _strings_in(values))
        self.facts.test_functions.append((node.name, node.lineno, cases))
        if attack:
            self.facts.injection_tests.append((node.lineno, cases))
        elif self._asks_and_asserts(node):
            self.facts.answer_tests.append((node.lineno, cases))

    @staticmethod
    def _asks_and_asserts(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """A test that puts a question to the system and asserts on what comes back (`assert "30 days" in
        answer`, an LLM judge's verdict): an eval case, whatever the file is called."""
        # a question, however it ends ("…? (Answer with the number only)"): a sentence of 3 words or more that ends
        # in a question mark — not "Three?" in a splitter's test input
        questions = [text for text in _strings_in(node) if _QUESTION_SENTENCE.search(text)]
        if not questions or _MOCKED.search(" ".join(_names_in(node))):
            return False  # a test against a fake model checks plumbing, not answers
        for check in (child for child in ast.walk(node) if isinstance(child, ast.Assert)):
            calls = [dotted_name(call.func) for call in ast.walk(check) if isinstance(call, ast.Call)]
            keywords = [kw.arg or "" for call in ast.walk(check) if isinstance(call, ast.Call) for kw in call.keywords]
            strings = _strings_in(check)
            expected = [text for text in strings if len(text.split()) >= 2 or any(ch.isdigit() for ch in text)]
            if expected or any(_JUDGED.search(name) for name in calls) or any("expect" in kw for kw in keywords):
                return True
        return False

    def _guard_name(self, name: str, line: Line, node: ast.AST) -> None:
        if self.is_test or not _GUARD_NAME.search(name):
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # A guard screens text on its way to or from the model: a function that takes none (a screenshot's
            # `screen`, a file name's `sanitize`) is not one.
            arguments = [arg.arg for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
            if not any(_TEXT_ARG.match(argument) for argument in arguments):
                return
        names = " ".join(_names_in(node)).lower()
        compares_prompt = "system_prompt" in names or "prompt" in name.lower()
        if _OUTPUT_GUARD_NAME.search(name) or (compares_prompt and "leak" in name.lower()):
            self.facts.output_guards.append(line)
        elif re.search(r"inject|jailbreak|sanitiz|screen|guard|moderat", name, re.I):
            self.facts.input_guards.append(line)

    @staticmethod
    def _mentions_citations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Named for citations, or reads bracketed markers out of text with a regular expression."""
        if "cit" in node.name.lower() or any(
            isinstance(child, ast.Name) and re.search(r"cit|footnote|marker", child.id, re.I)
            for child in ast.walk(node)
        ):
            return True
        return any(
            isinstance(child, ast.Call)
            and dotted_name(child.func).rsplit(".", 1)[-1] in {"findall", "finditer", "search", "match", "sub"}
            and bool(child.args)
            and isinstance(child.args[0], ast.Constant)
            and isinstance(child.args[0].value, str)
            and bool(_MARKER_PATTERN.search(child.args[0].value))
            for child in ast.walk(node)
        )

    def _validates_against_retrieval(self, node: ast.AST) -> bool:
        """A cited id looked up in what was retrieved (`cid in retrieved_ids`), a cited number bounded by it
        (`1 <= n <= len(passages)`), or cited ids compared as sets (`set(cited) <= set(chunk_ids)`,
        `.issubset(…)`, `cited - known`)."""
        for child in ast.walk(node):
            if isinstance(child, ast.Compare):
                sides = [child.left, *child.comparators]
                if any(isinstance(op, ast.In | ast.NotIn) for op in child.ops):
                    if _RETRIEVED.search(" ".join(_names_in(child.comparators[0]))):
                        return True
                elif (
                    any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in child.ops)
                    and any(_len_of_retrieved(side) or _set_of_retrieved(side) for side in sides)
                    # a cited value bounded by it, not `len(docs) > 0` (something was retrieved)
                    and any(isinstance(side, ast.Name | ast.Attribute | ast.Subscript) for side in sides)
                ):
                    return True
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                if child.func.attr in {"issubset", "difference", "issuperset"} and any(
                    _RETRIEVED.search(" ".join(_names_in(arg))) for arg in child.args
                ):
                    return True
            elif isinstance(child, ast.BinOp) and isinstance(child.op, ast.Sub) and _set_of_retrieved(child.right):
                return True
        return False

    def _route(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            if not isinstance(decorator, ast.Call):
                continue
            dotted = dotted_name(decorator.func)
            method = dotted.rsplit(".", 1)[-1]
            if method not in ROUTE_METHODS or not decorator.args:
                continue
            path_node = decorator.args[0]
            if not (isinstance(path_node, ast.Constant) and isinstance(path_node.value, str)):
                continue
            framework = "litestar" if "." not in dotted else "fastapi"
            methods = [method.upper()]
            for keyword in decorator.keywords:
                if keyword.arg in {"methods", "http_method"}:
                    found = [text.upper() for text in _strings_in(keyword.value)]
                    methods = found or methods
                    framework = "flask" if keyword.arg == "methods" else framework
            if method == "route" and methods == ["ROUTE"]:
                methods, framework = ["GET"], "flask"
            response = next((dotted_name(k.value) for k in decorator.keywords if k.arg == "response_model"), None)
            if response is None and node.returns is not None:
                response = dotted_name(node.returns) or None
            request = next(
                (
                    dotted_name(arg.annotation)
                    for arg in node.args.args
                    if arg.annotation is not None and dotted_name(arg.annotation)[:1].isupper()
                ),
                None,
            )
            for verb in methods:
                self.facts.routes.append(
                    RawRoute(verb, path_node.value, node.name, framework, node.lineno, request, response)
                )

    # --- expressions and statements -----------------------------------------------------------------

    def visit_If(self, node: ast.If) -> None:
        if not self.is_test and self.words.spend and self._compares_spend_to_limit(node.test):
            body = ast.Module(body=node.body, type_ignores=[])
            refuses = any(isinstance(child, ast.Raise | ast.Return) for child in ast.walk(body)) or any(
                isinstance(child, ast.Call) and _REFUSE_CALL.search(dotted_name(child.func)) for child in ast.walk(body)
            )
            alerts = any(
                isinstance(child, ast.Call) and _ALERT_CALL.search(dotted_name(child.func)) for child in ast.walk(body)
            )
            if refuses:
                self.facts.ceilings.append(node.lineno)
            elif alerts:
                self.facts.alerts_only.append(node.lineno)
        self.generic_visit(node)

    @staticmethod
    def _compares_spend_to_limit(test: ast.AST) -> bool:
        for child in ast.walk(test):
            if not isinstance(child, ast.Compare):
                continue
            if not any(isinstance(op, ast.Gt | ast.GtE | ast.Lt | ast.LtE) for op in child.ops):
                continue
            sides = [" ".join(_names_in(part)) for part in [child.left, *child.comparators]]
            if any(_SPEND.search(side) for side in sides) and any(_LIMIT.search(side) for side in sides):
                return True
        return False

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if not self.is_test and self.words.tokens and isinstance(node.op, ast.Mult | ast.Div):
            text = " ".join(_names_in(node)) + " " + " ".join(_strings_in(node))
            if _TOKENS.search(text) and _PRICE.search(text):
                self.facts.cost_accounting.append(node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        dotted = dotted_name(node.func)
        last = dotted.rsplit(".", 1)[-1]
        if not self.is_test:
            self._call_facts(node, dotted, last)
        self._write_facts(node, dotted, last)
        self.generic_visit(node)

    def _call_facts(self, node: ast.Call, dotted: str, last: str) -> None:
        line = node.lineno
        if last in {"perf_counter", "monotonic", "perf_counter_ns"} or last in {"Timer", "timer", "timeit"}:
            self.facts.timing.append(line)
        if (
            _PERCENTILE.search(last)
            or dotted in {"statistics.quantiles", "np.percentile", "numpy.percentile"}
            or last in {"Histogram", "Summary"}
        ) and self._about_latency(node):
            self.facts.percentiles.append(line)
        if last == "get" and "metadata" in dotted and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in {"source", "source_id", "file", "url"}:
                self.facts.loose_sources.append(line)  # doc.metadata.get("source") shown beside the answer
        if _TRACING_TEXT.search(" ".join(_strings_in(node))):
            self.facts.tracing.append(line)
        if last in _EVAL_CALLS and dotted.split(".", 1)[0] in {"ragas", "deepeval", "weave", "mlflow", "inspect_ai"}:
            self.facts.eval_harness.append(line)
        if last in _RED_TEAM_CALLS:
            self.facts.injection_tests.append((line, 5))
        if _COST_LIBS.search(dotted):
            self.facts.cost_accounting.append(line)
        for keyword in node.keywords:
            if keyword.arg in {"return_source_documents", "return_sources", "include_sources"} and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value in (False, None)
            ):
                self.facts.loose_sources.append(line)
            if keyword.arg in {"timeout", "read_timeout", "request_timeout"} and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is None
            ):
                self.facts.timeouts.append(line)
            if keyword.arg in {"max_retries", "retries", "num_retries"} and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value in (0, None, False)
            ):
                self.facts.retries.append(line)
            if keyword.arg in {"fallbacks", "fallback_models", "fallback"}:
                self.facts.fallbacks.append(line)
        if last in {"retry", "on_exception", "Retrying", "AsyncRetrying", "wait_exponential", "expo"}:
            self.facts.retries.append(line)
        root = dotted.split(".", maxsplit=1)[0]
        if last in {"wait_for", "Timeout", "timeout"} and root in {"asyncio", "httpx", "anyio"}:
            self.facts.timeouts.append(line)
        if last == "FallbackModel" or "fallback" in last.lower():
            self.facts.fallbacks.append(line)
        if last == "run" and dotted.split(".", maxsplit=1)[0] in {"uvicorn", "hypercorn", "granian"} and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.facts.run_calls.append((first.value, line))

    def _about_latency(self, node: ast.Call) -> bool:
        """A percentile or histogram of time (its arguments, its name, or the function it is in say so), not of
        similarity scores or token counts."""
        text = " ".join([*_names_in(node), *_strings_in(node), *self.functions])
        return bool(_LATENCY_CONTEXT.search(text))

    def _write_facts(self, node: ast.Call, dotted: str, last: str) -> None:
        targets: list[ast.AST] = []
        if last == "open" and node.args:
            mode = (
                node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax"):
                targets.append(node.args[0] if dotted in {"open", "io.open"} else node.func)
        elif last in _WRITE_METHODS:
            targets.append(node.func)
            targets.extend(node.args[:1])
        for target in targets:
            for text in self._strings_of(target):
                name = text.replace("\\", "/").rsplit("/", 1)[-1]
                if _DATA_NAME.match(name):
                    self.facts.written_names.add(name.lower())

    def _strings_of(self, node: ast.AST) -> set[str]:
        found = set(_strings_in(node))
        for name in _names_in(node):
            found |= self.string_vars.get(name.split(".")[0], set())
        return found
