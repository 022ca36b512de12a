"""Programs the grader runs inside a sandbox, kept as modules so that ruff and mypy check them; each is written
into the sandbox as its source text (`source`). They run under the candidate's interpreter: standard library only
(and what the program names, e.g. pytest), Python 3.8's syntax (tests/unit/test_sandbox_programs.py parses them so).
"""

from __future__ import annotations

from importlib import resources


def source(name: str) -> str:
    """The text of the program `name` ("viva_pytest_plugin") exactly as a sandbox receives it."""
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
