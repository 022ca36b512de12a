"""Running the candidate's project: dependency layer → sandbox with the gateway → evals → start → probe → ceiling.

Order matters and is fixed: the service starts first (an eval suite may talk to it), the ordinary probes run with
the stand-in model behaving (latency, whose sequential replies also feed citations and cost), then the gullible
model (injection), then faults, and last the ceiling, which needs a restart with a small budget.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.dynamic.citations import check_citations
from grader.dynamic.client import Reply, ask
from grader.dynamic.cost import compare_costs, drive_ceiling, trip_budget
from grader.dynamic.evals import run_evals
from grader.dynamic.faults import inject_faults
from grader.dynamic.injection import probe_bank, run_probes
from grader.dynamic.interface import OPENAPI_PATHS, discover_query, infer_pointers, manifest_snippet, plan_interface
from grader.dynamic.latency import measure_latency
from grader.dynamic.model import (
    AppInterface,
    CeilingResult,
    DynamicRun,
    GatewaySettings,
    InjectionResult,
    SandboxInfo,
    ServiceResult,
)
from grader.dynamic.scores import dynamic_score
from grader.model import Score
from grader.profile import RepoProfile
from rubrics.catalogue import (
    CitationValidityParams,
    CostCeilingParams,
    CostReportingParams,
    EvalSuiteRunsParams,
    InjectionProbesParams,
    LatencyParams,
    ProviderFaultsParams,
    ServiceStartsParams,
)
from sandboxes.deps import ParsedRequirements, parse_requirements
from sandboxes.docker_backend import DockerSandbox, docker_client, make_readable
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.gateway.app import GatewayConfig
from sandboxes.gateway.serve import serve_gateway
from sandboxes.images import ensure_base_image
from sandboxes.layers import VENV, dependency_layer
from sandboxes.service import SandboxedService, StartFailure, gateway_env
from sandboxes.settings import SandboxSettings

StepCallback = Callable[[str], None]
STEPS = ("dependencies", "start", "evals", "latency", "injection", "faults", "ceiling")
DEFAULT_PARAMS: dict[str, Any] = {
    "service_starts": ServiceStartsParams(),
    "eval_suite_runs": EvalSuiteRunsParams(),
    "latency_p95": LatencyParams(),
    "citation_validity": CitationValidityParams(),
    "injection_probes": InjectionProbesParams(),
    "cost_reporting": CostReportingParams(),
    "cost_ceiling_trips": CostCeilingParams(),
    "provider_faults": ProviderFaultsParams(),
}
REQUEST_TIMEOUT_S = 60.0
STAND_IN_MODEL = "the gateway's offline responder"


@dataclass(frozen=True)
class DynamicOptions:
    """How the dynamic checks run on this host (VIVA_SANDBOX_* and VIVA_GRADING_*)."""

    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "viva")
    index_url: str = "https://pypi.org/simple"
    time_scale: float = 1.0
    """Scales the stand-in model's modelled latency (0 in tests; 1 feels like a real provider)."""
    time_to_first_token_s: float = 0.4
    tokens_per_second: float = 80.0
    fault_time_scale: float = 1.0
    """Scales played timeouts and slow answers; below 1 only in Viva's own tests (an app's timeout is real time)."""

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> DynamicOptions:
        return cls(
            sandbox=settings,
            cache_dir=Path(settings.cache_dir).expanduser(),
            index_url=settings.index_url,
            time_scale=settings.gateway_time_scale,
            time_to_first_token_s=settings.gateway_ttft_s,
            tokens_per_second=settings.gateway_tokens_per_second,
            fault_time_scale=settings.fault_time_scale,
        )


def run_dynamic(
    root: Path,
    profile: RepoProfile,
    leaves: list[tuple[str, str, Any]],
    scratch: Path,
    options: DynamicOptions,
    step: StepCallback | None = None,
) -> tuple[dict[str, Score], DynamicRun | None]:
    """Scores for the dynamic leaves [(path, check name, params)], and what was measured. Viva's own failure (no
    Docker, no base image) makes every leaf not_run with the reason; the candidate's failures score 0."""
    try:
        client = docker_client()
        base_id = ensure_base_image(client, options.sandbox)
    except SandboxUnavailable as error:
        reason = f"No sandbox available on this host: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    params = dict(DEFAULT_PARAMS)
    for _, name, value in leaves:
        params[name] = value
    wanted = {name for _, name, _ in leaves}
    try:
        run = asyncio.run(
            _run(root, profile, params, wanted, scratch, options, client, base_id, step or (lambda _: None))
        )
    except SandboxUnavailable as error:
        reason = f"The sandbox failed during the run: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    return {path: dynamic_score(name, value, run) for path, name, value in leaves}, run


