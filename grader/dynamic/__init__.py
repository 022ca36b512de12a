"""Dynamic checks: run the candidate's project in the sandbox against the gateway and measure what it does."""

from __future__ import annotations

from typing import Any

from grader.dynamic.model import DynamicRun
from grader.dynamic.options import DynamicOptions

__all__ = ["DynamicOptions", "DynamicRun", "run_dynamic"]


def __getattr__(name: str) -> Any:
    """`run_dynamic` loads the sandbox, the gateway and every probe: only a grading that runs the project needs it."""
    if name == "run_dynamic":
        from grader.dynamic.run import run_dynamic  # noqa: PLC0415 - see above

        return run_dynamic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
