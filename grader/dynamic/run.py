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
import dataclasses
import json
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from grader.dynamic.citations import check_citations
from grader.dynamic.client import Reply, ask
from grader.dynamic.companions import Companions, built_sidecar, companions_for, plan_pod, provider_traffic
from grader.dynamic.cost import compare_costs, drive_ceiling, trip_budget
from grader.dynamic.evals import run_evals
from grader.dynamic.faults import SLOW_FAULTS, inject_faults
from grader.dynamic.injection import ingest, probe_bank, run_probes
from grader.dynamic.interface import (
    OPENAPI_PATHS,
    discover_query,
    infer_pointers,
    manifest_snippet,
    plan_interface,
    provider_free,
    start_port,
    use_start,
)
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
    StartAttempt,
)
from grader.dynamic.options import DynamicOptions, StepCallback
from grader.dynamic.probes import PROBES, ProbeTarget
from grader.dynamic.probes import run_probes as run_small_probes
from grader.dynamic.scores import UI_COMMAND, score_dynamic_leaves
from grader.dynamic.starting import (
    MAX_ATTEMPTS,
    StartFacts,
    Verdict,
    announced_port,
    blame_failed_start,
    normalised,
    not_followed,
    placeholders,
    rewrite_bind,
    unwrap,
)
from grader.model import Evidence, Score
from grader.profile import RepoProfile
from grader.profile.model import StartCandidate
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
from sandboxes.base import Sandbox, SandboxBackend, SandboxImages, SandboxSpec, isolating_backend
from sandboxes.dependency_files import (
    CollectedRequirements,
    collect_requirements,
    declared_anywhere,
    installs_named_elsewhere,
)
from sandboxes.docker_backend import make_readable
from sandboxes.errors import LayerTooLarge, PodStartFailed, SandboxError, SandboxUnavailable
from sandboxes.gateway.app import Fault, Gateway, GatewayConfig
from sandboxes.gateway.clients import UNSERVED_PROVIDERS
from sandboxes.gateway.proxy import ProviderProxy, serve_proxy
from sandboxes.gateway.serve import SOCKET_NAME, serve_gateway, socket_path_fits
from sandboxes.gateway.tls import GradingCA
from sandboxes.gateway.trust import sandbox_trust
from sandboxes.layers import VENV
from sandboxes.service import STATE_DIR, TUNNEL_SOCKET, SandboxedService, StartFailure, app_tunnel, gateway_env

