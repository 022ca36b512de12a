"""Programs Viva runs inside a sandbox, kept as modules so that ruff and mypy check them.

Each is written into the sandbox as its source text (`source`) and run there by the image's own python3: standard
library only, and Python 3.8's syntax, since a project's image may be that old (tests/unit/test_sandbox_programs.py
parses them as 3.8). The fake backend (sandboxes/fake_backend.py) imports them to run the same code in-process.
"""

from __future__ import annotations

from importlib import resources


def source(name: str) -> str:
    """The text of the program `name` ("bridge", "forwarder") exactly as a sandbox receives it."""
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
