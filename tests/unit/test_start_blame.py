"""Whose failure a failed start is (grader/dynamic/starting.py), from the logs real apps leave when they do not
start: the candidate's own crash, import error or undeclared dependency is theirs (0); what Viva could not follow —
compose services, another toolchain, a system library a skipped RUN step installs, models downloaded at start, a
requirement the layer could not install, its own wrong guess — is Viva's (not_run), never the candidate's."""

from __future__ import annotations

import pytest

from grader.dynamic.starting import (
    StartFacts,
    announced_port,
    blame_failed_start,
    first_word,
    normalised,
    not_followed,
    placeholders,
    rewrite_bind,
    unwrap,
)
from grader.model import Evidence
from grader.profile.model import StartCandidate, StartTier


def candidate(command: str, tier: StartTier = "packaged", **fields: object) -> StartCandidate:
    return StartCandidate(
        tier=tier, source="Dockerfile", command=command, evidence=Evidence("Dockerfile", 9, command), **fields
    )  # type: ignore[arg-type]


def facts(start: StartCandidate, **changes: object) -> StartFacts:
    values: dict[str, object] = {
        "candidate": start,
        "install_ok": True,
        "installed": normalised(["fastapi==0.115.6", "uvicorn==0.32.1", "httpx==0.28.1"]),
        "refused": frozenset(),
        "repo_modules": frozenset({"app", "main", "retrieval", "api"}),
        "exited": True,
    }
    values.update(changes)
    return StartFacts(**values)  # type: ignore[arg-type]


OWN_IMPORT_ERROR = """INFO:     Will watch for changes in these directories: ['/work/app']
Traceback (most recent call last):
  File "/opt/viva/venv/lib/python3.11/site-packages/uvicorn/importer.py", line 19, in import_from_string
    module = importlib.import_module(module_str)
  File "/work/app/api.py", line 4, in <module>
    from retriever import search
ModuleNotFoundError: No module named 'retriever'
"""
UNDECLARED = """Traceback (most recent call last):
  File "/work/app/service.py", line 3, in <module>
    import tiktoken
ModuleNotFoundError: No module named 'tiktoken'
"""
OWN_CRASH = """Traceback (most recent call last):
  File "/work/app/app.py", line 6, in <module>
    settings = json.load(open("config.json"))
FileNotFoundError: [Errno 2] No such file or directory: 'config.json'
"""
HF_DOWNLOAD = """Traceback (most recent call last):
  File "/work/app/main.py", line 5, in <module>
    config_path = hf_hub_download("sentence-transformers/all-MiniLM-L6-v2", "config.json")
  File "/opt/viva/venv/lib/python3.11/site-packages/huggingface_hub/file_download.py", line 1376, in _hf_hub_download
    raise LocalEntryNotFoundError(
huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file on the Hub and we
cannot find the requested files in the local cache. Please check your connection and try again or make sure your
Internet connection is on.
"""
SHARED_LIBRARY = """Traceback (most recent call last):
  File "/work/app/main.py", line 2, in <module>
    import cv2
  File "/opt/viva/venv/lib/python3.11/site-packages/cv2/__init__.py", line 181, in bootstrap
ImportError: libGL.so.1: cannot open shared object file: No such file or directory
"""
GUESS_WRONG = """ERROR:    Error loading ASGI app. Could not import module "app.main".
"""
DATABASE = """  File "/opt/viva/venv/lib/python3.11/site-packages/psycopg/connection.py", line 119, in connect
    raise last_ex.with_traceback(None)
psycopg.OperationalError: connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused
"""


def test_an_import_error_in_the_projects_own_code_is_the_candidates() -> None:
    verdict = blame_failed_start(facts(candidate("uvicorn api:app")), OWN_IMPORT_ERROR)
    assert verdict.blame == "candidate"
    assert "No module named 'retriever'" in verdict.reason


def test_a_dependency_missing_from_its_own_requirements_is_the_candidates() -> None:
    verdict = blame_failed_start(facts(candidate("uvicorn service:app", "documented")), UNDECLARED)
    assert verdict.blame == "candidate"
    assert verdict.reason == "a dependency missing from its own requirements: `tiktoken` is imported but not declared"


@pytest.mark.parametrize("tier", ["declared", "packaged", "documented", "inferred"])
def test_a_crash_in_its_own_code_is_the_candidates_whatever_the_tier(tier: StartTier) -> None:
    verdict = blame_failed_start(facts(candidate("python app.py", tier)), OWN_CRASH)
    assert verdict.blame == "candidate"
    assert "FileNotFoundError" in verdict.reason


def test_downloading_a_model_at_start_is_vivas_limitation() -> None:
    verdict = blame_failed_start(facts(candidate("uvicorn main:app", "documented")), HF_DOWNLOAD)
    assert verdict.blame == "viva"
    assert "downloads models" in verdict.reason


