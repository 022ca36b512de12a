"""A project with no dependency file still says what it installs — in its Dockerfile's RUN pip install, or the
pip install lines of its README — and Viva reads that as data (never runs it)."""

from __future__ import annotations

from pathlib import Path

from grader.dynamic.starting import StartFacts, blame_failed_start, normalised
from grader.model import Evidence
from grader.profile.model import StartCandidate
from sandboxes.dependency_files import collect_requirements, declared_anywhere, installs_named_elsewhere


def _start(*skipped: str) -> StartCandidate:
    return StartCandidate(
        tier="packaged",
        source="Dockerfile",
        command="gunicorn -b 0.0.0.0:5000 app:app",
        evidence=Evidence("Dockerfile", 8, 'CMD ["gunicorn", "-b", "0.0.0.0:5000", "app:app"]'),
        skipped=list(skipped),
    )


def test_a_dockerfiles_run_pip_install_names_the_dependencies(tmp_path: Path) -> None:
    start = _start("Dockerfile:4: RUN pip3 install --no-cache-dir gunicorn flask==3.1.0 'openai>=1.0' && rm -rf /x")
    collected = installs_named_elsewhere(collect_requirements(tmp_path), tmp_path, start.skipped, start.evidence.path)
    assert collected.parsed.requirements == ["gunicorn", "flask==3.1.0", "openai>=1.0"]
    assert "RUN pip install" in collected.notes[-1]


def test_a_readmes_pip_install_lines_name_them_when_nothing_else_does(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "# Workshop\n\n```bash\npip install tqdm jupyter openai\npip install -r requirements.txt\n"
        "pip install -e .\n```\n\nIn the notebook: `!pip install -U minsearch`\n"
    )
    collected = installs_named_elsewhere(collect_requirements(tmp_path), tmp_path, [])
    assert collected.parsed.requirements == ["tqdm", "jupyter", "openai", "minsearch"]
    assert "README.md" in collected.notes[-1]


def test_nothing_named_anywhere_leaves_the_requirements_empty(tmp_path: Path) -> None:
    start = _start("Dockerfile:3: RUN apt-get update")
    collected = installs_named_elsewhere(collect_requirements(tmp_path), tmp_path, start.skipped)
    assert collected.parsed.requirements == []


def test_a_command_missing_because_the_install_failed_is_vivas() -> None:
    facts = StartFacts(
        candidate=_start(),
        install_ok=False,
        installed=frozenset(),
        refused=frozenset(),
        repo_modules=frozenset({"app"}),
        exited=True,
    )
    verdict = blame_failed_start(facts, "sh: 1: streamlit: not found\n")
    assert verdict.blame == "viva" and "did not install" in verdict.reason


def test_a_module_only_the_dockerfile_installs_is_not_the_candidates_missing_dependency(tmp_path: Path) -> None:
    # No requirements file: the image installs everything; Viva's own guess `python app.py` runs without it.
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11.2\nRUN pip3 install --upgrade pip wheel python-dotenv gunicorn flask openai\n"
        'COPY ./app/* /app/\nWORKDIR /app\nCMD ["gunicorn", "--bind", "0.0.0.0:5000", "wsgi:app"]\n'
    )
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    assert "flask" in normalised(declared_anywhere(tmp_path))
    guess = StartCandidate(
        tier="inferred", source="__main__ block", command="python app.py", evidence=Evidence("app/app.py", 51, "")
    )
    log = "Traceback (most recent call last):\n  File \"/work/app/app/app.py\", line 1, in <module>\n    from flask import Flask\nModuleNotFoundError: No module named 'flask'\n"
    facts = StartFacts(
        candidate=guess,
        install_ok=True,
        installed=frozenset(),
        refused=frozenset(),
        repo_modules=frozenset({"app", "wsgi"}),
        exited=True,
        declared_anywhere=normalised(declared_anywhere(tmp_path)),
    )
    assert blame_failed_start(facts, log).blame == "viva"


def test_upgrading_the_installer_names_no_dependency(tmp_path: Path) -> None:
    start = _start("Dockerfile:14: RUN pip install --upgrade pip && pip install --no-cache-dir gradio")
    collected = installs_named_elsewhere(collect_requirements(tmp_path), tmp_path, start.skipped)
    assert collected.parsed.requirements == ["gradio"]
