"""How long `viva` takes to start, against a bare `python -c pass` of the same interpreter, in the same run.

Measured as a user runs them (the installed `viva` entry point, a fresh process each time): `viva --help`,
`viva rubric list`, and `viva grade --static-only` of examples/rag-assistant (JSON, Markdown and HTML reports).
Goals (start-up issue): the first two under 0.5 s, the grading under 1.5 s, medians of 5 in full mode.
Smoke mode runs each once and only checks that everything runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rag-assistant"
GOAL_SECONDS = {"viva --help": 0.5, "viva rubric list": 0.5, "viva grade --static-only": 1.5}


def run(mode: str) -> bool:
    repeats = 1 if mode == "smoke" else 5
    viva = str(Path(sys.executable).with_name("viva"))
    with tempfile.TemporaryDirectory(prefix="viva-bench-") as scratch:
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "viva --help": [viva, "--help"],
            "viva rubric list": [viva, "rubric", "list"],
            "viva grade --static-only": [viva, "grade", str(EXAMPLE), "--static-only", "--out", scratch],
        }
        # Interleaved, so that a busy moment of the machine spreads over every command rather than one.
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(repeats):
            for label, argv in commands.items():
                times[label].append(_wall(argv))
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    baseline = medians.pop("python -c pass (baseline)")
    print(f"{'python -c pass (baseline)':<26} {baseline * 1000:8.1f} ms (median of {repeats})")
    for label, seconds in medians.items():
        print(
            f"{label:<26} {seconds * 1000:8.1f} ms  {seconds / baseline:6.1f}x baseline  "
            f"(goal < {GOAL_SECONDS[label] * 1000:.0f} ms)"
        )
    if mode == "smoke":
        return True
    met = all(seconds < GOAL_SECONDS[label] for label, seconds in medians.items())
    print("goals met" if met else "GOALS MISSED")
    return met


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TERM": "dumb"}, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.strip()[-500:]}")
    return elapsed