def test_a_system_library_a_skipped_run_step_installs_is_vivas() -> None:
    start = candidate("python main.py", skipped=["Dockerfile:4: RUN apt-get install -y libgl1"])
    verdict = blame_failed_start(facts(start), SHARED_LIBRARY)
    assert verdict.blame == "viva"
    assert "libGL.so.1" in verdict.reason and "RUN apt-get install -y libgl1" in verdict.reason


def test_a_requirement_the_layer_could_not_install_is_vivas() -> None:
    log = UNDECLARED.replace("tiktoken", "torch")
    verdict = blame_failed_start(facts(candidate("uvicorn service:app"), refused=normalised(["torch"])), log)
    assert verdict.blame == "viva" and "could not be installed" in verdict.reason


def test_a_service_the_app_needs_at_start_is_vivas_until_companions_run() -> None:
    verdict = blame_failed_start(facts(candidate("python main.py")), DATABASE)
    assert verdict.blame == "viva" and "service" in verdict.reason


def test_vivas_own_wrong_guess_is_vivas_but_the_same_error_from_a_documented_command_is_the_candidates() -> None:
    guessed = blame_failed_start(facts(candidate("uvicorn app.main:app", "inferred")), GUESS_WRONG)
    assert guessed.blame == "viva" and "guess" in guessed.reason
    documented = blame_failed_start(facts(candidate("uvicorn app.main:app", "documented")), GUESS_WRONG)
    assert documented.blame == "candidate"


def test_an_app_that_runs_but_never_answers_is_the_candidates_when_it_said_how_to_start() -> None:
    verdict = blame_failed_start(facts(candidate("python bot.py"), exited=False), "loading index...\n")
    assert verdict.blame == "candidate" and "never answered" in verdict.reason


def test_starts_viva_cannot_follow_are_named_before_any_attempt() -> None:
    # Companion services are no reason by themselves: Viva runs them beside the app (grader/dynamic/run.py).
    assert not_followed(candidate("uvicorn main:app", services=["qdrant", "postgres"])) is None
    assert "`npm`" in (not_followed(candidate("npm run start")) or "")
    assert "`docker`" in (not_followed(candidate("cd deploy && docker compose up")) or "")
    assert not_followed(candidate("PORT=8000 uvicorn main:app")) is None


def test_command_helpers() -> None:
    assert first_word("APP_ENV=dev exec ./bin/start.sh") == "start.sh"
    assert unwrap("poetry run uvicorn main:app")[0] == "uvicorn main:app"
    assert unwrap("uvicorn main:app") == ("uvicorn main:app", [])
    assert (
        rewrite_bind("uvicorn main:app --host api.internal --port 80")[0] == "uvicorn main:app --host 0.0.0.0 --port 80"
    )
    assert rewrite_bind("gunicorn -b 0.0.0.0:8000 app:app") == ("gunicorn -b 0.0.0.0:8000 app:app", [])
    assert rewrite_bind('uvicorn main:app --host "$HOST"')[1] == []
    assert announced_port("INFO:     Uvicorn running on http://0.0.0.0:9000 (Press CTRL+C to quit)") == 9000
    assert announced_port(" * Running on http://127.0.0.1:5000\n") == 5000
    assert announced_port("[INFO] Listening at: http://0.0.0.0:8080 (7)") == 8080
    assert placeholders([("APP_TITLE", "Recipe helper"), ("DB_PATH", None), ("PORT", None)], {"PORT"}) == {
        "APP_TITLE": "Recipe helper",
        "DB_PATH": "viva-placeholder",
    }


def test_a_command_or_module_a_skipped_run_step_installs_is_vivas() -> None:
    start = candidate(
        "gunicorn --bind 0.0.0.0:5000 app:app",
        skipped=["Dockerfile:5: RUN pip3 install --no-cache-dir gunicorn flask openai"],
    )
    verdict = blame_failed_start(facts(start), "sh: 1: gunicorn: not found\n")
    assert verdict.blame == "viva" and "RUN pip3 install" in verdict.reason
    flask_missing = "Traceback (most recent call last):\n  File \"/work/app/app.py\", line 1, in <module>\n    from flask import Flask\nModuleNotFoundError: No module named 'flask'\n"
    assert blame_failed_start(facts(start), flask_missing).blame == "viva"
    without_run = candidate("gunicorn --bind 0.0.0.0:5000 app:app")
    assert blame_failed_start(facts(without_run), "sh: 1: gunicorn: not found\n").blame == "candidate"


