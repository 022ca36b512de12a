"""Profiling a large tree vs reading every file of it once, in the same process and the same run.

The tree is a copy of this interpreter's standard library (without site-packages) committed to a git
repository: about 2,000 Python files in full mode, a 150-file slice in smoke mode. Also measured: the
whole `viva grade --static-only` command on that repository (wall time and the child's peak RSS).
Goals (issue 2): profile at most 5x the read baseline, the command under 5 s, peak under 300 MB.
Smoke mode only checks that everything runs; the goals are judged in full mode.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from grader.profile import build_profile

GOAL_RATIO = 5.0
GOAL_COMMAND_SECONDS = 5.0
GOAL_PEAK_MB = 300.0


def run(mode: str) -> bool:
    limit = 150 if mode == "smoke" else None
    repeats = 1 if mode == "smoke" else 3
    with tempfile.TemporaryDirectory(prefix="viva-bench-") as scratch:
        repo = _stdlib_repo(Path(scratch) / "stdlib", limit)
        files = [path for path in repo.rglob("*") if path.is_file() and ".git" not in path.parts]
        read_times, profile_times = [], []
        for _ in range(repeats):
            read_times.append(_time(lambda: _read_all(files)))
            profile_times.append(_time(lambda: build_profile(repo)))
        read_s, profile_s = statistics.median(read_times), statistics.median(profile_times)
        command_s, peak_mb = _grade_command(repo, Path(scratch) / "out")
    ratio = profile_s / read_s
    print(f"files: {len(files)}")
    print(f"read every file once:   {read_s * 1000:8.1f} ms (median of {repeats})")
    print(f"build_profile:          {profile_s * 1000:8.1f} ms (median of {repeats})")
    print(f"ratio profile/read:     {ratio:8.2f}x  (goal <= {GOAL_RATIO}x)")
    print(f"viva grade --static-only: {command_s:6.2f} s wall (goal < {GOAL_COMMAND_SECONDS} s)")
    print(f"peak RSS of the command:  {peak_mb:6.1f} MB (goal < {GOAL_PEAK_MB} MB)")
    if mode == "smoke":
        return True
    met = ratio <= GOAL_RATIO and command_s < GOAL_COMMAND_SECONDS and peak_mb < GOAL_PEAK_MB
    print("goals met" if met else "GOALS MISSED")
    return met


def _stdlib_repo(dest: Path, limit: int | None) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and not p.is_symlink())
    for source in sources[:limit]:
        target = dest / source.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    git = ["git", "-C", str(dest), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "stdlib"], check=True)
    return dest


def _read_all(files: list[Path]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total


def _time(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _grade_command(repo: Path, out: Path) -> tuple[float, float]:
    viva = Path(sys.executable).with_name("viva")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(
        [str(viva), "grade", str(repo), "--static-only", "--out", str(out), "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "TERM": "dumb"},
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"viva grade failed: {result.stderr.strip()[-500:]}")
    peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return elapsed, peak_kb / 1024
