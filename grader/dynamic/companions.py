"""What runs beside the app and what it reached: its companion services (a compose start's `depends_on`, run as a
pod: sandboxes/pod.py) and its model traffic (the gateways' ledgers and the provider proxies' records).

A companion Viva cannot run — a compose file asking for what a sandbox does not give, an image this host cannot
have — makes the start one Viva could not follow (not_run, with the reason), never the candidate's 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from grader.dynamic.model import ProviderTraffic, ProviderUse
from grader.profile.model import StartCandidate
from grader.profile.starts.dockerfile import image_config, parse_dockerfile, run_command, run_value
from sandboxes.base import SandboxImages
from sandboxes.gateway.app import Gateway
from sandboxes.gateway.clients import unserved_provider
from sandboxes.gateway.ledger import summarise
from sandboxes.gateway.proxy import ProviderProxy
from sandboxes.pod import MAX_COMPOSE_CHARS, CopiedPath, PodPlan, Sidecar, load_compose, sidecars_from_compose
from sandboxes.service_images import ServiceImagePolicy
from sandboxes.settings import SandboxSettings


@dataclass(frozen=True)
class Companions:
    """A start's companion services, ready to run beside each instance of the app."""

    plan: PodPlan
    images: dict[str, str]
    """Service → the local image to run."""

    @property
    def names(self) -> list[str]:
        """Every name the app may call them by (service names and aliases), each resolving to its own loopback."""
        return list(dict.fromkeys(name for sidecar in self.plan.sidecars for name in [sidecar.name, *sidecar.aliases]))

    def not_started(self) -> list[str]:
        return [f"{item.service}: not started ({item.reason})" for item in self.plan.not_started]


BUILT_DIR = "/work/app"
"""Where a sidecar built from the repository finds its build context's files (a read-only copy), and runs."""
SANDBOX_USER = "1000:1000"
"""The candidate's own code runs as the same unprivileged user in a sidecar as in the app's sandbox."""


def plan_pod(root: Path, start: StartCandidate) -> PodPlan | str | None:
    """The pod `start` needs (None when it needs none), or why Viva cannot run it."""
    if not start.services:
        return None
    if not start.compose_service:
        return f"it needs the services {', '.join(start.services)}, and no compose file says how to run them"
    compose_path = (root / start.evidence.path).resolve()
    try:
        if not compose_path.is_relative_to(root.resolve()) or compose_path.stat().st_size > MAX_COMPOSE_CHARS:
            return f"its compose file {start.evidence.path} is outside the repository or too large to read"
        compose = load_compose(compose_path.read_text(errors="replace"))
    except (OSError, ValueError) as error:
        return f"its compose file {start.evidence.path} could not be read: {error}"
    plan = sidecars_from_compose(compose, start.compose_service, root, compose_path.parent, app_port=start.port)
    if plan.refused:
        refused = "; ".join(f"{item.service}: {item.reason}" for item in plan.refusals)
        return f"its compose file asks for what a sandbox does not give ({refused})"
    return plan


def built_sidecar(root: Path, sidecar: Sidecar, image: str, env: dict[str, str]) -> Sidecar | str:
    """A sidecar compose builds from the repository (`build: ./worker`), as Viva runs it: the dependency layer of
    its build context (`image`), that context's files copied in read-only at BUILT_DIR, the command its compose
    entry or its Dockerfile gives (RUN steps are not replayed, as for the app), as the sandbox's unprivileged user,
    with `env` (the gateway's variables: a worker may call the model too). Or why it cannot run."""
    assert sidecar.build is not None
    context = sidecar.build.context
    dockerfile = root / context / sidecar.build.dockerfile
    try:
        config = image_config(
            parse_dockerfile(str(dockerfile.relative_to(root)), dockerfile.read_text(errors="replace")),
            target=sidecar.build.target,
        )
    except (OSError, ValueError):
        config = None
    entrypoint = sidecar.entrypoint if sidecar.entrypoint is not None else (
        run_value(config.entrypoint) if config else None
    )  # fmt: skip
    cmd: str | list[str] | None = sidecar.command
    if cmd is None and sidecar.entrypoint is None and config is not None:
        cmd = run_value(config.cmd)  # compose's entrypoint drops the image's CMD, as Docker does
    command = run_command(entrypoint, cmd, config.shell if config else None)
    if not command:
        return (
            f"{sidecar.name} is built from {context or '.'}, and neither its compose entry nor its Dockerfile says "
            "what it runs"
        )
    return msgspec.structs.replace(
        sidecar,
        image=image,
        entrypoint=[],
        command=["sh", "-c", command],
        user=SANDBOX_USER,
        working_dir=BUILT_DIR,
        environment={**(config.env if config else {}), **sidecar.environment, **env},
        copied=[*sidecar.copied, CopiedPath(context or ".", BUILT_DIR, True)],
    )


def plan_companions(
    root: Path,
    start: StartCandidate,
    images: SandboxImages,
    settings: SandboxSettings,
    built: dict[str, Sidecar] | None = None,
) -> Companions | str | None:
    """The companions `start` needs (None when it needs none), or why Viva cannot run them. `built` holds the
    sidecars built from the repository, ready to run (`built_sidecar`)."""
    plan = plan_pod(root, start)
    if plan is None or isinstance(plan, str):
        return plan
    return companions_for(plan, images, settings, built)


def companions_for(
    plan: PodPlan, images: SandboxImages, settings: SandboxSettings, built: dict[str, Sidecar] | None = None
) -> Companions | str:
    """A planned pod with its images, or why they cannot be had (the built sidecars take their layers' images)."""
    built = built or {}
    plan = msgspec.structs.replace(plan, sidecars=[built.get(one.name, one) for one in plan.sidecars])
    unbuilt = [one.name for one in plan.sidecars if one.build is not None and one.name not in built]
    if unbuilt:
        return f"its companion services {', '.join(unbuilt)} are built from the repository, and were not built"
    made = {name: sidecar.image for name, sidecar in built.items() if sidecar.image}
    found, missing = images.service_images(plan, ServiceImagePolicy.from_settings(settings), made)
    if missing:
        lacking = "; ".join(f"{service} ({why})" for service, why in missing.items())
        return f"the images of its companion services cannot be had on this host: {lacking}"
    return Companions(plan, found)


def provider_traffic(gateways: Iterable[Gateway], proxies: Iterable[ProviderProxy]) -> ProviderTraffic:
    """Which clients and wire APIs the app's model calls came by, all instances together, and what the provider
    proxies refused: an unserved provider among the refused hosts is named."""
    calls = [call for gateway in gateways for call in gateway.calls]
    summary = summarise(calls)
    refused: Counter[str] = Counter()
    handshakes: Counter[str] = Counter()
    unserved: dict[str, None] = {}
    for proxy in proxies:
        for attempt in proxy.refused:
            refused[f"{attempt.host}:{attempt.port} {attempt.method}: {attempt.reason}"] += 1
            provider = unserved_provider(attempt.host)
            if provider is not None:
                unserved[provider.name] = None
        for attempt in proxy.failed_handshakes:
            handshakes[f"{attempt.host or '(no name)'}: {attempt.reason}"] += 1
    return ProviderTraffic(
        uses=[ProviderUse(use.client, use.wire_api, use.calls) for use in summary.pairs],
        refused=[_counted(line, count) for line, count in refused.most_common(20)],
        failed_handshakes=[_counted(line, count) for line, count in handshakes.most_common(20)],
        unserved=list(unserved),
    )


def _counted(line: str, count: int) -> str:
    return line if count == 1 else f"{line} (×{count})"