def test_a_transitive_distribution_the_layer_lacks_is_vivas() -> None:
    log = "pkg_resources.DistributionNotFound: The 'zope.interface' distribution was not found and is required by x\n"
    verdict = blame_failed_start(facts(candidate("chainlit run app.py", "packaged")), log)
    assert verdict.blame == "viva" and "zope.interface" in verdict.reason


def test_the_projects_own_module_that_does_not_import_from_where_it_ran_is_vivas_unless_declared() -> None:
    # README: `python -m vector_search.app`, after `pip install -e .`, which Viva does not do (src layout).
    log = "/usr/bin/python3: Error while finding module specification for 'vector_search.app' (ModuleNotFoundError: No module named 'vector_search')\n"
    repo = frozenset({"vector_search", "app"})
    documented = blame_failed_start(
        facts(candidate("python -m vector_search.app", "documented"), repo_modules=repo), log
    )
    assert documented.blame == "viva" and "pip install -e ." in documented.reason
    declared = blame_failed_start(facts(candidate("python -m vector_search.app", "declared"), repo_modules=repo), log)
    assert declared.blame == "candidate"


def test_an_app_that_exits_after_its_dependencies_failed_to_install_is_vivas() -> None:
    verdict = blame_failed_start(facts(candidate("streamlit run app.py"), install_ok=False), "")
    assert verdict.blame == "viva" and "did not install" in verdict.reason
    crash = blame_failed_start(facts(candidate("python app.py"), install_ok=False), OWN_CRASH)
    assert crash.blame == "candidate"


def test_a_module_another_dependency_file_declares_is_vivas() -> None:
    # poetry.lock (a template's leftover) was installed; requirements.txt declares sqlalchemy.
    log = UNDECLARED.replace("tiktoken", "sqlalchemy")
    verdict = blame_failed_start(
        facts(candidate("python main.py"), declared_anywhere=normalised(["sqlalchemy>=1.4,<2.0"])), log
    )
    assert verdict.blame == "viva" and "another dependency file" in verdict.reason


def test_files_the_image_builds_in_a_skipped_step_are_vivas_but_a_missing_config_is_the_candidates() -> None:
    log = 'Traceback (most recent call last):\n  File "/work/app/src/backend/app.py", line 40, in create_app\n    app.mount("/assets", StaticFiles(directory=static / "assets"))\nRuntimeError: Directory \'/work/app/src/backend/static/assets\' does not exist\n'
    start = candidate("bash -c '. entrypoint.sh'", skipped=["Dockerfile:9: RUN npm run build"])
    assert blame_failed_start(facts(start), log).blame == "viva"
    config = candidate("python app.py", skipped=["Dockerfile:4: RUN pip install -r requirements.txt"])
    assert blame_failed_start(facts(config), OWN_CRASH).blame == "candidate"


def test_a_submodule_an_unpinned_package_no_longer_has_is_the_candidates() -> None:
    log = "  File \"/work/app/app.py\", line 2, in <module>\n    from langchain.vectorstores import FAISS\nModuleNotFoundError: No module named 'langchain.vectorstores'\n"
    unpinned = facts(
        candidate("python app.py", "documented"),
        installed=normalised(["langchain", "faiss-cpu"]),
        unpinned=normalised(["langchain"]),
    )
    verdict = blame_failed_start(unpinned, log)
    assert verdict.blame == "candidate" and "unpinned" in verdict.reason
    pinned = facts(candidate("python app.py", "documented"), installed=normalised(["langchain==0.0.100"]))
    assert blame_failed_start(pinned, log).blame == "viva"


def test_a_path_of_the_projects_own_image_layout_is_vivas() -> None:
    # compose mounts ./docs at /app/docs; the code reads the absolute path
    log = 'Traceback (most recent call last):\n  File "/work/app/backend/ingest.py", line 9, in <module>\n    files = os.listdir("/app/docs")\nFileNotFoundError: [Errno 2] No such file or directory: \'/app/docs\'\n'
    verdict = blame_failed_start(facts(candidate('sh -c "python ingest.py && uvicorn main:app"')), log)
    assert verdict.blame == "viva" and "/app/docs" in verdict.reason


def test_libraries_that_do_not_work_together_are_vivas_but_the_projects_own_import_error_is_not() -> None:
    log = 'Traceback (most recent call last):\n  File "/work/app/app.py", line 3, in <module>\n    import streamlit as st\n  File "/var/tmp/viva-venv/lib/python3.11/site-packages/pyarrow/__init__.py", line 65, in <module>\nImportError: pyarrow requires NumPy 2.0 or newer, found 1.26.4\n'
    assert blame_failed_start(facts(candidate("streamlit run app.py", "documented")), log).blame == "viva"
    own = "Traceback (most recent call last):\n  File \"/work/app/app.py\", line 3, in <module>\n    from helpers import load\nImportError: cannot import name 'load' from 'helpers' (/work/app/helpers.py)\n"
    assert blame_failed_start(facts(candidate("streamlit run app.py", "documented")), own).blame == "candidate"