async def _run(  # noqa: PLR0913, PLR0915 - the one place the whole sequence is visible
    root: Path,
    profile: RepoProfile,
    params: dict[str, Any],
    wanted: set[str],
    scratch: Path,
    options: DynamicOptions,
    client: Any,
    base_id: str,
    step: StepCallback,
) -> DynamicRun:
    started = time.monotonic()
    ceiling_params: CostCeilingParams = params["cost_ceiling_trips"]
    faults_params: ProviderFaultsParams = params["provider_faults"]
    found = plan_interface(profile, root, ceiling_params.budget_variable)

    step("dependencies")
    requirements = _requirements(root)
    layer = await asyncio.to_thread(
        dependency_layer, client, options.sandbox.image, requirements, options.cache_dir, options.index_url
    )
    info = SandboxInfo(
        base_image=options.sandbox.image,
        base_image_id=base_id,
        image=layer.image,
        layer_cached=layer.cached,
        layer_seconds=round(layer.seconds, 2),
        install_ok=layer.install_ok,
        requirements=layer.requirements,
        refused_requirements=[f"line {item.line}: {item.text} ({item.reason})" for item in requirements.refused],
        missing_wheels=layer.missing_wheels,
        install_log_tail=layer.log_tail[-3000:],
    )
    gateway_config = GatewayConfig(
        time_scale=options.time_scale,
        time_to_first_token_s=options.time_to_first_token_s,
        tokens_per_second=options.tokens_per_second,
        fault_time_scale=options.fault_time_scale,
        timeout_s=faults_params.timeout_seconds + 10,
    )
    run = DynamicRun(
        sandbox=info,
        gateway=GatewaySettings(
            model=STAND_IN_MODEL,
            time_to_first_token_s=options.time_to_first_token_s,
            tokens_per_second=options.tokens_per_second,
            time_scale=options.time_scale,
            fault_time_scale=options.fault_time_scale,
        ),
        interface=found,
    )
    socket_dir = scratch / "sockets"
    make_readable(root)
    env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": VENV, **gateway_env()}
    with serve_gateway(socket_dir, gateway_config) as gateway:
        sandbox = DockerSandbox(
            layer.image, repo_dir=root, limits=options.sandbox.limits(), socket_dir=socket_dir, env=env, client=client
        )
        async with sandbox:
            copied = await sandbox.exec(["sh", "-c", "mkdir -p /work/app && cp -a /repo/. /work/app/"], timeout=300)
            if copied.returncode != 0:
                raise SandboxError(f"could not copy the repository into the sandbox: {copied.stderr[-300:]}")
            service = SandboxedService(sandbox, socket_dir, found.port)
            step("start")
            run.service = await _start(service, found, {}, info, params["service_starts"])
            if run.service.started:
                await _find_query(service, found, run.service, gateway, profile)
            if found.missing:
                found.snippet = manifest_snippet(found)

            if "eval_suite_runs" in wanted and found.evals_command:
                step("evals")
                evals_params: EvalSuiteRunsParams = params["eval_suite_runs"]
                count, source = _static_count(profile, found)
                run.evals = await run_evals(
                    sandbox,
                    found.evals_command,
                    found.env,
                    evals_params.runs,
                    evals_params.timeout_seconds,
                    count,
                    source,
                )

            if run.service.started and found.query_path is not None:
                async with service.client(timeout=REQUEST_TIMEOUT_S) as http:
                    step("latency")
                    latency_params: LatencyParams = params["latency_p95"]
                    run.latency, replies = await measure_latency(
                        http, found, gateway, latency_params.min_requests, latency_params.concurrency, REQUEST_TIMEOUT_S
                    )
                    run.citations = check_citations(replies[: max(params["citation_validity"].min_queries, 25)])
                    run.cost = compare_costs(replies, params["cost_reporting"].tolerance)
                    if "injection_probes" in wanted:
                        step("injection")
                        injection_params: InjectionProbesParams = params["injection_probes"]
                        gateway.config.gullible = True
                        probes, indirect = await run_probes(
                            http,
                            found,
                            gateway,
                            probe_bank(injection_params.probe_set == "extended"),
                            REQUEST_TIMEOUT_S,
                        )
                        gateway.config.gullible = False
                        run.injection = InjectionResult(
                            probes=probes, leaks=sum(1 for p in probes if p.leaked), indirect_ran=indirect
                        )
                    if "provider_faults" in wanted:
                        step("faults")

                        async def restart() -> None:
                            await service.stop()
                            await _start(service, found, {}, info, params["service_starts"])

                        run.faults = await inject_faults(
                            http,
                            found,
                            gateway,
                            list(faults_params.faults),
                            faults_params.timeout_seconds,
                            service.alive,
                            restart,
                        )
                if "cost_ceiling_trips" in wanted:
                    step("ceiling")
                    run.ceiling = await _ceiling(service, found, gateway, info, params, replies)
            run.seconds = round(time.monotonic() - started, 2)
    return run


