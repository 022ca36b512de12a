"""The start tiers are one table, in code and in docs/DYNAMIC.md; with a registry, the sandbox's Python follows
the one the project's own image names."""

from __future__ import annotations

import re
from pathlib import Path

from grader.dynamic.model import AppInterface, DynamicRun, GatewaySettings, SandboxInfo, ServiceResult
from grader.dynamic.options import DynamicOptions
from grader.dynamic.run import matching_python
from grader.dynamic.scores import score_dynamic_leaves
from grader.model import Evidence
from grader.profile.model import RepoProfile, StartCandidate
from grader.profile.starts.detect import TIERS, detect_starts
from rubrics.catalogue import LatencyParams, ServiceStartsParams
from sandboxes.settings import SandboxSettings

DYNAMIC_MD = Path(__file__).parents[2] / "docs" / "DYNAMIC.md"


def test_docs_show_the_tiers_the_code_orders_by() -> None:
    text = DYNAMIC_MD.read_text()
    section = text[text.index("## Starting the project") : text.index("## Whose failure is it")]
    rows = dict(re.findall(r"^\| (declared|packaged|documented|inferred) \| (.+) \|$", section, re.M))
    assert list(rows) == list(TIERS), "docs/DYNAMIC.md's tier table is out of order or incomplete"
    assert rows == TIERS, "docs/DYNAMIC.md describes a tier differently from grader/profile/starts/detect.py"


def _profile(version: str | None) -> RepoProfile:
    start = StartCandidate(
        tier="packaged",
        source="Dockerfile",
        command="uvicorn main:app",
        evidence=Evidence("Dockerfile", 9, "CMD uvicorn main:app"),
        python_version=version,
    )
    return RepoProfile(starts=[start])


def test_with_a_registry_the_base_image_is_the_python_the_dockerfile_names() -> None:
    pulled = DynamicOptions(sandbox=SandboxSettings(image_source="pull", pull_image="python:3.12-slim"))
    assert matching_python(pulled, _profile("3.11")).sandbox.image == "python:3.11-slim"
    assert matching_python(pulled, _profile(None)).sandbox.image == "python:3.12-slim"
    assert matching_python(pulled, _profile("3.11; rm -rf /")).sandbox.image == "python:3.12-slim"
    offline = DynamicOptions(sandbox=SandboxSettings(image_source="offline"))
    assert matching_python(offline, _profile("3.11")).sandbox.image == "viva-base:offline"


def test_a_devcontainer_and_keep_alive_commands_are_not_the_apps_start(tmp_path: Path) -> None:
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "docker-compose.yaml").write_text(
        "services:\n  app:\n    build: ..\n    command: sleep infinity\n    ports: ['8000:8000']\n"
    )
    (tmp_path / "docker-compose.yml").write_text("services:\n  shell:\n    build: .\n    command: tail -f /dev/null\n")
    (tmp_path / "Dockerfile").write_text(
        'FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nCMD ["python", "-m", "quart", "run"]\n'
    )
    starts, _ = detect_starts(tmp_path)
    assert [start.command for start in starts] == ["python -m quart run"]


def test_the_dockerfile_and_compose_file_the_readme_names_come_first(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "# qa\n\n```bash\ndocker build -t qa -f deploy/api.Dockerfile .\ndocker compose -f compose.prod.yaml up\n```\n"
    )
    (tmp_path / "deploy").mkdir()
    (tmp_path / "Dockerfile").write_text('FROM python:3.12-slim\nCOPY . .\nCMD ["python", "dev_server.py"]\n')
    (tmp_path / "deploy" / "api.Dockerfile").write_text(
        'FROM python:3.12-slim\nCOPY . .\nCMD ["gunicorn", "api:app"]\n'
    )
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: .\n    command: python dev.py\n")
    (tmp_path / "compose.prod.yaml").write_text(
        "services:\n  web:\n    build: .\n    command: gunicorn -b 0.0.0.0:80 api:app\n"
    )
    starts, _ = detect_starts(tmp_path)
    assert [start.command for start in starts[:2]] == ["gunicorn -b 0.0.0.0:80 api:app", "python dev.py"]
    dockerfiles = [start.command for start in starts if start.source.startswith("Dockerfile")]
    assert dockerfiles == ["gunicorn api:app", "python dev_server.py"]


def test_a_dockerfile_in_a_subdirectory_built_from_the_root_maps_its_copies_from_the_root(tmp_path: Path) -> None:
    # backend/Dockerfile, built as `docker build -f backend/Dockerfile .`: COPY ./backend is relative to the root.
    (tmp_path / "backend" / "server").mkdir(parents=True)
    (tmp_path / "backend" / "server" / "main.py").write_text("app = None\n")
    (tmp_path / "backend" / "Dockerfile").write_text(
        "FROM python:3.11-slim\nWORKDIR /backend\nCOPY ./backend .\n"
        'CMD ["uvicorn", "server.main:app", "--host", "0.0.0.0", "--port", "8080"]\n'
    )
    starts, _ = detect_starts(tmp_path)
    docker = next(start for start in starts if start.source.startswith("Dockerfile"))
    assert (docker.workdir, docker.command) == ("backend", "uvicorn server.main:app --host 0.0.0.0 --port 8080")


def test_a_streamlit_script_is_started_with_streamlit_run_and_its_http_probes_are_not_run(tmp_path: Path) -> None:
    (tmp_path / "streamlit_app.py").write_text("import streamlit as st\n\nst.title('Llama 2 chat')\n")
    (tmp_path / "requirements.txt").write_text("streamlit\nreplicate\n")
    starts, _ = detect_starts(tmp_path)
    assert [(start.tier, start.source, start.command) for start in starts] == [
        ("inferred", "Streamlit script", "streamlit run streamlit_app.py --server.port 8501 --server.headless true")
    ]
    run = DynamicRun(
        sandbox=SandboxInfo(base_image="b"),
        gateway=GatewaySettings("m", 0.0, 1.0, 0.0, 1.0),
        interface=AppInterface(start_command=starts[0].command),
        service=ServiceResult(started=True, ready_seconds=2.0),
    )
    scores = score_dynamic_leaves(
        [("latency", "latency_p95", LatencyParams()), ("starts", "service_starts", ServiceStartsParams())], run
    )
    assert scores["latency"].status == "not_run"
    assert "streamlit UI" in scores["latency"].explanation
    assert scores["starts"].value == 1.0, scores["starts"].explanation  # it started: Viva cannot ask a UI questions


def test_a_readme_script_that_lives_in_one_subdirectory_runs_from_there(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# RAG\n\n```\npython indexing.py\npython chat.py\n```\n")
    (tmp_path / "rag").mkdir()
    (tmp_path / "rag" / "chat.py").write_text("import uvicorn\nif __name__ == '__main__':\n    uvicorn.run('x:app')\n")
    (tmp_path / "rag" / "indexing.py").write_text("print('indexed')\n")
    starts, _ = detect_starts(tmp_path)
    readme = next(start for start in starts if start.source == "README")
    assert (readme.command, readme.workdir, readme.setup) == ("python chat.py", "rag", ["python indexing.py"])
