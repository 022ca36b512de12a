"""Static checks: one small function per catalogue entry of kind "static", from the profile to a Score.

Each scores what the code and files show, never what prose claims. A shortfall scores 0 with the reason;
partial credit is proportional where the rubric's bar is a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grader.checks.registry import CheckRegistry, guarded
from grader.model import Evidence, Score
from grader.profile.model import MAX_EVIDENCE, RepoProfile
from rubrics.catalogue import (
    EvalCaseCountParams,
    EvalsInCiParams,
    InjectionTestsParams,
    NoParams,
    PinnedDependenciesParams,
    ReadmeSectionsParams,
    TestSuiteParams,
)

StaticCheck = Callable[[RepoProfile, Any], Score]
STATIC_CHECKS: CheckRegistry[StaticCheck] = CheckRegistry("static")


def ratio(found: float, wanted: float) -> float:
    """found / wanted, capped at 1; 1 when nothing is wanted."""
    return 1.0 if wanted <= 0 else min(1.0, max(0.0, found / wanted))


@STATIC_CHECKS.register("eval_case_count")
def eval_case_count(profile: RepoProfile, params: EvalCaseCountParams) -> Score:
    evals = profile.evals
    hand_written = evals.hand_written_cases
    evidence = [item for golden in evals.golden_sets if golden.hand_written for item in golden.evidence]
    evidence += evals.parametrized_evidence
    generated = [golden for golden in evals.golden_sets if not golden.hand_written]
    parts = [f"{hand_written} hand-written eval case(s) against a minimum of {params.minimum}"]
    sets = [f"{golden.path} ({golden.cases})" for golden in evals.golden_sets if golden.hand_written]
    if sets:
        parts.append("in " + ", ".join(sets[:5]))
    if evals.parametrized_cases:
        parts.append(f"including {evals.parametrized_cases} in parametrized eval tests")
    for golden in generated[:3]:
        parts.append(f"{golden.cases} case(s) in {golden.path} not counted: {golden.reason}")
        evidence += [
            Evidence(item.path, item.line, item.excerpt, f"not counted: {golden.reason}") for item in golden.evidence
        ]
    if evals.answer_test_cases:
        parts.append(f"including {evals.answer_test_cases} test(s) that ask a question and assert on the answer")
        evidence += evals.answer_test_evidence
    if not evals.golden_sets and not evals.parametrized_cases and not evals.answer_test_cases:
        parts = [
            f"No golden set found (looked for JSON/JSONL/CSV/YAML cases under eval, golden, dataset paths, "
            f"parametrized eval tests and tests that assert on answers); the bar is {params.minimum} hand-written cases"
        ]
    value = case_level(hand_written, params.minimum)
    if evals.harness and value < HANDFUL:
        # An eval is driven from code (a framework, or retrieval metrics computed by hand) but its cases are not
        # counted here: a hosted dataset, or questions generated on the fly.
        parts.append(
            "an eval is run from code (an eval framework, or retrieval metrics such as hit rate and MRR), over cases "
            "not counted here"
        )
        evidence += evals.harness
        value = HANDFUL
    return Score.scored(value, "; ".join(parts) + ".", evidence[:MAX_EVIDENCE])


HANDFUL = 0.34
"""A handful of cases: docs/LABELLING.md's level 1."""