REQUEST_TIMEOUT_S = 30.0
UNSERVED_KEYS = frozenset(name for provider in UNSERVED_PROVIDERS for name in provider.env_vars)
SETUP_TIMEOUT_S = 300.0
SEED_DOCUMENT = (
    "Team handbook. Deploys go out from the main branch after a green CI run and one approving review. "
    "On-call engineers answer pages within fifteen minutes."
)
ATTEMPT_ROLES = [f"start-{number}" for number in range(1, MAX_ATTEMPTS + 1)]
APP_DIR = "/work/app"
SHIMS = "/work/.shims"
MODEL_CACHE = "/models"
MODEL_CACHE_ENV = {
    "HF_HOME": MODEL_CACHE,
    "HF_HUB_CACHE": f"{MODEL_CACHE}/hub",
    "TRANSFORMERS_CACHE": f"{MODEL_CACHE}/hub",
    "SENTENCE_TRANSFORMERS_HOME": f"{MODEL_CACHE}/sentence-transformers",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
"""With a model cache mounted (VIVA_SANDBOX_MODEL_CACHE_DIR), the Hugging Face libraries read it and never try
the network, which the sandbox does not have."""
STAND_IN_MODEL = "the gateway's offline responder"


def run_dynamic(
    root: Path,
    profile: RepoProfile,
    leaves: list[tuple[str, str, Any]],
    scratch: Path,
    options: DynamicOptions,
    *,
    step: StepCallback | None = None,
    sandboxes: SandboxBackend | None = None,
) -> tuple[dict[str, Score], DynamicRun | None]:
    """Scores for the dynamic leaves [(path, check name, params)], and what was measured. Viva's own failure (no
    Docker, no base image) makes every leaf not_run with the reason; the candidate's failures score 0.

    The sandboxes come from the backend `options.sandbox.backend` names, which must isolate (UnknownBackend,
    UnsafeBackend otherwise); only a test hands over `sandboxes` of its own (the fake backend with its world)."""
    options = matching_python(options, profile)
    sandboxes = sandboxes or isolating_backend(options.sandbox.backend)
    try:
        images = sandboxes.images()
        base_id = images.base_image(options.sandbox)
    except SandboxUnavailable as error:
        reason = f"No sandbox available on this host: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    params: dict[str, Any] = default_params("dynamic")
    for _, name, value in leaves:
        params[name] = value
    wanted = {name for _, name, _ in leaves}
    session = _Session(root, profile, params, wanted, options, step or (lambda _: None), sandboxes=sandboxes)
    try:
        run = asyncio.run(session.run(images, base_id, scratch))
    except LayerTooLarge as error:
        reason = f"The project's dependencies are too large for this deployment: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    except (SandboxUnavailable, SandboxError) as error:
        reason = f"The sandbox failed during the run: {error}."
        return {path: Score.not_run(reason, basis="dynamic") for path, _, _ in leaves}, None
    return score_dynamic_leaves(leaves, run), run


def matching_python(options: DynamicOptions, profile: RepoProfile) -> DynamicOptions:
    """With a registry, the base image is the `python:X.Y-slim` the project's own image names (its first start
    that names one), so its wheels and syntax match; offline there is one base image, and a mismatch is noted."""
    named = next((start.python_version for start in profile.starts if start.python_version), None)
    sandbox = options.sandbox
    if named is None or sandbox.image_source != "pull" or not re.fullmatch(r"3\.\d{1,2}", named):
        return options
    wanted = f"python:{named}-slim"
    if sandbox.pull_image == wanted:
        return options
    return dataclasses.replace(options, sandbox=msgspec.structs.replace(sandbox, pull_image=wanted))


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
    sandbox: Sandbox
    service: SandboxedService
    gateway: Gateway
    companions: list[str] = dataclasses.field(default_factory=list)
    """Its companion services, each with its image and how it became ready."""


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
        *,
        sandboxes: SandboxBackend,
    ) -> None:
        self.root, self.profile, self.params, self.wanted = root, profile, params, wanted
        self.options, self.step, self.sandboxes = options, step, sandboxes
        ceiling: CostCeilingParams = params["cost_ceiling_trips"]
        self.found = plan_interface(profile, root, ceiling.budget_variable)
        self._evals: asyncio.Task[EvalsResult] | None = None
        self.attempts: list[StartAttempt] = []
        self.layers: dict[str, tuple[str, SandboxInfo]] = {}
        self.chosen: StartCandidate | None = None
        self.chosen_companions: Companions | None = None
        self.gateways: list[Gateway] = []
        self.proxies: list[ProviderProxy] = []
        self._certifi: dict[str, str | None] = {}
        self.start_failure: ServiceResult | None = None
        self.repo_modules = repo_modules(root)
        self.declared_anywhere = normalised(declared_anywhere(root))
        self._latency_replies: list[Reply] = []
        self._companion_started = asyncio.Event()
        faults: ProviderFaultsParams = params["provider_faults"]
        wanted_faults = list(faults.faults) if "provider_faults" in wanted else []
        self.quick_faults = [fault for fault in wanted_faults if fault not in SLOW_FAULTS]
        self.slow_faults = [fault for fault in wanted_faults if fault in SLOW_FAULTS]

    async def run(self, images: SandboxImages, base_id: str, scratch: Path) -> DynamicRun:
        started = time.monotonic()
        self.step("dependencies")
        options = self.options
        self.images, self.base_id = images, base_id
        first = self.profile.starts[0] if self.profile.starts and self.found.start_tier != "declared" else None
        self.image, self.info = await self._layer(self.found.workdir, first)
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
        # One CA per grading, its key in this process's memory only: the sandboxes get its certificate (in a trust
        # bundle) and reach the proxy that holds the key through a socket.
        self.ca = GradingCA.create(scratch / "grading-ca")
        await self._note_python()
        ceiling_wanted = "cost_ceiling_trips" in self.wanted and self.found.budget_env is not None
        roles = instance_roles(bool(self.slow_faults), ceiling_wanted, options.sandbox.instances)
        with _socket_root(scratch, [*roles, *ATTEMPT_ROLES]) as sockets:
            try:
                await self._choose_start(sockets)
                await self._run_instances(roles, self.image, sockets)
            finally:
                self.result.providers = provider_traffic(self.gateways, self.proxies)
        self.result.seconds = round(time.monotonic() - started, 2)
        return self.result

    async def _layer(self, workdir: str, start: StartCandidate | None) -> tuple[str, SandboxInfo]:
        """The dependency layer for an app that starts from `workdir`: the dependencies declared beside it (or a
        parent), else what its Dockerfile's RUN or its README installs. Built once per set of requirements."""
        collected = _requirements(self.root, workdir)
        if not collected.parsed.requirements:
            # This start's own Dockerfile first, else any Dockerfile of the repository: a Viva-guessed start of the
            # same code needs what the candidate's image installs (`RUN pip install flask gunicorn`).
            built = [start] if start is not None and start.skipped else []
            built += [other for other in self.profile.starts if other.tier == "packaged" and other.skipped]
            steps, dockerfile = (built[0].skipped, built[0].evidence.path) if built else ([], "")
            collected = installs_named_elsewhere(collected, self.root, steps, dockerfile)
        requirements = collected.parsed
        key = requirements.cache_key(self.base_id)
        if key in self.layers:
            return self.layers[key]
        options = self.options
        layer = await asyncio.to_thread(
            self.images.dependency_layer,
            options.sandbox.image,
            requirements,
            options.cache_dir,
            options.index_url,
            extra_index_url=options.sandbox.extra_index_url,
            max_mb=options.sandbox.layer_max_mb,
        )
        info = SandboxInfo(
            base_image=options.sandbox.image,
            base_image_id=self.base_id,
            image=layer.image,
            layer_cached=layer.cached,
            layer_seconds=round(layer.seconds, 2),
            install_ok=layer.install_ok,
            requirements=layer.requirements,
            refused_requirements=[item.describe() for item in requirements.refused],
            missing_wheels=layer.missing_wheels,
            install_log_tail=layer.log_tail[-3000:],
            requirement_sources=[source.describe() for source in collected.sources],
            requirement_notes=collected.notes[:50],
        )
        self.layers[key] = (layer.image, info)
        return layer.image, info

    async def _run_instances(self, roles: list[str], image: str, sockets: Path) -> None:
        companions = self.chosen_companions
        contexts = {role: self._instance(role, image, sockets, companions=companions) for role in roles}
        async with _all_at_once(contexts) as entered:
            self.instances: dict[str, _Instance] = {}
            for role, outcome in entered.items():
                if isinstance(outcome, _Instance):
                    self.instances[role] = outcome
                elif role == "main" or not isinstance(outcome, Exception):
                    raise outcome
                else:  # a companion that could not be had: its work falls back to the main instance
                    self.result.notes.append(f"no separate {role} instance ({outcome}): the main one did its work")
            if companions is not None:
                self.result.companions = [*self.instances["main"].companions, *companions.not_started()]
            try:
                await self._probe_instances()
            finally:
                for instance in self.instances.values():
                    down = await instance.sandbox.companions_down()
                    self.result.companions_down += [f"{instance.role} instance: {line}" for line in down]

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
    async def _instance(
        self,
        role: str,
        image: str,
        scratch: Path,
        *,
        port: int | None = None,
        workdir: str | None = None,
        companions: Companions | None = None,
    ) -> AsyncIterator[_Instance]:
        """A sandbox of the layer's image with its own gateway, provider proxy and tunnel, the repository copied into
        it and its companion services beside it, ready; its app listens on `port` and starts from `workdir` (the
        chosen start's, unless a start attempt says otherwise)."""
        socket_dir = scratch / "sockets" / role
        env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin:{SHIMS}", "VIRTUAL_ENV": VENV, **gateway_env()}
        names = companions.names if companions is not None else []
        trust = sandbox_trust(self.ca.bundle_path, await self._certifi_dir(image), sidecars=names)
        env |= trust.env
        mounts = {}
        if self.options.sandbox.model_cache_dir:
            mounts[Path(self.options.sandbox.model_cache_dir).expanduser()] = MODEL_CACHE
            env |= MODEL_CACHE_ENV
        relative = self.found.workdir if workdir is None else workdir
        app_dir = f"{APP_DIR}/{relative}".rstrip("/") if relative else APP_DIR
        with (
            serve_gateway(socket_dir, self._gateway_config()) as gateway,
            serve_proxy(socket_dir, socket_dir / SOCKET_NAME, self.ca) as proxy,
            app_tunnel(socket_dir, scratch / "private" / role) as tunnel,
        ):
            self.gateways.append(gateway)
            self.proxies.append(proxy)
            spec = SandboxSpec(
                image=image,
                repo_dir=self.root,
                limits=self.options.sandbox.limits(),
                socket_dir=socket_dir,
                env=env,
                mounts=mounts,
                file_mounts={inside: Path(host) for inside, host in trust.mounts.items()},
                # Provider hosts reach the listener on the sandbox's loopback; companions answer there too.
                extra_hosts=trust.extra_hosts | dict.fromkeys(names, "127.0.0.1"),
                sysctls=trust.sysctls,
            )
            sandbox = self.sandboxes(spec)
            async with sandbox:
                # `python` as well as `python3`, even when the dependencies did not install (no venv): Debian's
                # base has only python3, and READMEs say `python app.py`.
                copy = [
                    "sh",
                    "-c",
                    f"mkdir -p /work/app {SHIMS} {STATE_DIR} && cp -a /repo/. /work/app/ && "
                    f"ln -sf /usr/bin/python3 {SHIMS}/python",
                ]
                copied = await sandbox.exec(copy, timeout=300)
                if copied.returncode != 0:
                    raise SandboxError(f"could not copy the repository into the sandbox: {copied.stderr[-300:]}")
                # The bridges before the companions: a sidecar built from the repository may call a provider too.
                service = SandboxedService(
                    sandbox, tunnel, port or self.found.port, workdir=app_dir, forwards=trust.forwards
                )
                await service.bridge()
                started: list[str] = []
                if companions is not None:
                    sandbox_settings = self.options.sandbox
                    started = await sandbox.start_companions(
                        companions.plan,
                        companions.images,
                        limits=sandbox_settings.service_limits(),
                        budget_s=sandbox_settings.service_start_s,
                        time_scale=sandbox_settings.service_time_scale,
                    )
                yield _Instance(role, sandbox, service, gateway, started)

    async def _certifi_dir(self, image: str) -> str | None:
        """The site-packages of the dependency venv when certifi is installed there (its bundle is then replaced
        by the grading's: certifi reads no variable), once per image."""
        if image not in self._certifi:
            python = f"{VENV}/bin/python"
            self._certifi[image] = await asyncio.to_thread(self.images.module_dir, image, python, "certifi")
        return self._certifi[image]

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

    def _start_evals(self, sandbox: Sandbox) -> None:
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
        if self.start_failure is not None:
            return self.start_failure
        if found.start_command is None:
            return ServiceResult(
                started=False,
                blame="viva",
                reason="no way to start a web service was found in the repository (no viva.toml, Dockerfile, "
                "compose file, Procfile, README or Makefile command, CI step, script or app object)",
                suggestion=manifest_snippet(found),
            )
        starts: ServiceStartsParams = self.params["service_starts"]
        timeout = starts.startup_timeout_seconds
        if found.health:
            timeout = min(found.startup_seconds, timeout)
        elif found.start_tier != "declared":
            timeout = min(timeout, self.options.sandbox.start_attempt_s)
        began = time.monotonic()
        env = {**found.env, **extra_env}
        setup_failure = await _run_setup(instance, found.setup, env)
        try:
            if setup_failure is not None:
                raise setup_failure
            await service.start(found.start_command, env)
            seconds = await service.wait_ready(found.health or "/", timeout, any_status=found.health is None)
        except StartFailure as failure:
            tail = failure.log_tail
            if not self.info.install_ok:
                tail = f"[dependency install failed]\n{self.info.install_log_tail[-1500:]}\n[app output]\n{tail}"
            verdict = self._verdict(self._declared_or_chosen(), tail, exited=not await service.alive())
            attempt = self._attempt_record(self._declared_or_chosen(), found.port, time.monotonic() - began)
            attempt.reason, attempt.blame, attempt.log_tail = (
                f"{failure.reason}: {verdict.reason}",
                verdict.blame,
                tail[-4000:],
            )
            return ServiceResult(
                started=False,
                reason=f"{failure.reason}: {verdict.reason}",
                log_tail=tail[-4000:],
                blame=verdict.blame,
                attempts=[*self.attempts, attempt] if not self.attempts else self.attempts,
                suggestion=manifest_snippet(found),
            )
        attempts = self.attempts
        if not attempts:
            record = self._attempt_record(self._declared_or_chosen(), found.port, seconds)
            record.outcome = "started"
            attempts = [record]
        return ServiceResult(
            started=True,
            ready_seconds=round(seconds, 3),
            log_tail=(await service.tail())[-2000:],
            attempts=attempts,
            suggestion=manifest_snippet(found),
        )

    async def _note_python(self) -> None:
        named = next((start.python_version for start in self.profile.starts if start.python_version), None)
        if named is None:
            return
        try:
            have = await asyncio.to_thread(self.images.python_version, self.options.sandbox.image)
        except SandboxUnavailable:
            return
        if have != named:
            self.result.notes.append(
                f"the project's image names Python {named}; the sandbox ran Python {have}"
                + (" (offline there is one base image)" if self.options.sandbox.image_source == "offline" else "")
            )

    # --- choosing how to start ------------------------------------------------------------------------------

    async def _choose_start(self, sockets: Path) -> None:
        """Try the ways the repository says it starts, best first, each in a fresh sandbox of its own with its own
        startup budget (at most MAX_ATTEMPTS, within the total), until one answers; the instances then start that
        one. A declared start (viva.toml) is the candidate's own word: the main instance's start is its attempt."""
        starts = self.profile.starts
        if self.found.start_tier == "declared":
            await self._declared_companions()
            return
        if not starts:
            return
        sandbox = self.options.sandbox
        deadline = time.monotonic() + sandbox.start_total_s
        queue, tried = list(starts), 0
        while queue and tried < MAX_ATTEMPTS:
            start = queue.pop(0)
            reason = not_followed(start)
            if reason is None and not (self.root / start.workdir).is_dir():
                reason = f"its directory `{start.workdir}` is not in the repository"
            planned: Companions | None = None
            if reason is None:
                pod = await self._companions(start)
                reason, planned = (pod, None) if isinstance(pod, str) else (None, pod)
            if reason is not None:
                record = self._attempt_record(start, start_port(start), 0.0)
                record.outcome, record.blame, record.reason = (
                    "not_followed",
                    "viva",
                    f"Viva could not follow it: {reason}",
                )
                self.attempts.append(record)
                continue
            left = deadline - time.monotonic()
            if left < 1:
                self.result.notes.append(
                    f"the start budget ({sandbox.start_total_s:g} s) ran out after {tried} attempts"
                )
                break
            tried += 1
            self.step("dependencies")
            image, info = await self._layer(start.workdir, start)
            attempt = await self._try_start(
                start,
                (image, info),
                sockets,
                timeout=min(sandbox.start_attempt_s, left),
                number=tried,
                companions=planned,
            )
            self.attempts.append(attempt)
            if attempt.outcome == "started":
                self.image, self.info = image, info
                self.result.sandbox = info
                use_start(self.found, start, attempt.port)
                self.found.env = self._start_env(start, attempt.port)[0]
                self.found.start_command = attempt.command
                self.chosen, self.chosen_companions = start, planned
                return
            announced = announced_port(attempt.log_tail)
            if announced is not None and announced != attempt.port and tried < MAX_ATTEMPTS:
                queue.insert(0, msgspec.structs.replace(start, port=announced, port_source="the app's own log"))
        self.start_failure = self._no_start()

    async def _companions(self, start: StartCandidate) -> Companions | str | None:
        """The companions `start` needs, ready to run beside each instance (those built from the repository get
        the dependency layer of their build context, as the app does), or why Viva cannot run them."""
        start = self._with_services(start)
        plan = plan_pod(self.root, start)
        if plan is None or isinstance(plan, str):
            return plan
        built = {}
        for sidecar in plan.sidecars:
            if sidecar.build is not None:
                image, _ = await self._layer(sidecar.build.context, None)
                env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": VENV, "HOME": "/tmp"}  # noqa: S108 - inside the sidecar (a tmpfs)
                made = built_sidecar(self.root, sidecar, image, env | gateway_env())
                if isinstance(made, str):
                    return made
                built[sidecar.name] = made
        return await asyncio.to_thread(companions_for, plan, self.images, self.options.sandbox, built)

    async def _declared_companions(self) -> None:
        """A viva.toml start runs beside the companions of the compose app service of its directory, as any start
        of that code does; when Viva cannot run them, the start is not_run with the reason (never the candidate's
        failure: their app was never given its database)."""
        declared = self._declared_or_chosen()
        pod = await self._companions(declared)
        if isinstance(pod, str):
            self.start_failure = ServiceResult(
                started=False,
                blame="viva",
                reason=f"Viva could not run the companion services this start needs: {pod}",
                suggestion=manifest_snippet(self.found),
            )
        else:
            self.chosen_companions = pod

    def _with_services(self, start: StartCandidate) -> StartCandidate:
        """`start`, with the companions of the repository's compose app service when it names none of its own and
        runs the same code (same directory): a README's `uvicorn app:app` needs the database its compose file
        starts beside that very command."""
        if start.services:
            return start
        composed = next((one for one in self.profile.starts if one.services and one.workdir == start.workdir), None)
        if composed is None:
            return start
        return msgspec.structs.replace(
            start, services=composed.services, compose_service=composed.compose_service, evidence=composed.evidence
        )

    async def _try_start(
        self,
        start: StartCandidate,
        layer: tuple[str, SandboxInfo],
        sockets: Path,
        *,
        timeout: float,
        number: int,
        companions: Companions | None = None,
    ) -> StartAttempt:
        image, info = layer
        port = start_port(start)
        command, notes = unwrap(start.command)
        command, rewritten = rewrite_bind(command)
        env, filled = self._start_env(start, port)
        record = self._attempt_record(start, port, 0.0)
        record.command, record.placeholders, record.rewritten = command, filled, notes + rewritten
        began = time.monotonic()
        try:
            await self._attempt(record, start, (image, info), sockets, (command, env), timeout, number, companions)
        except PodStartFailed as failed:
            # Viva's images for the companions are stand-ins, and Viva's caps hold them: never the candidate's 0.
            record.outcome, record.blame = "failed", "viva"
            record.reason = f"its companion service {failed.service} did not start: {failed.reason}"
            record.log_tail = failed.log_tail[-4000:]
        record.seconds = round(time.monotonic() - began, 2)
        return record

    async def _attempt(  # noqa: PLR0917 - one caller, _try_start
        self,
        record: StartAttempt,
        start: StartCandidate,
        layer: tuple[str, SandboxInfo],
        sockets: Path,
        run: tuple[str, dict[str, str]],
        timeout: float,
        number: int,
        companions: Companions | None,
    ) -> None:
        (image, info), (command, env) = layer, run
        role = f"start-{number}"
        instance = self._instance(role, image, sockets, port=record.port, workdir=start.workdir, companions=companions)
        async with instance as one:
            self.step("start")  # once its sandbox exists: "start" on the progress bar means a container is up
            failure = await _run_setup(one, start.setup, env)
            try:
                if failure is not None:
                    raise failure
                await one.service.start(command, env)
                await one.service.wait_ready("/", timeout, any_status=True)
            except StartFailure as failed:
                exited = not await one.service.alive()
                verdict = self._verdict(start, failed.log_tail, exited=exited, info=info)
                record.outcome, record.blame = "failed", verdict.blame
                tail = failed.log_tail
                if not info.install_ok:
                    tail = f"[dependency install failed]\n{info.install_log_tail[-1500:]}\n[app output]\n{tail}"
                record.reason, record.log_tail = f"{failed.reason}: {verdict.reason}", tail[-4000:]
            else:
                record.outcome, record.log_tail = "started", (await one.service.tail())[-2000:]

    def _start_env(self, start: StartCandidate, port: int) -> tuple[dict[str, str], list[str]]:
        """The environment a detected start gets: the project's own variables (never its provider endpoints or
        keys: those point at the gateway), placeholders for what its code needs and nobody set, and PORT."""
        env = provider_free(start.env)
        # The project's own packages import from where it starts, and from a src/ layout beside it, as an
        # installed project's would (an image path such as ENV PYTHONPATH=/app means nothing here).
        app_dir = f"{APP_DIR}/{start.workdir}".rstrip("/") if start.workdir else APP_DIR
        paths = [app_dir] + ([f"{app_dir}/src"] if (self.root / start.workdir / "src").is_dir() else [])
        env["PYTHONPATH"] = ":".join(paths)
        needed = [(need.name, need.example) for need in self.profile.env_needs if need.required]
        have = set(env) | set(gateway_env()) | {"PORT"}
        wanted = placeholders(needed, have)
        # A key for a provider Viva does not serve opens nothing (its host is refused and recorded): with one, the
        # app starts — its own work — and only its model-dependent checks are not_run, naming the provider.
        filled = provider_free(wanted) | {name: value for name, value in wanted.items() if name in UNSERVED_KEYS}
        env |= filled
        env.setdefault("PORT", str(port))
        return env, sorted(filled)

    def _declared_or_chosen(self) -> StartCandidate:
        if self.chosen is not None:
            return self.chosen
        found = self.found
        evidence = Evidence("viva.toml", None, found.start_command or "") if found.start_tier == "declared" else None
        for start in self.profile.starts:
            if start.command == found.start_command:
                return start
        return StartCandidate(
            tier="declared" if found.start_tier == "declared" else "inferred",
            source="viva.toml" if found.start_tier == "declared" else found.start_source,
            command=found.start_command or "",
            evidence=evidence or Evidence("(none)", None, ""),
            workdir=found.workdir,
        )

    def _attempt_record(self, start: StartCandidate, port: int, seconds: float) -> StartAttempt:
        return StartAttempt(
            tier=start.tier,
            source=start.source,
            command=start.command,
            where=start.evidence.location,
            workdir=start.workdir,
            port=port,
            seconds=round(seconds, 2),
            skipped=list(start.skipped),
        )

    def _verdict(self, start: StartCandidate, log: str, *, exited: bool, info: SandboxInfo | None = None) -> Verdict:
        info = info or self.info
        facts = StartFacts(
            candidate=start,
            install_ok=info.install_ok,
            installed=normalised(info.requirements),
            unpinned=normalised([item for item in info.requirements if "==" not in item]),
            refused=normalised([*_refused_names(info.refused_requirements), *info.missing_wheels]),
            repo_modules=self.repo_modules,
            declared_anywhere=self.declared_anywhere,
            repo_builds=any(" RUN " in f" {step}" for one in self.profile.starts for step in one.skipped),
            exited=exited,
        )
        return blame_failed_start(facts, log)

    def _no_start(self) -> ServiceResult:
        """No attempt answered: the candidate's failure when one of them failed in the project's own code or
        command, else Viva's (every way was one Viva could not follow, or its own guess)."""
        attempts = self.attempts
        theirs = next((attempt for attempt in attempts if attempt.blame == "candidate"), None)
        if theirs is not None:
            return ServiceResult(
                started=False,
                reason=f"`{theirs.command}` ({theirs.source}, {theirs.where}) did not start: {theirs.reason}",
                log_tail=theirs.log_tail,
                blame="candidate",
                attempts=attempts,
                suggestion=manifest_snippet(self.found),
            )
        tried = "; ".join(f"{attempt.source} `{attempt.command}` — {attempt.reason}" for attempt in attempts)
        return ServiceResult(
            started=False,
            reason=f"Viva could not start the app the ways its repository gives ({tried})",
            log_tail=attempts[-1].log_tail if attempts else "",
            blame="viva",
            attempts=attempts,
            suggestion=manifest_snippet(self.found),
        )

    async def _find_query(self, main: _Instance, started: ServiceResult) -> None:
        """The query route (OpenAPI document, else the profile's routes) and, from a first answer, its fields."""
        found = self.found
        if found.query_path is None and UI_COMMAND.search(found.start_command or ""):
            return  # a UI: the repository's routes (if any) belong to another of its services, not to this app
        async with main.service.client(timeout=10) as http:
            if found.query_path is None:
                discover_query(found, await _openapi_document(http, found), self.profile)
            if found.query_path is None:
                await self._documented_query(http, main)
            if found.query_path is None:
                return
            reply = await ask(http, found, main.gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
            if reply.status in (404, 405) and not found.query_source.startswith("viva.toml"):
                # The route read from the code is not this app's (a repository's other service): not a route at all.
                found.notes.append(
                    f"{found.query_method} {found.query_path} answered {reply.status}: not this app's route"
                )
                found.query_path = None
                if "query" not in found.missing:
                    found.missing.append("query")
                return
            if reply.status != 200 and found.ingest_path is not None:
                # An app that answers only once it holds a document (an empty index): feed it one through its own
                # ingest route, as its user would, and ask again.
                refused = await ingest(http, found, SEED_DOCUMENT, REQUEST_TIMEOUT_S)
                if not refused:
                    reply = await ask(http, found, main.gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
                    found.notes.append(
                        f"the query route answered {reply.status} once a document was added through "
                        f"{found.ingest_method} {found.ingest_path}"
                    )
        started.first_query_status = reply.status or None
        if reply.status == 200:
            infer_pointers(found, reply.data)

    async def _documented_query(self, http: httpx.AsyncClient, main: _Instance) -> None:
        """No schema named the query route: try the routes the README shows how to call, with the field its
        example sends (else the usual question fields), and keep the first that answers 200."""
        found = self.found
        for route in found.documented_routes[:3]:
            method, path = route.split(" ", 1)
            fields = [found.documented_fields[route]] if route in found.documented_fields else []
            for field_name in dict.fromkeys([*fields, "question", "query", "message", "prompt", "q"]):
                found.query_path, found.query_method = path, "GET" if method == "GET" else "POST"
                found.request_template = field_name if method == "GET" else json.dumps({field_name: "{question}"})
                reply = await ask(http, found, main.gateway, found.golden_queries[0], REQUEST_TIMEOUT_S)
                if reply.status == 200:
                    found.query_source = f"the README's example ({route}, field {field_name!r})"
                    if "query" in found.missing:
                        found.missing.remove("query")
                    return
                if reply.status in (404, 405):
                    break  # not this route at all
        found.query_path = None

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


async def _run_setup(instance: _Instance, steps: list[str], env: dict[str, str]) -> StartFailure | None:
    """The setup steps the start names (an ingest, migrations), in order, where the app starts; the first that
    fails ends the start with its output."""
    for step in steps:
        done = await instance.sandbox.exec(
            ["sh", "-c", step], cwd=instance.service.workdir, env=env, timeout=SETUP_TIMEOUT_S
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-4000:]
            return StartFailure(f"the setup step `{step}` exited with status {done.returncode}", tail)
    return None


def _refused_names(refused: list[str]) -> list[str]:
    """The requirement texts of SandboxInfo.refused_requirements ("line 3: torch @ https://… (a direct URL)")."""
    return [match.group(1) for line in refused if (match := re.match(r"line \d+: (\S+)", line))]


def repo_modules(root: Path) -> frozenset[str]:
    """Top-level module and package names the repository provides itself (any depth), bounded."""
    names: set[str] = set()
    for count, path in enumerate(root.rglob("*.py")):
        if count > 20_000:
            break
        parts = path.relative_to(root).parts
        if any(part in {".git", ".venv", "venv", "node_modules", "site-packages"} for part in parts):
            continue
        names.add(path.stem)
        names.update(part for part in parts[:-1] if part.isidentifier())
    return frozenset(names)


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


def _requirements(root: Path, app_dir: str = "") -> CollectedRequirements:
    """What the app starting in `app_dir` depends on, read as data (sandboxes/dependency_files.py): a lock file,
    else requirements*.txt, pyproject.toml, Pipfile, setup.cfg or setup.py, from `app_dir` up to the root."""
    return collect_requirements(root, app_dir)


def _static_count(profile: RepoProfile, found: AppInterface) -> tuple[int | None, str]:
    if found.evals_cases_path:
        for golden in profile.evals.golden_sets:
            if golden.path == found.evals_cases_path:
                return golden.cases, f"{golden.path} has {golden.cases} cases"
    if profile.evals.parametrized_cases:
        return profile.evals.parametrized_cases, "eval parametrizations counted statically"
    return None, ""