async def _start(
    service: SandboxedService,
    found: AppInterface,
    extra_env: dict[str, str],
    info: SandboxInfo,
    params: ServiceStartsParams,
) -> ServiceResult:
    if found.start_command is None:
        return ServiceResult(
            started=False, reason="no start command could be found (manifest, Dockerfile, Procfile, code, README)"
        )
    await service.start(found.start_command, {**found.env, **extra_env})
    timeout = (
        min(found.startup_seconds, params.startup_timeout_seconds) if found.health else params.startup_timeout_seconds
    )
    try:
        seconds = await service.wait_ready(found.health or "/", timeout, any_status=found.health is None)
    except StartFailure as failure:
        tail = failure.log_tail
        if not info.install_ok:
            tail = f"[dependency install failed]\n{info.install_log_tail[-1500:]}\n[app output]\n{tail}"
        return ServiceResult(started=False, reason=failure.reason, log_tail=tail[-4000:])
    return ServiceResult(started=True, ready_seconds=round(seconds, 3), log_tail=(await service.tail())[-2000:])


async def _find_query(
    service: SandboxedService, found: AppInterface, result: ServiceResult, gateway: Any, profile: RepoProfile
) -> None:
    async with service.client(timeout=10) as http:
        if found.query_path is None:
            document = None
            for path in OPENAPI_PATHS:
                try:
                    response = await http.get(path)
                    data = response.json() if response.status_code == 200 else None
                except (ValueError, OSError, Exception):  # noqa: BLE001 - any failure means "no document here"
                    continue
                if isinstance(data, dict) and isinstance(data.get("paths"), dict):
                    document = data
                    found.notes.append(f"OpenAPI document read from {path}")
                    break
            discover_query(found, document, profile)
        if found.query_path is None:
            return
        reply: Reply = await ask(http, found, gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
        result.first_query_status = reply.status or None
        if reply.status == 200:
            infer_pointers(found, reply.data)


async def _ceiling(
    service: SandboxedService,
    found: AppInterface,
    gateway: Any,
    info: SandboxInfo,
    params: dict[str, Any],
    replies: list[Reply],
) -> CeilingResult | None:
    ceiling: CostCeilingParams = params["cost_ceiling_trips"]
    if found.budget_env is None:
        return None
    budget = trip_budget(replies, ceiling.budget_usd)
    await service.stop()
    restarted = await _start(service, found, {found.budget_env: f"{budget:.8f}"}, info, params["service_starts"])
    if not restarted.started:
        return CeilingResult(
            outcome="broken",
            budget_env=found.budget_env,
            budget_usd=budget,
            note=f"with {found.budget_env}={budget:.8f} the app did not start: {restarted.reason}",
        )

    async def evidence_of_alert() -> str:
        text = await service.tail(limit=20_000)
        async with service.client(timeout=5) as http:
            try:
                metrics = await http.get("/metrics")
                if metrics.status_code == 200:
                    text += "\n" + metrics.text[:20_000]
            except Exception:  # noqa: BLE001 - no metrics endpoint is fine
                pass
        return text

    async with service.client(timeout=REQUEST_TIMEOUT_S) as http:
        result = await drive_ceiling(
            http, found, gateway, budget, ceiling.max_requests, REQUEST_TIMEOUT_S, evidence_of_alert
        )
    await service.stop()
    return result


def _requirements(root: Path) -> ParsedRequirements:
    """requirements.txt at the root, else [project].dependencies of pyproject.toml, read as data."""
    text = ""
    requirements_file = root / "requirements.txt"
    if requirements_file.is_file():
        text = requirements_file.read_text(errors="replace")[:200_000]
    elif (root / "pyproject.toml").is_file():
        try:
            data = tomllib.loads((root / "pyproject.toml").read_text(errors="replace")[:200_000])
            dependencies = data.get("project", {}).get("dependencies", [])
            text = "\n".join(str(item) for item in dependencies if isinstance(item, str))
        except tomllib.TOMLDecodeError:
            text = ""
    return parse_requirements(text)


def _static_count(profile: RepoProfile, found: AppInterface) -> tuple[int | None, str]:
    if found.evals_cases_path:
        for golden in profile.evals.golden_sets:
            if golden.path == found.evals_cases_path:
                return golden.cases, f"{golden.path} has {golden.cases} cases"
    if profile.evals.parametrized_cases:
        return profile.evals.parametrized_cases, "eval parametrizations counted statically"
    return None, ""