def case_level(cases: int, minimum: int) -> float:
    """The labelling guide's levels for a count of cases against the bar: none 0; a handful (under a fifth of
    the bar) 0.34; dozens, short of the bar, 0.8 (with the suite's automation this reaches level 2 and more);
    the bar or more 1.0."""
    if cases <= 0:
        return 0.0
    if cases >= minimum:
        return 1.0
    return HANDFUL if cases < max(1, minimum // 5) else 0.8


@STATIC_CHECKS.register("evals_in_ci")
def evals_in_ci(profile: RepoProfile, params: EvalsInCiParams) -> Score:
    running = [workflow for workflow in profile.workflows if workflow.eval_steps]
    on_pr = [workflow for workflow in running if workflow.on_pull_request]
    missing = [item for workflow in profile.workflows for item in workflow.missing_eval_steps]
    broken = [workflow for workflow in profile.workflows if workflow.problem]
    if on_pr:
        workflow = on_pr[0]
        return Score.scored(1.0, f"{workflow.path} runs the eval suite on pull requests.", workflow.eval_steps)
    if running:
        workflow = running[0]
        triggers = ", ".join(workflow.triggers) or "no trigger"
        value = 0.5 if params.require_pull_request else 1.0
        return Score.scored(
            value, f"{workflow.path} runs the eval suite, but on {triggers}, not on pull requests.", workflow.eval_steps
        )
    if missing:
        return Score.scored(
            0.0, f"A workflow step looks like evals but {missing[0].note}; that is not an eval suite.", missing
        )
    if broken:
        return Score.scored(
            0.0,
            f"{broken[0].path} could not be read ({broken[0].problem}), and no other workflow runs evals.",
            [Evidence(broken[0].path, None)],
        )
    if profile.workflows:
        return Score.scored(
            0.0,
            f"{len(profile.workflows)} CI workflow(s), none of which runs an eval suite.",
            [Evidence(workflow.path, None) for workflow in profile.workflows],
        )
    return Score.scored(0.0, "No CI workflow found (.github/workflows, .gitlab-ci.yml).")


@STATIC_CHECKS.register("injection_guards")
def injection_guards(profile: RepoProfile, params: NoParams) -> Score:
    facts = profile.injection
    libraries = profile.uses("guardrail")
    has_input = bool(facts.input_guards or libraries)
    has_output = bool(facts.output_guards)
    evidence = facts.input_guards + facts.output_guards + [item for usage in libraries for item in usage.evidence]
    if has_input and has_output:
        return Score.scored(1.0, "Guards screen both the input (injection) and the output (leaks).", evidence)
    if has_input or has_output:
        # A real guard on either side is the guide's level 2 with no tests (docs/LABELLING.md): full marks here,
        # the missing side named.
        side = "input" if has_input else "output"
        other = "output (system-prompt or data leaks)" if has_input else "input (injection attempts)"
        return Score.scored(0.9, f"The {side} is guarded; nothing screens the {other}.", evidence)
    if facts.gestures:
        return Score.scored(
            0.4,
            "Only the prompt resists injection (the context is fenced, or the model is told to keep to it); nothing "
            "in the code screens the input or the output.",
            facts.gestures[:MAX_EVIDENCE],
        )
    return Score.scored(
        0.0, "No injection guard found in the application code (input screening or output leak checks)."
    )


@STATIC_CHECKS.register("injection_tests")
def injection_tests(profile: RepoProfile, params: InjectionTestsParams) -> Score:
    facts = profile.injection
    if not facts.tests:
        return Score.scored(0.0, "No test attacks the app with injection prompts.")
    return Score.scored(
        ratio(facts.test_cases, params.minimum_cases),
        f"{facts.test_cases} injection test case(s) against a minimum of {params.minimum_cases}.",
        facts.tests,
    )


@STATIC_CHECKS.register("citation_structure")
def citation_structure(profile: RepoProfile, params: NoParams) -> Score:
    """The labelling guide's levels: sources shown loosely (the retrieved documents beside the answer, a sources
    field of everything retrieved, or a prompt asking for sources) 0.34; citations in the response contract
    (inline markers the prompt asks for, mapped to the sources returned) 0.8; cited ids checked 1.0."""
    facts = profile.citations
    fields, markers, checked = facts.response_fields, facts.prompt_instructions, facts.validation
    loose = facts.loose_sources + facts.asks
    evidence = [*checked, *fields, *markers, *loose][:MAX_EVIDENCE]
    if checked and (fields or markers):
        return Score.scored(1.0, "Citations are in the response and checked against what was retrieved.", evidence)
    if markers and (fields or facts.loose_sources):
        # The model cites in a format the prompt sets, and the sources it cites come back with the answer.
        return Score.scored(
            0.8, "Inline markers the prompt asks for, mapped to returned sources; nothing checks cited ids.", evidence
        )
    if fields or markers or loose:
        return Score.scored(
            0.34,
            "Sources are shown loosely: the retrieved documents beside the answer, or citations asked of the model "
            "that nothing ties to the returned sources.",
            evidence,
        )
    return Score.scored(0.0, "Responses carry no citations: no citation fields, prompt instructions or validation.")


@STATIC_CHECKS.register("cost_accounting")
def cost_accounting(profile: RepoProfile, params: NoParams) -> Score:
    cost = profile.cost
    if cost.accounting:
        return Score.scored(1.0, "Token usage is converted to money in the code.", cost.accounting)
    if cost.usage or cost.tracing:
        seen = "token usage is read from the model's responses" if cost.usage else "a tracer records usage outside"
        return Score.scored(
            0.4, f"Usage is seen, not priced: {seen}; nothing turns it into money.", cost.usage or cost.tracing
        )
    return Score.scored(0.0, "No code converts token usage to cost (prices × tokens, or a pricing library).")


@STATIC_CHECKS.register("budget_ceiling")
def budget_ceiling(profile: RepoProfile, params: NoParams) -> Score:
    cost = profile.cost
    if cost.ceilings:
        return Score.scored(
            1.0, "Spending is compared with a limit, and the branch refuses the request.", cost.ceilings
        )
    if cost.alerts_only:
        return Score.scored(
            0.75,
            "Spending is compared with a limit, but going over only logs or alerts; nothing stops the spending.",
            cost.alerts_only,
        )
    if cost.budget_settings:
        return Score.scored(
            0.5,
            "A spending limit is configured, but nothing in the code compares spend against it.",
            cost.budget_settings,
        )
    return Score.scored(0.0, "No hard budget ceiling: no comparison of spend against a limit that refuses or alerts.")


@STATIC_CHECKS.register("latency_measurement")
def latency_measurement(profile: RepoProfile, params: NoParams) -> Score:
    """The labelling guide's levels: a timer or tracing spans 0.34; percentiles or histograms of time, or a load
    test, 0.67; percentiles checked against a target 1.0."""
    latency = profile.latency
    aggregated = latency.percentiles + latency.load_tests
    if aggregated and latency.targets:
        return Score.scored(
            1.0, "Latency is aggregated as percentiles and checked against a target.", latency.targets + aggregated
        )
    if aggregated:
        what = "percentiles or a histogram of time" if latency.percentiles else "a load test"
        return Score.scored(0.67, f"Latency is aggregated ({what}), with no target checked.", aggregated)
    if latency.timing or latency.tracing:
        what = "requests are timed" if latency.timing else "a tracer records spans"
        return Score.scored(
            0.34, f"Only a timer: {what}, with no percentiles over requests.", latency.timing or latency.tracing
        )
    return Score.scored(0.0, "Latency is not measured in the code.")


@STATIC_CHECKS.register("readme_sections")
def readme_sections(profile: RepoProfile, params: ReadmeSectionsParams) -> Score:
    readme = profile.readme
    if readme is None:
        return Score.scored(0.0, "No README at the repository root.")
    found = [kind for kind in params.required if kind in readme.sections]
    missing = [kind for kind in params.required if kind not in readme.sections]
    text = f"{readme.path} ({readme.lines} lines) has {len(found)} of {len(params.required)} required sections"
    text += f"; missing: {', '.join(missing)}." if missing else "."
    return Score.scored(ratio(len(found), len(params.required)), text, [readme.sections[kind] for kind in found])


@STATIC_CHECKS.register("pinned_dependencies")
def pinned_dependencies(profile: RepoProfile, params: PinnedDependenciesParams) -> Score:
    deps = profile.dependencies
    requirements = deps.requirements
    if deps.lock_files:
        return Score.scored(
            1.0,
            f"A lock file pins every version: {', '.join(deps.lock_files[:3])}.",
            [Evidence(path, None) for path in deps.lock_files[:3]],
        )
    if not requirements:
        return Score.scored(0.0, "No dependency file declares what the project needs.")
    pinned = [item for item in requirements if item.pinned]
    share = len(pinned) / len(requirements)
    unpinned = [item for item in requirements if not item.pinned]
    text = (
        f"{len(pinned)} of {len(requirements)} dependencies pinned to an exact version ({share:.0%}; "
        f"the bar is {params.minimum_share:.0%})"
    )
    if unpinned:
        text += f"; unpinned: {', '.join(item.name for item in unpinned[:6])}"
    evidence = [
        Evidence(file.path, item.line, f"{item.name}{item.spec}")
        for file in deps.files
        for item in file.requirements
        if not item.pinned
    ][:MAX_EVIDENCE]
    return Score.scored(ratio(share, params.minimum_share), text + ".", evidence)


@STATIC_CHECKS.register("dockerfile")
def dockerfile(profile: RepoProfile, params: NoParams) -> Score:
    container = profile.container
    if container.dockerfiles and container.commands:
        return Score.scored(
            1.0,
            "A Dockerfile builds the app and says how to run it.",
            container.dockerfiles[:3] + container.commands[:3],
        )
    if container.dockerfiles or container.compose_files:
        return Score.scored(
            0.6,
            "A container file exists, but no CMD or ENTRYPOINT says how to run the app.",
            container.dockerfiles + container.compose_files,
        )
    return Score.scored(0.0, "No Dockerfile or compose file.")


@STATIC_CHECKS.register("test_suite")
def test_suite(profile: RepoProfile, params: TestSuiteParams) -> Score:
    tests = profile.tests
    if not tests.functions:
        return Score.scored(0.0, "No automated tests (test_*.py / *_test.py with test functions).")
    return Score.scored(
        ratio(tests.total_cases, params.minimum_tests),
        f"{tests.functions} test function(s) in {tests.files} file(s), {tests.total_cases} case(s) "
        f"with parametrizations, against a minimum of {params.minimum_tests}.",
        tests.evidence,
    )


@STATIC_CHECKS.register("api_service")
def api_service(profile: RepoProfile, params: NoParams) -> Score:
    routes = profile.routes
    if not routes:
        return Score.scored(0.0, "No HTTP routes found (FastAPI, Flask, Litestar, Django, Starlette).")
    typed = [route for route in routes if route.request_fields or route.response_fields]
    evidence = [route.evidence for route in (typed or routes)][:MAX_EVIDENCE]
    if typed:
        return Score.scored(
            1.0, f"{len(routes)} HTTP route(s); {len(typed)} with typed request or response models.", evidence
        )
    return Score.scored(0.6, f"{len(routes)} HTTP route(s), none with a typed request or response model.", evidence)


@STATIC_CHECKS.register("resilience_code")
def resilience_code(profile: RepoProfile, params: NoParams) -> Score:
    facts = profile.resilience
    parts = [("timeouts", facts.timeouts), ("retries with backoff", facts.retries), ("fallbacks", facts.fallbacks)]
    present = [name for name, items in parts if items]
    absent = [name for name, items in parts if not items]
    evidence = [item for _, items in parts for item in items[:5]]
    if not present:
        return Score.scored(0.0, "No timeouts, retries or fallbacks around external calls.")
    text = f"Found {', '.join(present)}" + (f"; missing {', '.join(absent)}." if absent else ".")
    return Score.scored(len(present) / len(parts), text, evidence)


def run_static_check(name: str, profile: RepoProfile, params: Any) -> Score:
    """Run one static check. A crash inside a check is Viva's bug: it becomes status "error", never a 0."""
    check = STATIC_CHECKS.get(name)
    if check is None:
        return Score.not_run(f"The static check {name!r} is not implemented in this version.")
    return guarded(name, "static", lambda: check(profile, params))
