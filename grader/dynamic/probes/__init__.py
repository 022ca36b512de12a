"""Small probes: dynamic checks that need only the running main instance and its query route.

A probe is one module in this package holding two functions under one catalogue name: the probe itself
(`@PROBES.register(name)`, a coroutine that talks to the app and returns a `ProbeRun` of exchanges) and its scorer
(`@SCORERS.register(name)`, pure, from `run.probe(name)` to a Score). Every module here is imported when the
package is, so adding one needs no other wiring: the session runs every wanted probe after injection (the gullible
model gone, the evals not yet started), the report keeps each result in `report.dynamic.probes`, and both
renderers draw its exchanges as a table.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from grader.checks.registry import CheckRegistry
from grader.dynamic.model import AppInterface, ProbeRun
from sandboxes.gateway.app import Gateway


@dataclass(frozen=True)
class ProbeTarget:
    """What a probe may use: a client to the app, how to ask it a question, its gateway (the model calls the app
    made) and whether the app is still running."""

    http: httpx.AsyncClient
    found: AppInterface
    gateway: Gateway
    alive: Callable[[], Awaitable[bool]]


Probe = Callable[[Any, ProbeTarget], Awaitable[ProbeRun]]
PROBES: CheckRegistry[Probe] = CheckRegistry("dynamic")


async def run_probes(wanted: dict[str, Any], target: ProbeTarget) -> list[ProbeRun]:
    """Run each registered probe named in `wanted` {check name: params}, in the registry's order. A probe that
    raises is Viva's failure: its result carries the error (its scorer gives an error score), the others still run."""
    results = []
    for name, probe in PROBES.items():
        if name not in wanted:
            continue
        try:
            result = await probe(wanted[name], target)
        except Exception as error:
            result = ProbeRun(check=name, error=f"{type(error).__name__}: {error}"[:500])
        result.check = name
        results.append(result)
    return results


def _import_probe_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_probe_modules()
