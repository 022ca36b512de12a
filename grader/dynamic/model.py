"""What running the candidate's project measured: plain data, kept whole in the report (`report.dynamic`).

Everything here came from the app or from the gateway's ledger; every string that came from the app is untrusted
and every renderer escapes it.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AppInterface(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How Viva talks to the app, and where each piece came from (manifest, OpenAPI, static profile)."""

    start_command: str | None = None
    start_source: str = ""
    start_tier: str = ""
    workdir: str = ""
    """Where the start command runs, relative to the repository root ("" is the root)."""
    setup: list[str] = msgspec.field(default_factory=list)
    """Commands run before the start, from `workdir` (an ingest, migrations)."""
    port: int = 8000
    health: str | None = None
    """None: no health route was named, so any HTTP answer means the app is listening."""
    startup_seconds: float = 60.0
    env: dict[str, str] = msgspec.field(default_factory=dict)
    query_path: str | None = None
    query_method: Literal["POST", "GET"] = "POST"
    request_template: str = '{"question": "{question}"}'
    """A JSON body with a {question} placeholder (POST), or the query parameter's name (GET)."""
    answer_pointer: str | None = None
    citations_pointer: str | None = None
    cost_pointer: str | None = None
    query_source: str = ""
    ingest_path: str | None = None
    ingest_method: Literal["POST", "PUT"] = "POST"
    ingest_template: str = '{"text": "{document}"}'
    budget_env: str | None = None
    budget_source: str = ""
    alert_pattern: str | None = None
    evals_command: str | None = None
    evals_source: str = ""
    evals_cases_path: str | None = None
    golden_path: str | None = None
    golden_queries: list[str] = msgspec.field(default_factory=list)
    documented_fields: dict[str, str] = msgspec.field(default_factory=dict)
    """For a documented route, the field its example request sends ("POST /ask" → "question")."""
    documented_routes: list[str] = msgspec.field(default_factory=list)
    """Routes the README or docs show how to call ("POST /ask"): when none of them could be used, a missing query
    route is Viva's limitation (not_run), not the candidate's (0)."""
    missing: list[str] = msgspec.field(default_factory=list)
    """What could not be found; each affects the checks that need it (they score 0, with the manifest snippet)."""
    snippet: str = ""
    """A viva.toml paragraph the candidate can add so Viva finds what it could not."""
    notes: list[str] = msgspec.field(default_factory=list)


class SandboxInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    base_image: str
    base_image_id: str = ""
    image: str = ""
    layer_cached: bool = False
    layer_seconds: float = 0.0
    install_ok: bool = True
    requirements: list[str] = msgspec.field(default_factory=list)
    refused_requirements: list[str] = msgspec.field(default_factory=list)
    missing_wheels: list[str] = msgspec.field(default_factory=list)
    install_log_tail: str = ""
    requirement_sources: list[str] = msgspec.field(default_factory=list)
    """The files the requirements were read from, each with what it was read as: `backend/uv.lock (uv.lock)`."""
    requirement_notes: list[str] = msgspec.field(default_factory=list)
    """What was read but not installed, and why: dev requirement files, platform-only packages, unreadable files."""


Blame = Literal["candidate", "viva"]
"""Whose failure a failed start is (docs/DYNAMIC.md, "Whose failure is it"): the candidate's scores 0; Viva's own
limitation makes the dynamic leaves not_run with the reason, never 0."""


