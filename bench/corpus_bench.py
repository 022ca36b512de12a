"""Viva against the development corpus: real candidate-style repositories (bench/corpus/repos.toml), graded fully.

Each repository checked out in .corpus/<owner>+<name>/ (scripts/corpus-checkout.sh makes them) is graded by the
installed CLI in a subprocess, with the sandbox, exactly as a user would:
`.venv/bin/viva grade <checkout> --format json --out .corpus/results/<key>/<owner>+<name>`, under a per-repository
timeout. Then one table row per repository (started or not, via which command, dynamic coverage, scores and their
basis, why leaves were not run, seconds), a summary of outcomes, and the table as Markdown in
.corpus/results/<key>/table.md.

Results are cached per repository and per version of the code that grades: <key> is `code-<hash>` of the git
trees of grader, rubrics, sandboxes, llm, interviewer, server and pyproject.toml at HEAD (so a commit that changes
only docs, tests or benches reuses every result), plus `-dirty-<hash>` when that code differs from HEAD, the hash
being of that difference. An existing report.json is reused, so a long
run stopped half way picks up where it stopped; a repository whose grading failed is graded again.

The corpus is manual (minutes per repository): it grades only when VIVA_CORPUS=1, which `python -m bench --only
corpus` sets. Otherwise, and always in smoke mode (what CI runs), it validates repos.toml, which takes milliseconds
and needs no checkout, and prints "corpus not checked out: skipped" when .corpus/ is absent.

Environment:
  VIVA_CORPUS=1              grade (set by `--only corpus`)
  VIVA_CORPUS_ONLY=a/b,c/d   only these repositories
  VIVA_CORPUS_FRESH=1        ignore cached reports (they are overwritten)
  VIVA_CORPUS_TIMEOUT_S=900  per-repository limit in seconds (default 15 minutes)
  VIVA_SANDBOX_IMAGE_SOURCE  passed on; "offline" unless set
The VIVA_CORPUS* variables are the bench's own: they are removed from the environment of `viva grade`, whose settings
refuse VIVA_* names they do not know (so do not export them while running other benches in the same process).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPOS_TOML = ROOT / "bench" / "corpus" / "repos.toml"
CORPUS = ROOT / ".corpus"
RESULTS = CORPUS / "results"
COMMITS = CORPUS / ".commits"  # which commit each checkout holds (scripts/corpus-checkout.sh writes them)
KINDS = frozenset({"rag", "agent", "llm-api", "chatbot", "other"})
STARTS_WITH = frozenset({"dockerfile", "compose", "makefile", "procfile", "readme", "code", "none"})
FIELDS = frozenset({"name", "commit", "kind", "starts_with", "why"})
GRADING_PATHS = ["grader", "rubrics", "sandboxes", "llm", "interviewer", "server", "pyproject.toml"]
DEFAULT_TIMEOUT_S = 15 * 60
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
COMMIT = re.compile(r"[0-9a-f]{40}")
BOILERPLATE = re.compile(r"^(the process exited before it answered: )?(the start command failed: )?")
OUTCOMES = ["started and probed", "candidate's failure", "not_run", "not graded"]


@dataclass(frozen=True)
class Repo:
    name: str
    commit: str
    kind: str
    starts_with: str
    why: str

    @property
    def slug(self) -> str:
        return self.name.replace("/", "+")

    @property
    def checkout(self) -> Path:
        return CORPUS / self.slug


@dataclass
class Row:
    repo: Repo
    outcome: str
    seconds: float | None = None
    cached: bool = False
    started: str = "-"
    via: str = ""
    dynamic_coverage: float | None = None
    score: float | None = None
    criteria: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    """Shortened, de-duplicated not_run reasons, dynamic ones first."""
    dynamic_reasons: list[str] = field(default_factory=list)
    error: str = ""


def run(mode: str) -> bool:
    repos, problems = load_repos(REPOS_TOML)
    for problem in problems:
        print(f"repos.toml: {problem}")
    if problems:
        return False
    kinds = Counter(repo.kind for repo in repos)
    spread = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    print(f"repos.toml: {len(repos)} repositories, well-formed ({spread})")
    present = [repo for repo in repos if repo.checkout.is_dir()]
    if not present:
        print("corpus not checked out: skipped")
        return True
    if mode == "smoke" or os.environ.get("VIVA_CORPUS") != "1":
        print(
            f"{len(present)} of {len(repos)} checked out; grading them is manual: "
            "python -m bench --mode full --only corpus (or VIVA_CORPUS=1)"
        )
        return True
    return grade_corpus(repos)


# --- repos.toml ---------------------------------------------------------------------------------------------------


def load_repos(path: Path) -> tuple[list[Repo], list[str]]:
    """The repositories of `path`, and what is wrong with it (nothing, for a well-formed file)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        return [], [str(error)]
    tables = data.get("repo")
    if not isinstance(tables, list) or not tables:
        return [], ["no [[repo]] tables"]
    repos: list[Repo] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, 1):
        where = f"[[repo]] #{index}"
        if not isinstance(table, dict):
            problems.append(f"{where}: not a table")
            continue
        values = {key: table.get(key) for key in FIELDS}
        if missing := sorted(key for key, value in values.items() if not isinstance(value, str) or not value):
            problems.append(f"{where}: missing or empty {', '.join(missing)}")
            continue
        if extra := sorted(set(table) - FIELDS):
            problems.append(f"{where}: unknown key(s) {', '.join(extra)}")
        repo = Repo(**{key: str(value) for key, value in values.items()})
        where = f"{where} ({repo.name})"
        if not NAME.fullmatch(repo.name):
            problems.append(f"{where}: name is not owner/name")
        if repo.name.lower() in seen:
            problems.append(f"{where}: duplicate name")
        seen.add(repo.name.lower())
        if not COMMIT.fullmatch(repo.commit):
            problems.append(f"{where}: commit is not 40 lower-case hex digits")
        if repo.kind not in KINDS:
            problems.append(f"{where}: kind {repo.kind!r} is not one of {', '.join(sorted(KINDS))}")
        if repo.starts_with not in STARTS_WITH:
            problems.append(f"{where}: starts_with {repo.starts_with!r} is not one of {', '.join(sorted(STARTS_WITH))}")
        repos.append(repo)
    return repos, problems


