"""The check catalogue: every check any rubric may name, of every kind, with its parameter schema.

It is declared whole, even for kinds whose checks are built later (dynamic checks need the
sandbox, judge checks the LLM judge, interview checks the interviewer), so that validation rejects
unknown names and bad parameters today and a manager can tune a check without code.
Defaults here are the capstone bar of docs/DOMAIN notes (50 eval cases, p95 under 3 s, ...).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from rubrics.model import CheckKind

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)]
Count = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class Params(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every parameter struct; unknown parameters are an error, not silently ignored."""


class NoParams(Params, frozen=True):
    """A check that takes no parameters."""


# --- static: decided by reading the repository ------------------------------------------------


class EvalCaseCountParams(Params, frozen=True):
    minimum: Count = 50


class EvalsInCiParams(Params, frozen=True):
    require_pull_request: bool = True


class InjectionTestsParams(Params, frozen=True):
    minimum_cases: Count = 5


class ReadmeSectionsParams(Params, frozen=True):
    required: list[Literal["setup", "usage", "configuration", "evaluation", "architecture", "testing"]] = msgspec.field(
        default_factory=lambda: ["setup", "usage", "evaluation"]
    )


class PinnedDependenciesParams(Params, frozen=True):
    minimum_share: Share = 0.9


class TestSuiteParams(Params, frozen=True):
    minimum_tests: Count = 10


# --- dynamic: decided by running the project in the sandbox -----------------------------------


class EvalSuiteRunsParams(Params, frozen=True):
    runs: Annotated[int, msgspec.Meta(ge=1, le=5)] = 2
    minimum_cases: Count = 50
    timeout_seconds: PositiveSeconds = 600.0


class ServiceStartsParams(Params, frozen=True):
    startup_timeout_seconds: PositiveSeconds = 60.0


class LatencyParams(Params, frozen=True):
    p95_seconds: PositiveSeconds = 3.0
    min_requests: Annotated[int, msgspec.Meta(ge=10, le=10_000)] = 50
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4


class CitationValidityParams(Params, frozen=True):
    min_supported_share: Share = 0.8
    min_queries: Count = 10


class InjectionProbesParams(Params, frozen=True):
    probe_set: Literal["standard", "extended"] = "standard"
    min_probes: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20
    canary: bool = True


class CostReportingParams(Params, frozen=True):
    tolerance: Share = 0.1


class CostCeilingParams(Params, frozen=True):
    budget_variable: str | None = None
    budget_usd: Annotated[float, msgspec.Meta(gt=0.0, le=1000.0)] = 0.05
    max_requests: Count = 200


FaultName = Literal["rate_limit", "server_error", "timeout", "slow_stream", "truncated_stream", "malformed_json"]


class ProviderFaultsParams(Params, frozen=True):
    faults: list[FaultName] = msgspec.field(
        default_factory=lambda: ["rate_limit", "server_error", "timeout", "slow_stream", "malformed_json"]
    )
    timeout_seconds: PositiveSeconds = 30.0


class BadInputParams(Params, frozen=True):
    oversized_chars: Annotated[int, msgspec.Meta(ge=1_000, le=5_000_000)] = 100_000
    timeout_seconds: PositiveSeconds = 15.0


# --- judge: an LLM judge whose claims must cite the repo --------------------------------------


class JudgeParams(Params, frozen=True):
    min_citations: Annotated[int, msgspec.Meta(ge=0, le=50)] = 1
    votes: Annotated[int, msgspec.Meta(ge=1, le=7)] = 1


# --- interview: a dimension the interviewer probes --------------------------------------------


class InterviewDimensionParams(Params, frozen=True):
    topics: list[str] = msgspec.field(default_factory=list)
    max_follow_ups: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    level: Literal["junior", "intermediate", "senior"] | None = None
    """For a role interview (no repository): the level of the question bank's questions this dimension asks
    (interviewer/role_bank.py); None for a project interview."""


class CheckSpec(msgspec.Struct, frozen=True):
    """One catalogue entry: the check's kind, its parameter struct, and what it decides."""

    kind: CheckKind
    name: str
    params: type[Params]
    summary: str


