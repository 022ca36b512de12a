"""Running the candidate's eval suite in the sandbox, twice, against the gateway's stand-in model.

A suite's results are self-reported by nature (the candidate's code runs it), so Viva does not take the exit code
or the printed summary on trust:
- for pytest suites, a collection run in a separate process counts the cases before any runs, and Viva's own
  plugin writes the results file: it records, around each test's call, whether the body really raised, so a
  `conftest.py` that rewrites failures into passes is caught; a session that never reaches its end (an early
  `os._exit`) leaves no "finished" mark;
- for other runners, Viva asks for a results file (VIVA_EVAL_RESULTS, one JSON object per case: {"id", "passed"})
  and checks its count against the golden set the repository declares.

The runs (and the collection) go at once, each in its own copy of the app's tree taken before any of them starts:
no run sees what another wrote, and a suite that mostly waits on its model calls takes the time of one run.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from typing import Any

from grader.dynamic import programs
from grader.dynamic.model import EvalRun, EvalsResult
from sandboxes.base import ExecResult, Sandbox

RESULTS_DIR = "/work/.viva/evals"
APP_DIR = "/work/app"
RUNS_NOTE = "The runs went at once, each in its own copy of the app's tree (as it stood once the app had started)."
RUNS_NOTE_SEQUENTIAL = "The runs went one after another in the app's own tree: the sandbox had no room for copies."
PLUGIN_NAME = "viva_eval_results"
PYTEST = re.compile(r"^(?:python3?\s+-m\s+)?pytest\b|^py\.test\b")
MODEL_NOTE = (
    "Run against Viva's stand-in model (the gateway's deterministic offline responder), not the candidate's "
    "provider: pass rates measure the pipeline around the model, and results are self-reported by the suite."
)

PLUGIN = programs.source("viva_pytest_plugin")
"""Viva's pytest plugin (grader/dynamic/programs/viva_pytest_plugin.py), written as PLUGIN_NAME.py."""


async def run_evals(
    sandbox: Sandbox,
    command: str,
    env: dict[str, str],
    *,
    runs: int,
    timeout_s: float,
    static_count: int | None,
    static_source: str,
) -> EvalsResult:
    runner = "pytest" if PYTEST.match(command.strip()) else "command"
    result = EvalsResult(
        command=command,
        runner=runner,  # type: ignore[arg-type]
        static_count=static_count,
        static_source=static_source,
        model_note=MODEL_NOTE,
    )
    await sandbox.exec(["mkdir", "-p", RESULTS_DIR])
    numbers = range(1, runs + 1)
    dirs = [_run_dir(number) for number in numbers]
    listed, copies = " ".join(dirs), " && ".join(f"cp -a {APP_DIR}/. {directory}/" for directory in dirs)
    copied = await sandbox.exec(["sh", "-c", f"rm -rf {listed} && mkdir -p {listed} && {copies}"], timeout=300)
    apart = copied.returncode == 0
    if not apart:  # no room for the copies (a large repository): one run after another in the app's own tree
        await sandbox.exec(["rm", "-rf", *dirs], timeout=300)
    collection: Awaitable[ExecResult | None]
    if runner == "pytest":
        await sandbox.write_file(f"{RESULTS_DIR}/{PLUGIN_NAME}.py", PLUGIN.encode())
        python_path = RESULTS_DIR + (f":{env['PYTHONPATH']}" if env.get("PYTHONPATH") else "")
        env = {**env, "PYTHONPATH": python_path, "PYTHONDONTWRITEBYTECODE": "1"}
        collection = sandbox.exec(
            ["sh", "-c", f"{command} --collect-only -q -p {PLUGIN_NAME} -p no:cacheprovider"],
            cwd=APP_DIR,
            env={**env, "VIVA_EVAL_OUT": f"{RESULTS_DIR}/collect.json"},
            timeout=min(timeout_s, 300),
        )
    else:
        collection = _nothing()

    def one(number: int, cwd: str) -> Awaitable[EvalRun]:
        return _one_run(sandbox, runner, command, env, number=number, timeout_s=timeout_s, cwd=cwd)

    if apart:
        collected_run, result.runs = await asyncio.gather(
            collection, asyncio.gather(*(one(n, directory) for n, directory in zip(numbers, dirs, strict=True)))
        )
    else:
        collected_run = await collection
        result.runs = [await one(n, APP_DIR) for n in numbers]
    if isinstance(collected_run, ExecResult):
        result.collection_tail = _tail(collected_run.stdout + collected_run.stderr)
        collected = await _read_json(sandbox, f"{RESULTS_DIR}/collect.json")
        result.collected = len(collected.get("collected", [])) if collected else None
        if result.collected is None:
            result.problems.append("the collection run wrote no results: the suite does not collect")
    if runs > 1:
        result.runs_note = RUNS_NOTE if apart else RUNS_NOTE_SEQUENTIAL
    _cross_check(result)
    return result


