"""`viva` starts quickly because `import server.cli` leaves the heavy libraries out; each command loads its own.

A top-level import of any of these in a module the CLI imports brings back seconds of start-up for every
command (`import anthropic` alone took 2.4 s). Timings are the startup benchmark's job (bench/startup_bench.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VIVA = Path(sys.executable).with_name("viva")  # the installed entry point, as a user runs it
HEAVY = (
    *("anthropic", "openai", "pydantic_ai", "pydantic", "genai_prices"),  # the models and their agent library
    *("litestar", "uvicorn", "docker", "requests", "httpx"),  # the server, the sandbox, HTTP clients
    *("git", "bm25s", "numpy", "jinja2"),  # fetching, the judge's search, the HTML report
)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded = sorted(set(HEAVY) & _modules_after("import server.cli"))
    assert not loaded, f"`import server.cli` should not load {loaded}; import them inside the command that uses them"


def test_loading_the_settings_loads_no_heavy_library() -> None:
    # Every command but --help loads the settings before it runs, so they must stay light too.
    loaded = _modules_after("from server.settings import load_settings; load_settings()")
    assert not sorted(set(HEAVY) & loaded), f"loading the settings loaded {sorted(set(HEAVY) & loaded)}"


@pytest.mark.parametrize("command", [["--help"], ["rubric", "list"]], ids=["help", "rubric-list"])
def test_quick_commands_still_work(command: list[str]) -> None:
    result = subprocess.run([str(VIVA), *command], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, f"viva {' '.join(command)} exited {result.returncode}: {result.stderr[-500:]}"
    expected = "usage: viva" if command == ["--help"] else "ai-engineer-capstone\tv1\t"
    assert expected in result.stdout, f"viva {' '.join(command)} printed {result.stdout[:300]!r}"


def test_listing_rubrics_loads_no_heavy_library() -> None:
    # Its output lines land in the same stdout; only the module names matter here.
    loaded = _modules_after("from server.cli import main; main(['rubric', 'list'])")
    assert not sorted(set(HEAVY) & loaded), f"`viva rubric list` loaded {sorted(set(HEAVY) & loaded)}"


def test_a_static_grade_with_the_offline_judge_loads_neither_the_agent_library_nor_the_sandbox(tmp_path: Path) -> None:
    # The offline judge answers its prompt directly (grader/judge/offline.py); the sandbox loads for dynamic leaves.
    code = (
        "import contextlib, io, sys\n"
        "from server.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['grade', '--static-only', 'examples/rag-assistant', '--out', {str(tmp_path)!r}])\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    modules = set(result.stdout.split())
    assert (tmp_path / "report.json").is_file()
    unwanted = {"pydantic_ai", "anthropic", "openai", "docker", "bm25s", "numpy", "litestar", "grader.dynamic.run"}
    loaded = sorted(unwanted & (modules | {name.split(".")[0] for name in modules}))
    assert not loaded, f"a static grade loaded {loaded}"