class StartAttempt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One try at starting the app, in a fresh sandbox of its own."""

    tier: str
    source: str
    command: str
    where: str
    """file:line the command came from."""
    workdir: str = ""
    port: int = 8000
    outcome: Literal["started", "failed", "not_followed"] = "failed"
    """not_followed: Viva could not do what the project says (services it does not run yet, another toolchain)."""
    blame: Blame | None = None
    reason: str = ""
    seconds: float = 0.0
    log_tail: str = ""
    placeholders: list[str] = msgspec.field(default_factory=list)
    """Variables the app reads at start that Viva filled with harmless placeholders."""
    rewritten: list[str] = msgspec.field(default_factory=list)
    """Changes Viva made to the command so the tunnel reaches the app (a bind address), in words."""
    skipped: list[str] = msgspec.field(default_factory=list)


class ServiceResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    started: bool
    ready_seconds: float | None = None
    reason: str = ""
    log_tail: str = ""
    first_query_status: int | None = None
    attempts: list[StartAttempt] = msgspec.field(default_factory=list)
    """Every start tried, in order, and which one worked (the last, when one did)."""
    blame: Blame | None = None
    """When no attempt started: whose failure that is."""
    suggestion: str = ""
    """A viva.toml paragraph for this project: what a candidate adds to be started exactly as they mean."""


class EvalRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    exit_code: int
    seconds: float
    timed_out: bool = False
    results_written: bool = False
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    outcomes: dict[str, str] = msgspec.field(default_factory=dict)
    """case id → passed / failed / skipped, as the results file says."""
    forged: list[str] = msgspec.field(default_factory=list)
    """Cases reported passed although the test body raised (seen by Viva's own hook around the call)."""
    finished: bool = True
    """False when the runner stopped before the session's end (an early exit)."""
    output_tail: str = ""


class EvalsResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    command: str
    runner: Literal["pytest", "command"]
    collected: int | None = None
    """Cases found by a collection run in a separate process (pytest), before any case ran."""
    collection_tail: str = ""
    static_count: int | None = None
    static_source: str = ""
    runs: list[EvalRun] = msgspec.field(default_factory=list)
    reproducible: bool | None = None
    problems: list[str] = msgspec.field(default_factory=list)
    model_note: str = ""
    runs_note: str = ""
    """How the runs went (at once, each in its own copy of the tree)."""


class Sample(msgspec.Struct, frozen=True, omit_defaults=True):
    phase: Literal["sequential", "concurrent"]
    seconds: float
    net_seconds: float
    status: int
    error: str = ""


class HistogramBin(msgspec.Struct, frozen=True):
    upper_s: float
    count: int


class Percentiles(msgspec.Struct, frozen=True):
    p50: float
    p95: float
    p99: float


class LatencyResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    requests: int
    errors: int
    concurrency: int
    end_to_end: Percentiles | None = None
    net_of_model: Percentiles | None = None
    """End to end minus the time the gateway spent on the app's model calls: the app's own overhead."""
    sequential_p95: float | None = None
    concurrent_p95: float | None = None
    histogram: list[HistogramBin] = msgspec.field(default_factory=list)
    samples: list[Sample] = msgspec.field(default_factory=list)
    model_calls_per_request: float = 0.0
    modelled_seconds_per_call: float = 0.0
    queries_source: str = ""
    stopped_early: bool = False
    """The app left several requests in a row unanswered, so the rest were not sent."""


class CitationItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    query: str
    status: int
    answer: str = ""
    returned: list[str] = msgspec.field(default_factory=list)
    """Citations the app returned in its structure (labels or sources)."""
    inline: list[str] = msgspec.field(default_factory=list)
    """Labels written in the answer text (the model wrote them)."""
    retrieved: list[str] = msgspec.field(default_factory=list)
    """Context labels the gateway saw the app send for this request."""
    valid: int = 0
    supported: int = 0
    problems: list[str] = msgspec.field(default_factory=list)


class CitationsResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    queries: int
    answered: int
    style: Literal["structured", "inline", "none"]
    cited_answers: int = 0
    citations: int = 0
    valid: int = 0
    supported: int = 0
    app_validated: bool = False
    """True when every structured citation the app returned refers to context it sent: the app checks its sources."""
    items: list[CitationItem] = msgspec.field(default_factory=list)


ProbeCategory = Literal["direct", "role_play", "encoding", "canary", "indirect"]


class ProbeResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    category: ProbeCategory
    probe: str
    status: int
    answer: str
    leaked: bool
    leak: str = ""
    """How it leaked: system prompt (longest common substring / n-grams, maybe base64-decoded) or canary."""
    model_obeyed: bool = False
    """The gateway's gullible model obeyed the injection: only the app stood between it and the answer."""
    reached_model: bool = False
    """The probe got as far as a model call (an input guard stops it before)."""


class InjectionResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    probes: list[ProbeResult]
    leaks: int
    indirect_ran: bool
    note: str = ""


class CostItem(msgspec.Struct, frozen=True, omit_defaults=True):
    query: str
    reported_usd: float | None
    gateway_usd: float
    within: bool


class CostResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    tolerance: float
    items: list[CostItem]
    reported_total: float = 0.0
    gateway_total: float = 0.0


class CeilingResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    outcome: Literal["refused", "refused_late", "alerted", "never", "not_configurable", "broken"]
    budget_env: str | None = None
    budget_usd: float = 0.0
    requests: int = 0
    refused_after: int | None = None
    refused_status: int | None = None
    refused_body: str = ""
    spend_at_refusal: float = 0.0
    alert_lines: list[str] = msgspec.field(default_factory=list)
    note: str = ""
    instance: str = ""
    """Which instance of the app was driven: "ceiling" (its own, started with the budget) or "main" (restarted)."""


FaultOutcome = Literal["recovered", "clean_error", "hang", "traceback", "crash", "wrong_answer"]


class FaultResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    fault: str
    outcome: FaultOutcome
    status: int | None = None
    seconds: float = 0.0
    model_calls: int = 0
    retry_gap_s: float | None = None
    """Seconds between the failed model call's end and the next call's start: the app's backoff (or its fallback's
    delay), when it tried again."""
    body: str = ""
    instance: str = ""
    """Which instance of the app met the fault: "main", or "faults" (the slow ones' own)."""


class Exchange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One request a small probe sent and what came back (the body is the app's: untrusted, escaped when shown)."""

    case: str
    sent: str
    """What was sent, in words ("an empty question", "a question of 100,000 characters")."""
    status: int
    """0 when no HTTP answer came at all (timeout, reset)."""
    seconds: float
    body: str = ""
    error: str = ""
    alive_after: bool = True
    """Whether the app was still running once it had answered (or failed to)."""
    verdict: str = ""
    """The probe's reading of this exchange, in words ("a clean 4xx", "answered as if valid", "crashed")."""


class ProbeRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one small probe (grader/dynamic/probes/) sent and saw."""

    check: str
    exchanges: list[Exchange] = msgspec.field(default_factory=list)
    error: str = ""
    """The probe failed inside Viva (its scorer gives an error score, not a 0)."""
    notes: list[str] = msgspec.field(default_factory=list)


class GatewaySettings(msgspec.Struct, frozen=True):
    """How the stand-in model behaved, so a reader (and a re-run) knows what the numbers rest on."""

    model: str
    time_to_first_token_s: float
    tokens_per_second: float
    time_scale: float
    fault_time_scale: float


class ProviderUse(msgspec.Struct, frozen=True):
    """One (client, wire API) pair the app's calls came in by, as the gateway identified them."""

    client: str
    """Normalised from the request's User-Agent and headers: openai-python, anthropic-python, langchain, ollama-python,
    python-requests, python-httpx, …; `unknown` when nothing says."""
    wire_api: str
    """openai.chat, openai.responses, openai.embeddings, azure.chat, anthropic.messages, ollama.chat, …"""
    calls: int


class ProviderTraffic(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How the app reached its model, from the gateways' ledgers and the provider proxy's records, all instances."""

    uses: list[ProviderUse] = msgspec.field(default_factory=list)
    """Most used first."""
    refused: list[str] = msgspec.field(default_factory=list)
    """Hosts the app tried to reach that the proxy refused (`example.com:443 CONNECT: not a provider Viva serves`)."""
    failed_handshakes: list[str] = msgspec.field(default_factory=list)
    """TLS handshakes with the proxy that failed: usually a client with its own trust roots (Viva's limitation)."""
    unserved: list[str] = msgspec.field(default_factory=list)
    """Providers the app tried to reach that Viva does not stand in for (`Google Gemini`): its model-dependent
    checks are then not_run, naming them."""


class DynamicRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    sandbox: SandboxInfo
    gateway: GatewaySettings
    interface: AppInterface
    service: ServiceResult | None = None
    evals: EvalsResult | None = None
    latency: LatencyResult | None = None
    citations: CitationsResult | None = None
    injection: InjectionResult | None = None
    cost: CostResult | None = None
    ceiling: CeilingResult | None = None
    faults: list[FaultResult] = msgspec.field(default_factory=list)
    probes: list[ProbeRun] = msgspec.field(default_factory=list)
    """The small probes' results (grader/dynamic/probes/), one per wanted probe."""
    companions: list[str] = msgspec.field(default_factory=list)
    """The main instance's companion services (compose `depends_on`), each with its image and how it became ready;
    the services of the compose file that were not started, with why."""
    companions_down: list[str] = msgspec.field(default_factory=list)
    """Companion services that stopped while the app was measured: its model-dependent checks are then not_run."""
    seconds: float = 0.0
    instances: list[str] = msgspec.field(default_factory=list)
    """The app's instances, each in its own sandbox with its own gateway, and what each one was for."""
    providers: ProviderTraffic | None = None
    """Which client and wire API the app used, and what else it tried to reach."""
    notes: list[str] = msgspec.field(default_factory=list)

    def probe(self, check: str) -> ProbeRun | None:
        """The result of the small probe `check`, if it ran."""
        return next((result for result in self.probes if result.check == check), None)