def test_syntax_of_a_newer_python_than_the_sandboxs_is_vivas() -> None:
    log = '  File "/work/app/app/app.py", line 41\n    f"{"\\n".join(lines)}"\nSyntaxError: f-string expression part cannot include a backslash\n'
    verdict = blame_failed_start(facts(candidate("uvicorn app.app:app", "documented")), log)
    assert verdict.blame == "viva" and "newer Python" in verdict.reason


def test_a_vector_store_client_that_cannot_connect_at_start_is_vivas() -> None:
    log = "qdrant_client.http.exceptions.ResponseHandlingException: [Errno 99] Cannot assign requested address\n"
    assert blame_failed_start(facts(candidate("uvicorn main:app")), log).blame == "viva"


def test_a_relative_import_beyond_the_package_from_vivas_guess_is_vivas() -> None:
    log = 'Traceback (most recent call last):\n  File "/work/app/backend/main.py", line 3, in <module>\n    from ..rag import chat\nImportError: attempted relative import beyond top-level package\n'
    assert blame_failed_start(facts(candidate("uvicorn backend.main:app", "inferred")), log).blame == "viva"


def test_a_terminal_chat_loop_the_readme_documents_is_not_a_failed_service() -> None:
    # README: "Run `python app_cmd.py` to chat in the terminal, or `python app_web.py` for the web UI".
    log = (
        "Loading documents from ./docs ...\n"
        "Traceback (most recent call last):\n"
        '  File "/work/app/app_cmd.py", line 42, in <module>\n'
        '    query = input("Ask a question (or exit): ")\n'
        "EOFError: EOF when reading a line\n"
    )
    verdict = blame_failed_start(facts(candidate("python app_cmd.py")), log)
    assert verdict.blame == "viva" and "interactive terminal program" in verdict.reason


def test_an_app_built_on_a_provider_the_gateway_does_not_serve_is_not_run_with_the_provider_named() -> None:
    log = (
        "[2025-03-02 10:00:01 +0000] [7] [INFO] Booting worker with pid: 7\n"
        "Traceback (most recent call last):\n"
        '  File "/work/app/app.py", line 14, in <module>\n'
        '    raise ValueError("GEMINI_API_KEY not found in .env file. Please set it.")\n'
        "ValueError: GEMINI_API_KEY not found in .env file. Please set it.\n"
    )
    verdict = blame_failed_start(facts(candidate("python -m gunicorn app:app")), log)
    assert verdict.blame == "viva" and "Gemini" in verdict.reason and "GEMINI_API_KEY" in verdict.reason
    assert blame_failed_start(facts(candidate("python app.py")), OWN_CRASH).blame == "candidate"


def test_a_program_the_project_declares_but_the_install_did_not_provide_is_vivas() -> None:
    # chainlit is in requirements.txt; the layer came out without it.
    start = candidate("chainlit run app.py --port 7860 -h")
    log = "sh: 1: chainlit: not found\n"
    verdict = blame_failed_start(facts(start, declared_anywhere=normalised(["chainlit", "openai"])), log)
    assert verdict.blame == "viva" and "did not provide it" in verdict.reason
    undeclared = blame_failed_start(facts(start, declared_anywhere=normalised(["openai"])), log)
    assert undeclared.blame == "candidate"
    # The layer's requirements name chainlit, but pip resolved it to a 0.1.0 without the command.
    backtracked = blame_failed_start(facts(start, installed=normalised(["chainlit", "openai"])), log)
    assert backtracked.blame == "viva" and "did not provide it" in backtracked.reason
    # The layer had no wheel for chainlit's pinned aiofiles, so it came out without chainlit.
    partial = blame_failed_start(facts(start, refused=normalised(["chainlit"])), log)
    assert partial.blame == "viva" and "incomplete" in partial.reason


def test_an_undeclared_import_after_a_partial_install_is_not_blamed_on_the_candidate() -> None:
    # anthropic[vertex] brings httpx; the layer installed streamlit but had no wheel for one of anthropic's extras.
    log = "Traceback (most recent call last):\n  File \"/work/app/streamlit.py\", line 18, in <module>\n    import httpx\nModuleNotFoundError: No module named 'httpx'\n"
    start = candidate("streamlit run streamlit.py", tier="inferred")
    partial = blame_failed_start(facts(start, refused=normalised(["anthropic"])), log)
    assert partial.blame == "viva" and "incomplete" in partial.reason
    complete = blame_failed_start(facts(start), log)
    assert complete.blame == "candidate" and "not declared" in complete.reason
