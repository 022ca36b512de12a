"""Running the candidate's project: dependency layer → sandbox with the gateway → start → evals → probes → ceiling.

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

import httpx

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
    EvalsResult,
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
from sandboxes.service import AppTunnel, SandboxedService, StartFailure, app_tunnel, gateway_env
from sandboxes.settings import SandboxSettings

StepCallback = Callable[[str], None]
STEPS = ("dependencies", "start", "latency", "injection", "evals", "faults", "ceiling")
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
REQUEST_TIMEOUT_S = 30.0
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
    *,
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
    session = _Session(root, profile, params, {name for _, name, _ in leaves}, options, step or (lambda _: None))
    try:
        run = asyncio.run(session.run(client, base_id, scratch))
    except (SandboxUnavailable, SandboxError) as error:
        reason = f"The sandbox failed during the run: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    return {path: dynamic_score(name, value, run) for path, name, value in leaves}, run


class _Session:
    """One dynamic run: the state the steps share (what was found, the gateway, the service, what was measured)."""

    def __init__(  # noqa: PLR0917 - built in one place, run_dynamic
        self,
        root: Path,
        profile: RepoProfile,
        params: dict[str, Any],
        wanted: set[str],
        options: DynamicOptions,
        step: StepCallback,
    ) -> None:
        self.root, self.profile, self.params, self.wanted = root, profile, params, wanted
        self.options, self.step = options, step
        ceiling: CostCeilingParams = params["cost_ceiling_trips"]
        self.found = plan_interface(profile, root, ceiling.budget_variable)
        self._evals: asyncio.Task[EvalsResult] | None = None

    async def run(self, client: Any, base_id: str, scratch: Path) -> DynamicRun:
        started = time.monotonic()
        self.step("dependencies")
        requirements = _requirements(self.root)
        options = self.options
        layer = await asyncio.to_thread(
            dependency_layer, client, options.sandbox.image, requirements, options.cache_dir, options.index_url
        )
        self.info = SandboxInfo(
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
        faults: ProviderFaultsParams = self.params["provider_faults"]
        config = GatewayConfig(
            time_scale=options.time_scale,
            time_to_first_token_s=options.time_to_first_token_s,
            tokens_per_second=options.tokens_per_second,
            fault_time_scale=options.fault_time_scale,
            timeout_s=faults.timeout_seconds + 10,  # a played timeout outlasts Viva's own wait
        )
        self.result = DynamicRun(
            sandbox=self.info,
            gateway=GatewaySettings(
                model=STAND_IN_MODEL,
                time_to_first_token_s=options.time_to_first_token_s,
                tokens_per_second=options.tokens_per_second,
                time_scale=options.time_scale,
                fault_time_scale=options.fault_time_scale,
            ),
            interface=self.found,
        )
        socket_dir = scratch / "sockets"
        make_readable(self.root)
        env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": VENV, **gateway_env()}
        with serve_gateway(socket_dir, config) as self.gateway, app_tunnel(socket_dir, scratch / "private") as tunnel:
            sandbox = DockerSandbox(
                layer.image,
                repo_dir=self.root,
                limits=options.sandbox.limits(),
                socket_dir=socket_dir,
                env=env,
                client=client,
            )
            async with sandbox:
                await self._in_sandbox(sandbox, tunnel)
        self.result.seconds = round(time.monotonic() - started, 2)
        return self.result

    async def _in_sandbox(self, sandbox: DockerSandbox, tunnel: AppTunnel) -> None:
        copied = await sandbox.exec(["sh", "-c", "mkdir -p /work/app && cp -a /repo/. /work/app/"], timeout=300)
        if copied.returncode != 0:
            raise SandboxError(f"could not copy the repository into the sandbox: {copied.stderr[-300:]}")
        found, result = self.found, self.result
        self.service = SandboxedService(sandbox, tunnel, found.port)
        self.step("start")
        result.service = await self._start({})
        if result.service.started:
            await self._find_query(result.service)
        if found.missing:
            found.snippet = manifest_snippet(found)
        try:
            if result.service.started and found.query_path is not None:
                replies = await self._probe(sandbox)
                await self._evals_finished()  # the ceiling reads the gateway's ledger: no other caller may spend
                if "cost_ceiling_trips" in self.wanted:
                    self.step("ceiling")
                    result.ceiling = await self._ceiling(replies)
            self._start_evals(sandbox)
            await self._evals_finished()
        finally:
            if self._evals is not None and not self._evals.done():
                self._evals.cancel()

    def _start_evals(self, sandbox: DockerSandbox) -> None:
        """Run the eval suite in the background, once. Its model calls carry none of the questions faults are keyed
        to, so it runs beside the fault probes, whose time is mostly the app's own waiting."""
        found = self.found
        if self._evals is not None or "eval_suite_runs" not in self.wanted or not found.evals_command:
            return
        self.step("evals")
        evals: EvalSuiteRunsParams = self.params["eval_suite_runs"]
        count, source = _static_count(self.profile, found)
        self._evals = asyncio.create_task(
            run_evals(
                sandbox,
                found.evals_command,
                found.env,
                runs=evals.runs,
                timeout_s=evals.timeout_seconds,
                static_count=count,
                static_source=source,
            )
        )

    async def _evals_finished(self) -> None:
        if self._evals is not None and self.result.evals is None:
            self.result.evals = await self._evals

    async def _probe(self, sandbox: DockerSandbox) -> list[Reply]:
        """Latency (whose sequential replies feed citations and cost), then injection, then faults with the eval
        suite running beside them (not earlier: latency is measured on a quiet machine, and the gullible model the
        injection probes meet would answer the suite too)."""
        found, result, gateway, params = self.found, self.result, self.gateway, self.params
        async with self.service.client(timeout=REQUEST_TIMEOUT_S) as http:
            self.step("latency")
            latency: LatencyParams = params["latency_p95"]
            result.latency, replies = await measure_latency(
                http,
                found,
                gateway,
                min_requests=latency.min_requests,
                concurrency=latency.concurrency,
                timeout=REQUEST_TIMEOUT_S,
            )
            citations: CitationValidityParams = params["citation_validity"]
            result.citations = check_citations(replies[: max(citations.min_queries, 25)])
            result.cost = compare_costs(replies, params["cost_reporting"].tolerance)
            if "injection_probes" in self.wanted:
                self.step("injection")
                injection: InjectionProbesParams = params["injection_probes"]
                gateway.config.gullible = True
                try:
                    bank = probe_bank(injection.probe_set == "extended")
                    probes, indirect = await run_probes(http, found, gateway, bank, REQUEST_TIMEOUT_S)
                finally:
                    gateway.config.gullible = False
                result.injection = InjectionResult(
                    probes=probes, leaks=sum(1 for probe in probes if probe.leaked), indirect_ran=indirect
                )
            self._start_evals(sandbox)
            if "provider_faults" in self.wanted:
                self.step("faults")
                faults: ProviderFaultsParams = params["provider_faults"]

                async def restart() -> None:
                    await self.service.stop()
                    await self._start({})

                result.faults = await inject_faults(
                    http,
                    found,
                    gateway,
                    faults=list(faults.faults),
                    timeout=faults.timeout_seconds,
                    alive=self.service.alive,
                    restart=restart,
                    quiet=self._evals_finished,
                )
        return replies

    async def _start(self, extra_env: dict[str, str]) -> ServiceResult:
        found, service = self.found, self.service
        if found.start_command is None:
            return ServiceResult(
                started=False, reason="no start command could be found (manifest, Dockerfile, Procfile, code, README)"
            )
        await service.start(found.start_command, {**found.env, **extra_env})
        starts: ServiceStartsParams = self.params["service_starts"]
        timeout = starts.startup_timeout_seconds
        if found.health:
            timeout = min(found.startup_seconds, timeout)
        try:
            seconds = await service.wait_ready(found.health or "/", timeout, any_status=found.health is None)
        except StartFailure as failure:
            tail = failure.log_tail
            if not self.info.install_ok:
                tail = f"[dependency install failed]\n{self.info.install_log_tail[-1500:]}\n[app output]\n{tail}"
            return ServiceResult(started=False, reason=failure.reason, log_tail=tail[-4000:])
        return ServiceResult(started=True, ready_seconds=round(seconds, 3), log_tail=(await service.tail())[-2000:])

    async def _find_query(self, started: ServiceResult) -> None:
        """The query route (OpenAPI document, else the profile's routes) and, from a first answer, its fields."""
        found = self.found
        async with self.service.client(timeout=10) as http:
            if found.query_path is None:
                discover_query(found, await _openapi_document(http, found), self.profile)
            if found.query_path is None:
                return
            reply = await ask(http, found, self.gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
        started.first_query_status = reply.status or None
        if reply.status == 200:
            infer_pointers(found, reply.data)

    async def _ceiling(self, replies: list[Reply]) -> CeilingResult | None:
        """Restart with a small budget (about ten requests' worth) and drive requests until the app refuses."""
        found, service = self.found, self.service
        ceiling: CostCeilingParams = self.params["cost_ceiling_trips"]
        if found.budget_env is None:
            return None
        budget = trip_budget(replies, ceiling.budget_usd)
        await service.stop()
        restarted = await self._start({found.budget_env: f"{budget:.8f}"})
        if not restarted.started:
            return CeilingResult(
                outcome="broken",
                budget_env=found.budget_env,
                budget_usd=budget,
                note=f"with {found.budget_env}={budget:.8f} the app did not start: {restarted.reason}",
            )
        async with service.client(timeout=REQUEST_TIMEOUT_S) as http:

            async def visible_alerts() -> str:
                """The app's log, and its /metrics page if it has one: where a deployer would see an alert."""
                text = await service.tail(limit=20_000)
                try:
                    metrics = await http.get("/metrics", timeout=5)
                except httpx.HTTPError:
                    return text
                return text + ("\n" + metrics.text[:20_000] if metrics.status_code == 200 else "")

            # No graceful stop afterwards: the ceiling is the last probe, and removing the sandbox kills the app.
            return await drive_ceiling(
                http,
                found,
                self.gateway,
                budget_usd=budget,
                max_requests=ceiling.max_requests,
                timeout=REQUEST_TIMEOUT_S,
                read_log=visible_alerts,
            )


async def _openapi_document(http: httpx.AsyncClient, found: AppInterface) -> dict[str, Any] | None:
    for path in OPENAPI_PATHS:
        try:
            response = await http.get(path)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("paths"), dict):
            found.notes.append(f"OpenAPI document read from {path}")
            return data
    return None


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