async def _one_run(
    sandbox: Sandbox, runner: str, command: str, env: dict[str, str], *, number: int, timeout_s: float, cwd: str
) -> EvalRun:
    out = f"{RESULTS_DIR}/run-{number}.json"
    if runner == "pytest":
        line = f"{command} -p {PLUGIN_NAME} -p no:cacheprovider"
        run_env = {**env, "VIVA_EVAL_OUT": out}
    else:
        line, run_env = command, {**env, "VIVA_EVAL_RESULTS": out}
    await sandbox.exec(["rm", "-f", out])
    executed = await sandbox.exec(["sh", "-c", line], cwd=cwd, env=run_env, timeout=timeout_s)
    run = EvalRun(
        exit_code=executed.returncode,
        seconds=round(executed.duration_s, 3),
        timed_out=executed.timed_out,
        output_tail=_tail(executed.stdout + executed.stderr),
    )
    if runner == "pytest":
        state = await _read_json(sandbox, out)
        if state:
            run.results_written = True
            run.finished = bool(state.get("finished"))
            outcomes = {str(k): str(v) for k, v in (state.get("outcomes") or {}).items()}
            raised = state.get("raised") or {}
            run.forged = sorted(
                node for node, outcome in outcomes.items() if outcome == "passed" and raised.get(node) == "yes"
            )
            for node in run.forged:
                outcomes[node] = "failed"
            run.outcomes = outcomes
    else:
        run.outcomes = await _read_jsonl_results(sandbox, out)
        run.results_written = bool(run.outcomes)
    run.total = len(run.outcomes)
    run.passed = sum(1 for value in run.outcomes.values() if value == "passed")
    run.skipped = sum(1 for value in run.outcomes.values() if value == "skipped")
    run.failed = run.total - run.passed - run.skipped
    return run


def _run_dir(number: int) -> str:
    return f"/work/eval-run-{number}"


async def _nothing() -> None:
    return None


def _cross_check(result: EvalsResult) -> None:
    for number, run in enumerate(result.runs, start=1):
        if run.timed_out:
            result.problems.append(f"run {number} did not finish within its time limit")
        if not run.results_written:
            result.problems.append(
                f"run {number} left no results file (it crashed, exited early, or ignores VIVA_EVAL_RESULTS)"
            )
        elif not run.finished:
            result.problems.append(f"run {number} stopped before the end of its session: an early exit")
        if run.forged:
            result.problems.append(
                f"run {number}: {len(run.forged)} case(s) reported passed although the test body raised "
                f"(e.g. {run.forged[0]}): results were rewritten by a hook"
            )
        if result.collected is not None and run.results_written and run.total < result.collected:
            result.problems.append(f"run {number} reported {run.total} of the {result.collected} collected cases")
        if run.results_written and run.exit_code == 0 and run.failed:
            result.problems.append(
                f"run {number} exited 0 with {run.failed} failing case(s): the exit status is forged"
            )
    counted = result.collected if result.collected is not None else max((run.total for run in result.runs), default=0)
    if result.static_count and counted < 0.9 * result.static_count:
        result.problems.append(
            f"{counted} case(s) ran but the repository declares {result.static_count} ({result.static_source})"
        )
    complete = [run for run in result.runs if run.results_written and run.finished]
    if len(complete) == len(result.runs) and len(complete) >= 2:
        result.reproducible = all(run.outcomes == complete[0].outcomes for run in complete[1:])
    elif len(complete) < len(result.runs):
        result.reproducible = None


async def _read_json(sandbox: Sandbox, path: str) -> dict[str, Any] | None:
    try:
        data = json.loads(await sandbox.read_file(path, limit=8_000_000))
    except Exception:  # a missing or garbled file is the runner's failure, reported as such
        return None
    return data if isinstance(data, dict) else None


async def _read_jsonl_results(sandbox: Sandbox, path: str) -> dict[str, str]:
    try:
        text = (await sandbox.read_file(path, limit=8_000_000)).decode(errors="replace")
    except Exception:  # no file: the runner did not write one
        return {}
    outcomes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "passed" in record:
            outcomes[str(record.get("id", number))] = "passed" if record["passed"] is True else "failed"
    return outcomes


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-4000:]
