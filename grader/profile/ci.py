"""CI workflows (GitHub Actions, GitLab CI), parsed as YAML: triggers and the commands their steps run.

Which steps run evals is decided in build.py, which knows the repository's files: a step that names
an eval script or data the repository does not contain is not an eval suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from grader.model import Evidence

EVAL_WORDS = re.compile(r"\beval|golden|ragas|deepeval|promptfoo|inspect eval|trulens|benchmark", re.I)
_PATH_TOKEN = re.compile(r"[\w./-]+\.(?:py|jsonl|json|csv|ya?ml)\b|[\w.-]+/[\w./-]*")


@dataclass
class RawWorkflow:
    path: str
    triggers: list[str] = field(default_factory=list)
    commands: list[Evidence] = field(default_factory=list)
    problem: str | None = None


def is_workflow(path: str) -> bool:
    lower = path.lower()
    return (lower.startswith(".github/workflows/") and lower.endswith((".yml", ".yaml"))) or lower == ".gitlab-ci.yml"


def parse_workflow(path: str, text: str) -> RawWorkflow:
    workflow = RawWorkflow(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        workflow.problem = f"malformed YAML: {str(error).splitlines()[0][:160]}"
        return workflow
    if not isinstance(data, dict):
        workflow.problem = "not a mapping"
        return workflow
    lines = text.splitlines()
    if path.lower().endswith(".gitlab-ci.yml"):
        workflow.triggers = ["push", "merge_request"]
        scripts = [job.get("script") for job in data.values() if isinstance(job, dict)]
    else:
        # YAML 1.1 reads the key `on` as the boolean True.
        workflow.triggers = _triggers(data.get("on", data.get(True)))
        jobs = data.get("jobs")
        jobs = jobs if isinstance(jobs, dict) else {}
        steps = [
            step
            for job in jobs.values()
            if isinstance(job, dict)
            for step in job.get("steps", []) or []
            if isinstance(step, dict)
        ]
        scripts = [step.get("run") for step in steps]
        # An action step runs a tool too (promptfoo's action, a DeepEval action): `uses:` counts like `run:`.
        scripts += [f"uses: {step['uses']}" for step in steps if isinstance(step.get("uses"), str)]
    for script in scripts:
        for command in _commands(script):
            workflow.commands.append(Evidence(path, _line_of(lines, command), command[:200]))
    return workflow


def eval_paths(command: str) -> list[str]:
    """Path-like tokens of an eval command (scripts, data files, directories), for checking they exist."""
    return [
        token.strip("./") if token.startswith("./") else token
        for token in _PATH_TOKEN.findall(command)
        if not token.startswith(("http", "-"))
    ]


def _triggers(on: Any) -> list[str]:
    if isinstance(on, str):
        return [on]
    if isinstance(on, list):
        return [str(item) for item in on]
    if isinstance(on, dict):
        return [str(key) for key in on]
    return []


def _commands(script: Any) -> list[str]:
    if isinstance(script, str):
        return [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    if isinstance(script, list):
        return [str(item).strip() for item in script if str(item).strip()]
    return []


def _line_of(lines: list[str], command: str) -> int | None:
    for number, line in enumerate(lines, start=1):
        if command in line:
            return number
    return None
