"""Write what Viva shows the outside world into one directory, so two versions can be compared with `diff -r`:
`--help` of every command, the OpenAPI document, the JSON Schemas, and the JSON reports of the fixture gradings with
every timing, date and machine-dependent figure masked. A refactoring that says "behaviour does not change" shows
it with an empty diff:

    .venv/bin/python scripts/behaviour-snapshot.py /tmp/before      # on the old commit
    .venv/bin/python scripts/behaviour-snapshot.py /tmp/after       # on the new one
    diff -r /tmp/before /tmp/after

`--static-only` skips the sandboxed gradings (no Docker needed; seconds instead of minutes).

A sandboxed grading measures a live app, so its report differs between two runs of the same code where it records
a measurement (latency figures and histogram counts, random canaries, ports, whether a layer was cached, which
answer a concurrent request got). Beside each report, `decisions/` keeps what Viva decided from those measurements
— every criterion's status, score and level, the overall score and coverage, how the app was started and asked,
which probes leaked, each fault's outcome, the ceiling's, the evals' counts and each small probe's statuses — and
that directory must diff empty. `--decisions DIR` rewrites DIR/decisions from DIR/reports (for older snapshots).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VIVA = [sys.executable, "-m", "server.cli"]
PROJECTS = {
    "example": ROOT / "examples" / "rag-assistant",
    **{path.name: path for path in sorted((ROOT / "tests" / "fixtures" / "apps").iterdir()) if path.is_dir()},
}
# Keys whose values depend on the clock or the machine, not on what Viva decided.
MASKED_KEYS = re.compile(
    r"(_s|_ms|_seconds|seconds|duration|elapsed|started_at|finished_at|created_at|generated_at|timestamp|"
    r"latency|p50|p95|p99|histogram|samples|wall|took|at)$"
)
MASKED_TEXT = [
    (re.compile(r"\d+(\.\d+)?\s?(ms|s)\b"), "<time>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "<tmp>"),  # noqa: S108 - masking paths in reports, not making files
    (re.compile(r"viva-[a-z]+-[a-z0-9_]{6,}"), "<scratch>"),
    (re.compile(r"sha256:[0-9a-f]{12,64}"), "<digest>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<id>"),
]


def _help_texts(out: Path) -> None:
    commands = [[]]
    top = _run([*VIVA, "--help"])
    groups = re.search(r"\{([a-z,-]+)\}", top)
    for command in groups.group(1).split(",") if groups else []:
        commands.append([command])
        sub = re.search(r"\{([a-z,-]+)\}", _run([*VIVA, command, "--help"]))
        commands += [[command, name] for name in sub.group(1).split(",")] if sub else []
    for command in commands:
        (out / "help" / ("viva" + "".join(f"-{part}" for part in command) + ".txt")).write_text(
            _run([*VIVA, *command, "--help"])
        )


def _schemas(out: Path) -> None:
    for kind in ("rubric", "report", "manifest"):
        (out / "schemas" / f"{kind}.json").write_text(_run([*VIVA, kind, "schema"]))
    openapi = _run(
        [
            sys.executable,
            "-c",
            "import json, tempfile; from server.app import create_app; from server.settings import load_settings; "
            "d = tempfile.mkdtemp(); "
            "app = create_app(load_settings({'VIVA_DATA_DIR': d})); "
            "print(json.dumps(app.openapi_schema.to_schema(), indent=1, sort_keys=True))",
        ]
    )
    (out / "schemas" / "openapi.json").write_text(openapi)


def _gradings(out: Path, static_only: bool) -> None:
    for name, path in PROJECTS.items():
        for mode in ("static", *(() if static_only else ("full",))):
            with tempfile.TemporaryDirectory(prefix="viva-snapshot-") as scratch:
                flags = ["--static-only"] if mode == "static" else []
                _run([*VIVA, "grade", str(path), *flags, "--format", "json", "--out", scratch], check=False)
                report = Path(scratch) / "report.json"
                text = "no report\n"
                if report.is_file():
                    text = json.dumps(_mask(json.loads(report.read_text())), indent=1, sort_keys=True)
                (out / "reports" / f"{name}-{mode}.json").write_text(text)
    _write_decisions(out)


def _write_decisions(out: Path) -> None:
    (out / "decisions").mkdir(exist_ok=True)
    for report in sorted((out / "reports").glob("*.json")):
        text = report.read_text()
        decided = _decisions(json.loads(text)) if text.startswith("{") else text
        (out / "decisions" / report.name).write_text(json.dumps(decided, indent=1, sort_keys=True) + "\n")


def _decisions(report: dict[str, Any]) -> dict[str, Any]:
    """What Viva decided in one report, without the measurements it decided from."""

    def criteria(nodes: list[dict[str, Any]]) -> list[Any]:
        return [
            [
                node["path"],
                node["status"],
                _rounded(node.get("score")),
                node.get("level"),
                criteria(node.get("children", [])),
            ]
            for node in nodes
        ]

    decided: dict[str, Any] = {
        "score": _rounded(report.get("score")),
        "coverage": _rounded(report.get("coverage")),
        "criteria": criteria(report.get("criteria", [])),
    }
    dynamic = report.get("dynamic")
    if dynamic:
        interface = dynamic.get("interface", {})
        decided["dynamic"] = {
            "interface": {
                key: interface.get(key)
                for key in (
                    "start_command",
                    "query_path",
                    "query_method",
                    "answer_pointer",
                    "citations_pointer",
                    "cost_pointer",
                    "ingest_path",
                    "budget_env",
                    "evals_command",
                    "missing",
                )
            },
            "started": (dynamic.get("service") or {}).get("started"),
            "leaked": sorted(
                probe["id"] for probe in (dynamic.get("injection") or {}).get("probes", []) if probe.get("leaked")
            ),
            "faults": {fault["fault"]: fault["outcome"] for fault in dynamic.get("faults", [])},
            "ceiling": (dynamic.get("ceiling") or {}).get("outcome"),
            "evals": [[run.get("passed"), run.get("total")] for run in (dynamic.get("evals") or {}).get("runs", [])],
            "probes": {
                probe["check"]: [item.get("status") for item in probe.get("exchanges", [])]
                for probe in dynamic.get("probes", [])
            },
        }
    return decided


def _rounded(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _mask(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, key) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and MASKED_KEYS.search(key):
        return "<masked>"
    if isinstance(value, str):
        if MASKED_KEYS.search(key):
            return "<masked>"
        value = value.replace(str(ROOT), "<root>")  # two checkouts being compared live in different places
        for pattern, replacement in MASKED_TEXT:
            value = pattern.sub(replacement, value)
    return value


def _run(command: list[str], check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--static-only", action="store_true")
    parser.add_argument("--decisions", action="store_true", help="only rewrite OUT/decisions from OUT/reports")
    args = parser.parse_args()
    if args.decisions:
        _write_decisions(args.out)
        return
    for folder in ("help", "schemas", "reports"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    _help_texts(args.out)
    _schemas(args.out)
    _gradings(args.out, args.static_only)
    print(f"wrote {sum(1 for _ in args.out.rglob('*.*'))} files to {args.out}")


if __name__ == "__main__":
    main()