def _spec(kind: CheckKind, name: str, params: type[Params], summary: str) -> tuple[str, CheckSpec]:
    return name, CheckSpec(kind=kind, name=name, params=params, summary=summary)


CATALOGUE: dict[str, CheckSpec] = dict(
    [
        # static
        _spec(
            "static",
            "eval_case_count",
            EvalCaseCountParams,
            "hand-written eval cases in golden sets and parametrized tests, against a minimum",
        ),
        _spec(
            "static",
            "evals_in_ci",
            EvalsInCiParams,
            "a CI workflow runs the eval suite (on pull requests, if required) with its data in the repo",
        ),
        _spec(
            "static",
            "injection_guards",
            NoParams,
            "input/output guards against prompt injection in the application code",
        ),
        _spec("static", "injection_tests", InjectionTestsParams, "tests that attack the app with injection prompts"),
        _spec(
            "static",
            "citation_structure",
            NoParams,
            "responses carry citations to source chunks (response fields, prompt instructions, validation)",
        ),
        _spec("static", "cost_accounting", NoParams, "token usage is converted to money per request"),
        _spec("static", "budget_ceiling", NoParams, "a budget with a hard ceiling that refuses or alerts"),
        _spec("static", "latency_measurement", NoParams, "latency is measured and reported as percentiles"),
        _spec("static", "readme_sections", ReadmeSectionsParams, "the README has the sections a stranger needs"),
        _spec("static", "pinned_dependencies", PinnedDependenciesParams, "dependencies are pinned to versions"),
        _spec("static", "dockerfile", NoParams, "a Dockerfile (or compose file) builds and runs the app"),
        _spec("static", "test_suite", TestSuiteParams, "an automated test suite of a reasonable size"),
        _spec("static", "api_service", NoParams, "an HTTP API with typed request and response shapes"),
        _spec("static", "resilience_code", NoParams, "timeouts, retries with backoff and fallbacks around model calls"),
        # dynamic
        _spec(
            "dynamic",
            "eval_suite_runs",
            EvalSuiteRunsParams,
            "the eval suite runs in the sandbox, passes, and gives the same outcome twice",
        ),
        _spec("dynamic", "service_starts", ServiceStartsParams, "the service starts and answers its health route"),
        _spec("dynamic", "latency_p95", LatencyParams, "end-to-end p95 latency on the golden query set"),
        _spec(
            "dynamic",
            "citation_validity",
            CitationValidityParams,
            "returned citations point at context the app retrieved and support the answer",
        ),
        _spec(
            "dynamic",
            "injection_probes",
            InjectionProbesParams,
            "a bank of injection probes against a gullible model leaks no system prompt or canary",
        ),
        _spec("dynamic", "cost_reporting", CostReportingParams, "the app's reported cost matches the gateway's ledger"),
        _spec(
            "dynamic", "cost_ceiling_trips", CostCeilingParams, "a small budget is enforced: the app refuses or alerts"
        ),
        _spec(
            "dynamic",
            "provider_faults",
            ProviderFaultsParams,
            "provider 429/500/timeouts/slow streams are retried, failed over or reported cleanly",
        ),
        _spec(
            "dynamic",
            "bad_input_rejected",
            BadInputParams,
            "an empty, a blank and an oversized question get a clean 4xx, not an answer, a 5xx or a hang",
        ),
        # judge
        _spec("judge", "readme_clarity", JudgeParams, "a stranger could set up, run and evaluate the project"),
        _spec(
            "judge", "tradeoffs_documented", JudgeParams, "design trade-offs are explained, costs as well as benefits"
        ),
        _spec("judge", "failure_modes_documented", JudgeParams, "known failure modes and limits are written down"),
        # interview
        _spec(
            "interview",
            "interview_dimension",
            InterviewDimensionParams,
            "a dimension the interviewer probes and rates low/medium/high",
        ),
    ]
)


def spec_for(name: str) -> CheckSpec | None:
    """The catalogue entry for `name`, or None when no such check exists."""
    return CATALOGUE.get(name)


def default_params(kind: CheckKind) -> dict[str, Params]:
    """Each check of `kind` with its parameters at their catalogue defaults (what a rubric gets by naming none)."""
    return {name: spec.params() for name, spec in CATALOGUE.items() if spec.kind == kind}
