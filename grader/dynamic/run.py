"""Running the candidate's project: dependency layer → sandboxes with their gateways → start → probes → evals.

The main instance of the app runs everything in a fixed order: start and discovery, latency on a quiet machine
(its sequential replies also feed citations and cost), injection with the gullible model, then the quick faults
with the eval suite beside them. Two companion instances (same image, own sandbox, own gateway) take the work that
is mostly waiting: the slow faults, played from the start, and the ceiling, started with a small budget once latency
has priced a request. A grading therefore waits for the longest of the three, not their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from grader.dynamic.citations import check_citations
from grader.dynamic.client import Reply, ask
from grader.dynamic.cost import compare_costs, drive_ceiling, trip_budget
from grader.dynamic.evals import run_evals
from grader.dynamic.faults import SLOW_FAULTS, inject_faults
from grader.dynamic.injection import probe_bank, run_probes
from grader.dynamic.interface import OPENAPI_PATHS, discover_query, infer_pointers, manifest_snippet, plan_interface
from grader.dynamic.latency import measure_latency
from grader.dynamic.model import (
    AppInterface,
    CeilingResult,
    DynamicRun,
    EvalsResult,
    FaultResult,
    GatewaySettings,
    InjectionResult,
    SandboxInfo,
    ServiceResult,
)
from grader.dynamic.options import DynamicOptions, StepCallback
from grader.dynamic.probes import PROBES, ProbeTarget
from grader.dynamic.probes import run_probes as run_small_probes
from grader.dynamic.scores import score_dynamic_leaves
from grader.model import Score
from grader.profile import RepoProfile
from rubrics.catalogue import (
    CitationValidityParams,
    CostCeilingParams,
    EvalSuiteRunsParams,
    InjectionProbesParams,
    LatencyParams,
    ProviderFaultsParams,
    ServiceStartsParams,
    default_params,
)
from sandboxes.deps import ParsedRequirements, parse_requirements
from sandboxes.docker_backend import DockerSandbox, docker_client, make_readable
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.gateway.app import Fault, Gateway, GatewayConfig
from sandboxes.gateway.serve import serve_gateway, socket_path_fits
from sandboxes.images import ensure_base_image
from sandboxes.layers import VENV, dependency_layer
from sandboxes.service import TUNNEL_SOCKET, SandboxedService, StartFailure, app_tunnel, gateway_env

REQUEST_TIMEOUT_S = 30.0
STAND_IN_MODEL = "the gateway's offline responder"


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
    params: dict[str, Any] = default_params("dynamic")
    for _, name, value in leaves:
        params[name] = value
    session = _Session(root, profile, params, {name for _, name, _ in leaves}, options, step or (lambda _: None))
    try:
        run = asyncio.run(session.run(client, base_id, scratch))
    except (SandboxUnavailable, SandboxError) as error:
        reason = f"The sandbox failed during the run: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    return score_dynamic_leaves(leaves, run), run


def instance_roles(slow_faults: bool, ceiling: bool, most: int) -> list[str]:
    """The app's instances for one grading: always the main one, then companions in the order they save the most
    time (the slow faults wait out the app's own timeouts; the ceiling restarts the app), up to `most` in all."""
    companions = [role for role, needed in (("faults", slow_faults), ("ceiling", ceiling)) if needed]
    return ["main", *companions[: max(most - 1, 0)]]


@dataclass
class _Instance:
    """One instance of the candidate's app: its own sandbox (a container of the same image), its own gateway (so its
    own ledger and faults) and the tunnel Viva reaches it through."""

    role: str
    sandbox: DockerSandbox
    service: SandboxedService
    gateway: Gateway


INSTANCE_PURPOSES = {
    "main": "start, discovery, latency, citations, cost, injection, the eval suite and the quick faults",
    "faults": "the slow faults ({faults}), played while the main instance is measured: their time is the app's own "
    "waiting",
    "ceiling": "the cost ceiling, started with the small budget once latency had priced a request",
}


class _Session:
    """One dynamic run: the state the steps share (what was found, the app's instances, what was measured).

    Up to three instances of the app run at once, each in its own sandbox with its own gateway, so no probe has to
    wait for another or share a ledger: the main one (everything in order, latency first on a quiet machine), one
    for the slow faults (the app waiting out its own timeouts) and one for the ceiling (started with a small budget).
    Should a companion instance be unavailable, its work runs on the main instance afterwards, as it always could.
    """

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
        self._latency_replies: list[Reply] = []
        self._companion_started = asyncio.Event()
        faults: ProviderFaultsParams = params["provider_faults"]
        wanted_faults = list(faults.faults) if "provider_faults" in wanted else []
        self.quick_faults = [fault for fault in wanted_faults if fault not in SLOW_FAULTS]
        self.slow_faults = [fault for fault in wanted_faults if fault in SLOW_FAULTS]

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
        make_readable(self.root)
        ceiling_wanted = "cost_ceiling_trips" in self.wanted and self.found.budget_env is not None
        roles = instance_roles(bool(self.slow_faults), ceiling_wanted, options.sandbox.instances)
        with _socket_root(scratch, roles) as sockets:
            await self._run_instances(roles, layer.image, sockets, client)
        self.result.seconds = round(time.monotonic() - started, 2)
        return self.result

    async def _run_instances(self, roles: list[str], image: str, sockets: Path, client: Any) -> None:
        contexts = {role: self._instance(role, image, sockets, client) for role in roles}
        async with _all_at_once(contexts) as entered:
            self.instances: dict[str, _Instance] = {}
            for role, outcome in entered.items():
                if isinstance(outcome, _Instance):
                    self.instances[role] = outcome
                elif role == "main" or not isinstance(outcome, Exception):
                    raise outcome
                else:  # a companion that could not be had: its work falls back to the main instance
                    self.result.notes.append(f"no separate {role} instance ({outcome}): the main one did its work")
            await self._probe_instances()

    def _gateway_config(self) -> GatewayConfig:
        faults: ProviderFaultsParams = self.params["provider_faults"]
        options = self.options
        return GatewayConfig(
            time_scale=options.time_scale,
            time_to_first_token_s=options.time_to_first_token_s,
            tokens_per_second=options.tokens_per_second,
            fault_time_scale=options.fault_time_scale,
            timeout_s=faults.timeout_seconds + 10,  # a played timeout outlasts Viva's own wait
        )

    @contextlib.asynccontextmanager
    async def _instance(self, role: str, image: str, scratch: Path, client: Any) -> AsyncIterator[_Instance]:
        """A sandbox of the layer's image with its own gateway and tunnel, the repository copied into it."""
        socket_dir = scratch / "sockets" / role
        env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": VENV, **gateway_env()}
        with (
            serve_gateway(socket_dir, self._gateway_config()) as gateway,
            app_tunnel(socket_dir, scratch / "private" / role) as tunnel,
        ):
            sandbox = DockerSandbox(
                image,
                repo_dir=self.root,
                limits=self.options.sandbox.limits(),
                socket_dir=socket_dir,
                env=env,
                client=client,
            )
            async with sandbox:
                copy = ["sh", "-c", "mkdir -p /work/app && cp -a /repo/. /work/app/"]
                copied = await sandbox.exec(copy, timeout=300)
                if copied.returncode != 0:
                    raise SandboxError(f"could not copy the repository into the sandbox: {copied.stderr[-300:]}")
                yield _Instance(role, sandbox, SandboxedService(sandbox, tunnel, self.found.port), gateway)

    async def _probe_instances(self) -> None:
        found, result, main = self.found, self.result, self.instances["main"]
        self.result.instances = [
            f"{role}: " + INSTANCE_PURPOSES[role].format(faults=", ".join(self.slow_faults)) for role in self.instances
        ]
        discovered = asyncio.Event()
        background: list[asyncio.Task[Any]] = []
        slow: asyncio.Task[list[FaultResult] | None] | None = None
        if "faults" in self.instances:
            slow = asyncio.create_task(self._slow_faults(self.instances["faults"], discovered))
            background.append(slow)
        else:
            self._companion_started.set()
        try:
            self.step("start")
            result.service = await self._start(main, {})
            if result.service.started:
                await self._find_query(main, result.service)
            discovered.set()
            if found.missing:
                found.snippet = manifest_snippet(found)
            if result.service.started and found.query_path is not None:
                ceiling = await self._probe(main, background)
                played = await slow if slow is not None else None
                by_fault = {fault.fault: fault for fault in result.faults}
                if self.slow_faults and played is None:  # no faults instance: the main one plays them
                    replayed = await self._inject(main, self.slow_faults, quiet=self._evals_finished)
                    by_fault |= {r.fault: r for r in replayed}
                else:
                    by_fault |= {r.fault: r for r in played or []}
                order: ProviderFaultsParams = self.params["provider_faults"]
                result.faults = [by_fault[fault] for fault in order.faults if fault in by_fault]
                if "cost_ceiling_trips" in self.wanted:
                    self.step("ceiling")
                    if ceiling is not None:
                        result.ceiling = await ceiling
                    else:  # no ceiling instance: restart the main one with the budget, its ledger undisturbed
                        await self._evals_finished()
                        result.ceiling = await self._ceiling(main, self._latency_replies, restart=True)
            self._start_evals(main.sandbox)
            await self._evals_finished()
        finally:
            discovered.set()
            for task in [self._evals, *background]:
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(task for task in [self._evals, *background] if task), return_exceptions=True)

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

    async def _probe(
        self, main: _Instance, background: list[asyncio.Task[Any]]
    ) -> asyncio.Task[CeilingResult | None] | None:
        """Latency (whose sequential replies feed citations and cost), then injection, then the small probes
        (grader/dynamic/probes/), then the quick faults with the eval suite running beside them (not earlier: latency
        is measured on a quiet machine, and the gullible model the injection probes meet would answer the suite too).
        Once latency has priced a request, the ceiling instance starts with its budget and is driven meanwhile; the
        task returned gives its result."""
        found, result, gateway, params = self.found, self.result, main.gateway, self.params
        ceiling: asyncio.Task[CeilingResult | None] | None = None
        await self._companion_started.wait()  # its start is busy work: latency is measured once it is over
        async with main.service.client(timeout=REQUEST_TIMEOUT_S) as http:
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
            self._latency_replies = replies
            if "ceiling" in self.instances and "cost_ceiling_trips" in self.wanted:
                ceiling = asyncio.create_task(self._ceiling(self.instances["ceiling"], replies, restart=False))
                background.append(ceiling)
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
            small = {name: params[name] for name in PROBES if name in self.wanted}
            if small:
                self.step("probes")
                target = ProbeTarget(http=http, found=found, gateway=gateway, alive=main.service.alive)
                result.probes = await run_small_probes(small, target)
        self._start_evals(main.sandbox)
        if "provider_faults" in self.wanted:
            self.step("faults")
            result.faults = await self._inject(main, self.quick_faults, quiet=self._evals_finished)
        return ceiling

    async def _inject(
        self, instance: _Instance, faults: list[Fault], quiet: Callable[[], Awaitable[None]] | None = None
    ) -> list[FaultResult]:
        """Play `faults` on `instance`, restarting its app when a fault killed it."""
        if not faults:
            return []
        params: ProviderFaultsParams = self.params["provider_faults"]

        async def restart() -> None:
            await instance.service.stop()
            await self._start(instance, {})

        async with instance.service.client(timeout=REQUEST_TIMEOUT_S) as http:
            results = await inject_faults(
                http,
                self.found,
                instance.gateway,
                faults=faults,
                timeout=params.timeout_seconds,
                alive=instance.service.alive,
                restart=restart,
                quiet=quiet,
            )
        for result in results:
            result.instance = instance.role
        return results

    async def _slow_faults(self, instance: _Instance, discovered: asyncio.Event) -> list[FaultResult] | None:
        """The slow faults on their own instance, started beside the main one and played once the main one has found
        how to ask a question. None when this instance could not start (the main one then plays them)."""
        try:
            started = await self._start(instance, {})
        finally:
            self._companion_started.set()
        await discovered.wait()
        main_started = self.result.service is not None and self.result.service.started
        if not main_started or self.found.query_path is None:
            return None
        if not started.started:
            self.result.notes.append(
                f"the faults instance did not start ({started.reason}): the main one played the slow faults"
            )
            return None
        return await self._inject(instance, self.slow_faults)

    async def _start(self, instance: _Instance, extra_env: dict[str, str]) -> ServiceResult:
        found, service = self.found, instance.service
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

    async def _find_query(self, main: _Instance, started: ServiceResult) -> None:
        """The query route (OpenAPI document, else the profile's routes) and, from a first answer, its fields."""
        found = self.found
        async with main.service.client(timeout=10) as http:
            if found.query_path is None:
                discover_query(found, await _openapi_document(http, found), self.profile)
            if found.query_path is None:
                return
            reply = await ask(http, found, main.gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
        started.first_query_status = reply.status or None
        if reply.status == 200:
            infer_pointers(found, reply.data)

    async def _ceiling(self, instance: _Instance, replies: list[Reply], *, restart: bool) -> CeilingResult | None:
        """Start `instance` with a small budget (about ten requests' worth; `restart` stops what runs there first) and
        drive requests until the app refuses. Nothing else calls this instance's gateway: its ledger is the app's."""
        found, service = self.found, instance.service
        ceiling: CostCeilingParams = self.params["cost_ceiling_trips"]
        if found.budget_env is None:
            return None
        budget = trip_budget(replies, ceiling.budget_usd)
        if restart:
            await service.stop()
        restarted = await self._start(instance, {found.budget_env: f"{budget:.8f}"})
        if not restarted.started:
            return CeilingResult(
                outcome="broken",
                budget_env=found.budget_env,
                budget_usd=budget,
                note=f"with {found.budget_env}={budget:.8f} the app did not start: {restarted.reason}",
                instance=instance.role,
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

            # No graceful stop afterwards: removing the sandbox kills the app.
            result = await drive_ceiling(
                http,
                found,
                instance.gateway,
                budget_usd=budget,
                max_requests=ceiling.max_requests,
                timeout=REQUEST_TIMEOUT_S,
                read_log=visible_alerts,
            )
        result.instance = instance.role
        return result


@contextlib.contextmanager
def _socket_root(scratch: Path, roles: list[str]) -> Iterator[Path]:
    """Where the instances' sockets live: under `scratch` when every one of their paths fits a Unix socket address,
    else in a short temporary directory (a deep data directory would make every bind fail)."""
    if all(socket_path_fits(scratch / "sockets" / role / TUNNEL_SOCKET) for role in roles):
        yield scratch
        return
    with tempfile.TemporaryDirectory(prefix="viva-") as short:
        yield Path(short)


@contextlib.asynccontextmanager
async def _all_at_once(
    contexts: Mapping[str, contextlib.AbstractAsyncContextManager[_Instance, Any]],
) -> AsyncIterator[dict[str, _Instance | BaseException]]:
    """Enter the contexts at once and leave them at once: the instances' containers start, and are removed, in
    parallel. Yields what each entry gave, or the exception it raised (that one needs no leaving)."""
    outcomes = await asyncio.gather(*(context.__aenter__() for context in contexts.values()), return_exceptions=True)
    entered = dict(zip(contexts, outcomes, strict=True))
    body_failed = True
    try:
        yield entered
        body_failed = False
    finally:
        leaving = [contexts[role] for role, got in entered.items() if isinstance(got, _Instance)]
        left = await asyncio.gather(*(leave.__aexit__(None, None, None) for leave in leaving), return_exceptions=True)
        errors = [error for error in left if isinstance(error, BaseException)]
        if errors and not body_failed:
            raise errors[0]


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
