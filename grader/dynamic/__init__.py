"""Dynamic checks: run the candidate's project in the sandbox against the gateway and measure what it does."""

from grader.dynamic.model import DynamicRun
from grader.dynamic.run import DynamicOptions, run_dynamic

__all__ = ["DynamicOptions", "DynamicRun", "run_dynamic"]