# --- grading ------------------------------------------------------------------------------------------------------


def grade_corpus(repos: list[Repo]) -> bool:
    only = {name.strip().lower() for name in os.environ.get("VIVA_CORPUS_ONLY", "").split(",") if name.strip()}
    if unknown := sorted(only - {repo.name.lower() for repo in repos}):
        print(f"VIVA_CORPUS_ONLY names not in repos.toml: {', '.join(unknown)}")
    selected = [repo for repo in repos if not only or repo.name.lower() in only]
    missing = [repo for repo in selected if not repo.checkout.is_dir()]
    present = [repo for repo in selected if repo.checkout.is_dir()]
    fresh = os.environ.get("VIVA_CORPUS_FRESH") == "1"
    timeout = float(os.environ.get("VIVA_CORPUS_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
    key = viva_key()
    results = RESULTS / key
    print(f"Viva {key}: {len(present)} repositories to grade, results in {results.relative_to(ROOT)}", flush=True)
    rows: list[Row] = []
    for number, repo in enumerate(present, 1):
        recorded = COMMITS / repo.slug
        if recorded.is_file() and recorded.read_text().strip() != repo.commit:
            print(f"  note: {repo.name}'s checkout is not at the pinned commit (scripts/corpus-checkout.sh)")
        print(f"[{number}/{len(present)}] {repo.name} ...", end=" ", flush=True)
        row = grade_one(repo, results / repo.slug, fresh=fresh, timeout=timeout)
        rows.append(row)
        cached = " (cached)" if row.cached else ""
        print(f"{row.outcome}, {_seconds(row.seconds)} s{cached}{': ' + row.error if row.error else ''}", flush=True)
    lines = table_lines(rows)
    print()
    print("\n".join(lines))
    summary = summary_lines(rows)
    print()
    print("\n".join(summary))
    for repo in missing:
        print(f"not checked out: {repo.name} (fetch github:{repo.name}, then scripts/corpus-checkout.sh {repo.name})")
    if rows:
        # The file covers every repository graded under this key, this run's and earlier runs' (VIVA_CORPUS_ONLY
        # picks what to grade now, not what the file shows): a run done in parts ends with the whole table.
        done = {row.repo.name for row in rows}
        earlier = [
            _cached_row(repo, results / repo.slug)
            for repo in repos
            if repo.name not in done and (results / repo.slug / "report.json").is_file()
        ]
        every = [row for row in [*rows, *earlier] if row is not None]
        every.sort(key=lambda row: [repo.name for repo in repos].index(row.repo.name))
        results.mkdir(parents=True, exist_ok=True)
        markdown = [f"# Viva {key} on the corpus", "", *markdown_table(every), "", *summary_lines(every)]
        (results / "table.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
        print(f"\ntable: {(results / 'table.md').relative_to(ROOT)}")
    return all(row.outcome != "not graded" for row in rows)


def grade_one(repo: Repo, out: Path, *, fresh: bool, timeout: float) -> Row:
    """Grade `repo` into `out` (or reuse the report there) and read the row from its report."""
    report_path, run_path = out / "report.json", out / "bench.json"
    cached = report_path.is_file() and not fresh
    if not cached:
        report_path.unlink(missing_ok=True)
        run_info = _grade_subprocess(repo, out, timeout)
        run_path.write_text(json.dumps(run_info, indent=2), encoding="utf-8")
    else:
        try:
            run_info = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            run_info = {}
    seconds = run_info.get("seconds")
    if not report_path.is_file():
        error = run_info.get("error") or "no report.json written"
        return Row(repo=repo, outcome="not graded", seconds=seconds, error=error)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as problem:
        return Row(repo=repo, outcome="not graded", seconds=seconds, error=f"report.json unreadable: {problem}")
    if seconds is None:  # a report from before bench.json existed: the stages' own timings
        seconds = sum(float(t.get("seconds") or 0) for t in report.get("timings") or [] if isinstance(t, dict))
    return row_from_report(repo, report, seconds=seconds, cached=cached)


def _cached_row(repo: Repo, out: Path) -> Row | None:
    """The row of an earlier run's report in `out`, without grading."""
    try:
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        run_info = (
            json.loads((out / "bench.json").read_text(encoding="utf-8")) if (out / "bench.json").is_file() else {}
        )
    except (OSError, ValueError):
        return None
    return row_from_report(repo, report, seconds=run_info.get("seconds"), cached=True)


def _grade_subprocess(repo: Repo, out: Path, timeout: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    viva = Path(sys.executable).with_name("viva")
    argv = [str(viva), "grade", str(repo.checkout), "--format", "json", "--out", str(out)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIVA_CORPUS")}
    env.setdefault("VIVA_SANDBOX_IMAGE_SOURCE", "offline")
    env.update(TERM="dumb", NO_COLOR="1")
    started = time.perf_counter()
    with (out / "grade.log").open("w", encoding="utf-8") as log:
        # A session of its own, so that a timeout stops viva and whatever it started, not this process.
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=timeout)
        except KeyboardInterrupt:  # its own session does not get the terminal's Ctrl-C: pass it on, then stop
            _stop(process)
            raise
        except subprocess.TimeoutExpired:
            _stop(process)
            seconds = time.perf_counter() - started
            return {
                "argv": argv,
                "seconds": round(seconds, 1),
                "timed_out": True,
                "error": f"timed out after {timeout:.0f} s",
            }
    seconds = time.perf_counter() - started
    info: dict[str, Any] = {"argv": argv, "seconds": round(seconds, 1), "returncode": returncode, "timed_out": False}
    if returncode != 0:
        tail = (out / "grade.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        info["error"] = f"exit {returncode}: {tail[0][-160:]}"
    return info


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the grading's process group (viva removes its containers on the way out), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


# --- reading reports ----------------------------------------------------------------------------------------------


def row_from_report(repo: Repo, report: dict[str, Any], *, seconds: float | None, cached: bool) -> Row:
    """The table row of one report.json; every field beyond the criteria tree may be absent (older reports)."""
    criteria = [node for node in report.get("criteria") or [] if isinstance(node, dict)]
    leaves = [node for node in _walk(criteria) if not node.get("children")]
    dynamic_leaves = [leaf for leaf in leaves if str(leaf.get("check") or "").startswith("dynamic:")]
    dynamic = _dict(report.get("dynamic"))
    service = _dict(dynamic.get("service"))
    interface = _dict(dynamic.get("interface"))
    attempts = [attempt for attempt in service.get("attempts") or [] if isinstance(attempt, dict)]

    total_share = sum(float(leaf.get("share") or 0) for leaf in dynamic_leaves)
    scored_share = sum(float(leaf.get("share") or 0) for leaf in dynamic_leaves if leaf.get("score") is not None)
    dynamic_reasons = _dedupe(
        _short(str(leaf.get("explanation") or "")) for leaf in dynamic_leaves if leaf.get("status") != "scored"
    )
    not_run = report.get("not_run")
    if isinstance(not_run, list):
        all_reasons = [str(item.get("reason") or "") for item in not_run if isinstance(item, dict)]
    else:
        all_reasons = [str(leaf.get("explanation") or "") for leaf in leaves if leaf.get("status") != "scored"]
    reasons = _dedupe([*dynamic_reasons, *(_short(reason) for reason in all_reasons)])

    if service.get("started") is True:
        outcome, started = "started and probed", "yes"
    elif service and service.get("blame") in ("candidate", None):
        outcome, started = "candidate's failure", "no"
    else:
        outcome, started = "not_run", "no" if service else "-"

    # The attempt that started, else the first one (the project's own word; later ones are Viva's fallbacks).
    chosen = next((a for a in attempts if a.get("outcome") == "started"), attempts[0] if attempts else None)
    if chosen is not None:
        where = f"{chosen.get('tier') or '?'}/{chosen.get('source') or '?'}"
        via = f"{_short(str(chosen.get('command') or ''), 40)} [{where}]"
        if len(attempts) > 1:
            via += f" ({len(attempts)} tries)"
        failure = str(chosen.get("reason") or "")
    elif interface.get("start_command"):
        via = f"{_short(str(interface['start_command']), 40)} [{interface.get('start_source') or '?'}]"
        failure = str(service.get("reason") or "")
    else:
        via, failure = "", str(service.get("reason") or "")
    if outcome != "started and probed" and failure:
        via = f"{via}: {_short(BOILERPLATE.sub('', failure), 60)}".removeprefix(": ")

    return Row(
        repo=repo,
        outcome=outcome,
        seconds=seconds,
        cached=cached,
        started=started,
        via=via,
        dynamic_coverage=scored_share / total_share if total_share else None,
        score=_float(report.get("score")),
        criteria=[_criterion(node) for node in criteria],
        reasons=reasons,
        dynamic_reasons=dynamic_reasons,
    )


def _criterion(node: dict[str, Any]) -> str:
    score = _float(node.get("score"))
    basis = "".join(str(kind)[:1] for kind in node.get("basis") or [])
    value = "-" if score is None else f"{score:.2f}".removeprefix("0")
    return f"{node.get('id') or '?'} {value}{'/' + basis if basis else ''}"


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for node in nodes:
        found.append(node)
        found.extend(_walk([child for child in node.get("children") or [] if isinstance(child, dict)]))
    return found


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _short(text: str, limit: int = 70) -> str:
    """The first sentence of `text` on one line, at most `limit` characters."""
    line = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    first = match.group(1) if match else line
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _dedupe(items: Any) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f}"


# --- output -------------------------------------------------------------------------------------------------------

HEADER = ["repository", "started", "via [tier/source]", "dyn cov", "score", "criteria (score/basis)", "not_run", "s"]


def _cells(row: Row) -> list[str]:
    if row.outcome == "not graded":
        return [row.repo.name, "?", f"NOT GRADED: {row.error}", "-", "-", "", "", _seconds(row.seconds)]
    coverage = "-" if row.dynamic_coverage is None else f"{row.dynamic_coverage:.0%}"
    score = "-" if row.score is None else f"{row.score:.2f}"
    reasons = "; ".join(row.reasons[:3]) + (f" (+{len(row.reasons) - 3})" if len(row.reasons) > 3 else "")
    seconds = _seconds(row.seconds) + ("c" if row.cached else "")
    return [row.repo.name, row.started, row.via, coverage, score, ", ".join(row.criteria), reasons, seconds]


WIDTHS = [45, 7, 100, 7, 5, 110, 80, 6]
"""The console's cell widths; the Markdown table has every character."""


def table_lines(rows: list[Row]) -> list[str]:
    """A plain-text table for the console, each cell cut at its column's width."""
    cells = [HEADER, *(_cells(row) for row in rows)]
    cells = [[_cut(cell, WIDTHS[i]) for i, cell in enumerate(line)] for line in cells]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADER))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in cells]


def _cut(cell: str, width: int) -> str:
    return cell if len(cell) <= width else cell[: width - 1] + "…"


def markdown_table(rows: list[Row]) -> list[str]:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = _cells(row)
        cells[-2] = "; ".join(row.reasons)  # every reason in the file: no console to fit
        lines.append("| " + " | ".join(escape(cell) for cell in cells) + " |")
    return lines


def summary_lines(rows: list[Row]) -> list[str]:
    total = len(rows)
    if not total:
        return ["nothing graded"]
    counts = Counter(row.outcome for row in rows)
    lines = [f"summary of {total} repositories (basis: s static, d dynamic, j judge, i interview; c: cached report):"]
    for outcome in OUTCOMES:
        names = [row.repo.name for row in rows if row.outcome == outcome]
        shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
        lines.append(f"  {outcome:<20} {counts[outcome]:>3}  {counts[outcome] / total:>4.0%}  {shown}".rstrip())
        if outcome == "not_run" and names:
            grouped = Counter(reason for row in rows if row.outcome == outcome for reason in row.dynamic_reasons)
            for reason, count in grouped.most_common():
                lines.append(f"      {count:>3} x {reason}")
    return lines


# --- the Viva version key -----------------------------------------------------------------------------------------


def viva_key() -> str:
    """`code-<hash>` of the grading code's git trees at HEAD, `-dirty-<hash>` when the worktree's grading code
    differs from them; without git, the installed distribution's version."""
    try:
        trees = [_git("rev-parse", f"HEAD:{path}").strip() for path in GRADING_PATHS]
        status = _git("status", "--porcelain", "--untracked-files=all", "--", *GRADING_PATHS)
    except (OSError, subprocess.CalledProcessError):
        try:
            return f"viva-{metadata.version('viva')}"
        except metadata.PackageNotFoundError:
            return "viva-unknown"
    key = "code-" + hashlib.sha256(" ".join(trees).encode()).hexdigest()[:10]
    if not status.strip():
        return key
    digest = hashlib.sha256(_git("diff", "HEAD", "--", *GRADING_PATHS).encode())
    for line in sorted(status.splitlines()):
        if line.startswith("??"):
            path = ROOT / line[3:].strip().strip('"')
            digest.update(line.encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return f"{key}-dirty-{digest.hexdigest()[:8]}"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
