"""Start commands a repository documents: Procfiles, Makefiles, READMEs and docs, CI workflows, as candidates write
them."""

from __future__ import annotations

import pytest

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.starts.documented import ci_starts, makefile_starts, markdown_starts, procfile_starts

# --- Procfile --------------------------------------------------------------------------------------------------------


def test_procfile_web_first_release_as_setup_port_left_to_sh() -> None:
    text = "worker: celery -A config worker -l info\nrelease: python manage.py migrate\nweb: gunicorn config.wsgi --bind 0.0.0.0:$PORT\n"
    [start] = procfile_starts("Procfile", text)
    assert start.tier == "packaged" and start.source == "Procfile"
    assert start.command == "gunicorn config.wsgi --bind 0.0.0.0:$PORT"
    assert (start.port, start.port_source) == (None, "")
    assert start.setup == ["python manage.py migrate"]
    assert start.evidence == Evidence("Procfile", 3, "web: gunicorn config.wsgi --bind 0.0.0.0:$PORT")


def test_procfile_in_a_subdirectory_with_cd_env_and_a_second_server() -> None:
    text = "api: cd server && LOG_LEVEL=debug uvicorn app.main:app --port 9000\nweb: python -m app\n"
    web, api = procfile_starts("deploy/Procfile", text)
    assert (web.command, web.workdir, web.port) == ("python -m app", "deploy", None)
    assert (api.command, api.workdir, api.env) == (
        "uvicorn app.main:app --port 9000",
        "deploy/server",
        {"LOG_LEVEL": "debug"},
    )
    assert (api.port, api.port_source) == (9000, "the command")


# --- Makefile --------------------------------------------------------------------------------------------------------

RAG_MAKEFILE = """\
PYTHON ?= .venv/bin/python
PORT := 8080
APP = app.main:app

.PHONY: run index install up

install:
\tpip install -r requirements.txt

index: install
\t@$(PYTHON) scripts/build_index.py --out data/index

run: index
\tcd backend && $(PYTHON) -m uvicorn $(APP) --port $(PORT)

up:
\tdocker compose up --build
"""


def test_makefile_run_with_index_prerequisite_variables_and_cd() -> None:
    [start] = makefile_starts("Makefile", RAG_MAKEFILE)
    assert start.source == "Makefile target run" and start.tier == "documented"
    assert start.command == "python -m uvicorn app.main:app --port 8080"
    assert start.workdir == "backend"
    assert (start.port, start.port_source) == (8080, "the command")
    assert start.setup == ["cd .. && python scripts/build_index.py --out data/index"]
    assert start.evidence == Evidence("Makefile", 14, "cd backend && $(PYTHON) -m uvicorn $(APP) --port $(PORT)")
    notes = " | ".join(start.notes)
    assert "`pip install -r requirements.txt`: Viva installs the dependencies itself" in notes
    assert "`.venv/bin/python` run as `python`" in notes
    assert "Makefile target up runs `docker compose up --build`" in notes


def test_makefile_targets_in_preference_order_and_make_followed_once() -> None:
    text = "dev:\n\tuvicorn app:app --reload\nstart:\n\t$(MAKE) api-server\napi-server:\n\tgunicorn -w 2 -k uvicorn.workers.UvicornWorker app:app\nserve:\n\t$(MAKE) dev\n"
    starts = makefile_starts("Makefile", text)
    assert [(s.source, s.command) for s in starts] == [
        ("Makefile target serve", "uvicorn app:app --reload"),
        ("Makefile target start", "gunicorn -w 2 -k uvicorn.workers.UvicornWorker app:app"),
    ]  # `dev` gives serve's command again: kept once


def test_makefile_sub_make_cycles_end() -> None:
    assert makefile_starts("Makefile", "run:\n\t$(MAKE) serve\nserve:\n\t$(MAKE) run\n") == []


def test_makefile_docker_only_gives_no_candidate() -> None:
    assert makefile_starts("Makefile", "up:\n\tdocker compose up -d\nrun:\n\tpodman run -p 8000:8000 rag\n") == []


def test_makefile_unknown_variables_go_to_sh_and_prefixes_are_stripped() -> None:
    text = "HOST ?= 0.0.0.0\nHOST ?= 127.0.0.1\nrun:\n\t-@OPENAI_BASE_URL=$${BASE:-http://x} uvicorn api:app --host $(HOST) --port ${PORT}\n"
    [start] = makefile_starts("Makefile", text)
    assert start.command == "uvicorn api:app --host 0.0.0.0 --port ${PORT}"
    assert start.env == {"OPENAI_BASE_URL": "${BASE:-http://x}"}
    assert (start.port, start.port_source) == (None, "")


def test_makefile_cd_on_its_own_line_does_not_carry_unless_oneshell() -> None:
    text = "run:\n\tcd backend\n\tuvicorn main:app\n"
    assert makefile_starts("Makefile", text)[0].workdir == ""
    assert makefile_starts("Makefile", ".ONESHELL:\n" + text)[0].workdir == "backend"


def test_makefile_in_subdirectory_with_setup_named_prerequisite_and_exported_variable() -> None:
    text = "export APP_ENV = dev\nserve: ingest migrate\n\tpython app.py\ningest:\n\t./scripts/ingest.sh docs/\nmigrate:\n\talembic upgrade head\n"
    [start] = makefile_starts("services/api/Makefile", text)
    assert (start.command, start.workdir, start.env) == ("python app.py", "services/api", {"APP_ENV": "dev"})
    assert start.setup == ["./scripts/ingest.sh docs/", "alembic upgrade head"]


def test_makefile_line_continuations_and_recipe_after_semicolon() -> None:
    text = "run: ; uvicorn rag.api:app \\\n\t--host 0.0.0.0 \\\n\t--port 8001\n"
    [start] = makefile_starts("Makefile", text)
    assert start.command == "uvicorn rag.api:app --host 0.0.0.0 --port 8001"
    assert start.evidence.line == 1 and start.port == 8001


# --- README and docs ---------------------------------------------------------------------------------------------

GETTING_STARTED = """\
# Support assistant

A RAG assistant over our handbook.

## Getting started

```bash
git clone https://github.com/jane/support-assistant.git
cd support-assistant
python -m venv .venv && source .venv/bin/activate
pip install -r requirements.txt
export QDRANT_URL=http://localhost:6333
export OPENAI_API_KEY=sk-...
python scripts/ingest.py --docs data/handbook
python eval/run_eval.py
cd backend && uvicorn app.main:app --reload --port 8001
```

Then open http://localhost:8001/docs, or run everything with `docker compose up`.
"""


def test_readme_getting_started_block() -> None:
    [start] = markdown_starts("README.md", GETTING_STARTED)
    assert start == StartCandidate(
        tier="documented",
        source="README",
        command="uvicorn app.main:app --reload --port 8001",
        evidence=Evidence("README.md", 16, "cd backend && uvicorn app.main:app --reload --port 8001"),
        workdir="backend",
        port=8001,
        port_source="the command",
        env={"QDRANT_URL": "http://localhost:6333"},
        setup=["cd .. && python scripts/ingest.py --docs data/handbook"],
        notes=[
            "OPENAI_API_KEY left to Viva's environment: the docs give a placeholder",
            "README.md:19 also gives `docker compose up`: a container start, followed through the Dockerfile or "
            "compose file instead",
        ],
    )


def test_nested_readme_speaks_from_its_directory_docs_from_the_root() -> None:
    block = "```sh\ncd app && flask --app rag run\n```\n"
    assert markdown_starts("backend/README.md", block)[0].workdir == "backend/app"
    docs = markdown_starts("docs/setup.md", block)[0]
    assert (docs.workdir, docs.source) == ("app", "docs")


def test_inline_code_and_wrappers_are_stripped_with_a_note() -> None:
    text = "Start it with `poetry run uvicorn rag.main:app` or `uv run --frozen fastapi dev src/rag/main.py`.\n"
    poetry, uv = markdown_starts("README.md", text)
    assert poetry.command == "uvicorn rag.main:app" and poetry.evidence.line == 1
    assert "`poetry run` dropped" in poetry.notes[0]
    assert uv.command == "fastapi dev src/rag/main.py" and uv.port == 8000


def test_prompts_are_stripped_and_output_lines_skipped_in_indented_blocks() -> None:
    text = "Run:\n\n    $ pip install -e .\n    $ streamlit run ui/app.py\n    You can now view your Streamlit app\n    python not_a_command.py\n"
    [start] = markdown_starts("README.md", text)
    assert (start.command, start.port, start.evidence.line) == ("streamlit run ui/app.py", 8501, 4)
    assert "a UI, not an HTTP API" in start.notes


def test_backslash_continuations_are_joined_and_evidence_is_the_first_line() -> None:
    text = "~~~\n(.venv) $ gunicorn app.main:app \\\n    -k uvicorn.workers.UvicornWorker \\\n    --bind 0.0.0.0:8080\n~~~\n"
    [start] = markdown_starts("README.md", text)
    assert start.command == "gunicorn app.main:app -k uvicorn.workers.UvicornWorker --bind 0.0.0.0:8080"
    assert start.evidence == Evidence("README.md", 2, "(.venv) $ gunicorn app.main:app \\")
    assert start.port == 8080


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("FLASK_APP=rag/app.py flask run --port 5001", "flask run --port 5001"),
        ("flask --app rag.app:create_app run", "flask --app rag.app:create_app run"),
        ("hypercorn app.main:app --bind 0.0.0.0:8000", "hypercorn app.main:app --bind 0.0.0.0:8000"),
        ("granian --interface asgi app.main:app", "granian --interface asgi app.main:app"),
        ("daphne -p 8001 project.asgi:application", "daphne -p 8001 project.asgi:application"),
        ("litestar --app app:app run", "litestar --app app:app run"),
        ("python3 main.py", "python3 main.py"),
        ("python -m app.server --port 8000", "python -m app.server --port 8000"),
        ("python manage.py runserver 0.0.0.0:8000", "python manage.py runserver 0.0.0.0:8000"),
        ("chainlit run app.py -w", "chainlit run app.py -w"),
        ("gradio demo.py", "gradio demo.py"),
        ("make run", "make run"),
        ("pipenv run python app.py", "python app.py"),
        ("venv/bin/uvicorn api:app", "uvicorn api:app"),
        ("pip install -r requirements.txt", None),
        ("git clone https://github.com/x/y", None),
        ("docker compose up --build", None),
        ("curl -X POST localhost:8000/ask -d '{}'", None),
        ("python ingest.py", None),
        ("python main.py ingest --path docs", None),
        ("python setup.py install", None),
        ("python -m pytest -q", None),
        ("python -m http.server 8000", None),
        ("make install", None),
        ("export PORT=8000", None),
    ],
)
def test_which_commands_start_a_service(line: str, command: str | None) -> None:
    starts = markdown_starts("README.md", f"```\n{line}\n```\n")
    assert [start.command for start in starts] == ([command] if command else [])


def test_flask_app_prefix_becomes_env() -> None:
    [start] = markdown_starts("README.md", "`FLASK_APP=rag/app.py flask run`")
    assert start.env == {"FLASK_APP": "rag/app.py"} and (start.port, start.port_source) == (
        5000,
        "the framework's default",
    )


def test_training_before_serving_is_setup_evaluation_is_not() -> None:
    text = "```\npython train.py --epochs 1\npython evaluate.py\npython -m rag.build_index\npython app.py\n```\n"
    [start] = markdown_starts("README.md", text)
    assert start.setup == ["python train.py --epochs 1", "python -m rag.build_index"]


def test_identical_commands_are_kept_once_and_an_unclosed_fence_still_counts() -> None:
    text = "Run `uvicorn main:app`.\n\n```console\n$ uvicorn main:app\n$ cd web; npm start\n"
    starts = markdown_starts("README.md", text)
    assert [(s.command, s.evidence.line) for s in starts] == [("uvicorn main:app", 1)]


def test_cd_outside_the_repository_is_not_followed() -> None:
    assert markdown_starts("README.md", "```\ncd ../other-project && uvicorn x:app\n```\n") == []


# --- CI --------------------------------------------------------------------------------------------------------------

SMOKE_WORKFLOW = """\
name: smoke
on: [push, pull_request]
env:
  OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}
  VECTOR_STORE: memory
jobs:
  api:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: ./backend
    env:
      APP_ENV: ci
    steps:
      - uses: actions/checkout@v4
      - run: pip install -r requirements.txt
      - run: python scripts/ingest.py --sample
      - name: Start the API
        env:
          LOG_LEVEL: warning
        run: |
          nohup uvicorn app.main:app --host 0.0.0.0 --port 8000 > server.log 2>&1 &
          sleep 5
          curl -f http://localhost:8000/health
      - run: uvicorn app.main:app
"""


def test_workflow_background_start_with_env_workdir_and_setup() -> None:
    [start] = ci_starts(".github/workflows/smoke.yml", SMOKE_WORKFLOW)
    assert start.source == "CI step" and start.tier == "documented"
    assert start.command == "uvicorn app.main:app --host 0.0.0.0 --port 8000"
    assert start.workdir == "backend"
    assert start.env == {"VECTOR_STORE": "memory", "APP_ENV": "ci", "LOG_LEVEL": "warning"}
    assert start.setup == ["python scripts/ingest.py --sample"]
    assert start.evidence == Evidence(
        ".github/workflows/smoke.yml", 22, "nohup uvicorn app.main:app --host 0.0.0.0 --port 8000 > server.log 2>&1 &"
    )
    assert start.notes == ["OPENAI_API_KEY comes from the CI's own secrets or expressions; not replayed"]


def test_workflow_step_working_directory_wins_and_single_line_run() -> None:
    text = "on: push\njobs:\n  e2e:\n    steps:\n      - working-directory: services/api\n        run: python -m rag.server & npx wait-on http://localhost:8000\n"
    [start] = ci_starts(".github/workflows/e2e.yml", text)
    assert (start.command, start.workdir, start.evidence.line) == ("python -m rag.server", "services/api", 6)


def test_gitlab_ci_script_lines() -> None:
    text = "variables:\n  PORT: 8080\nstages: [test]\n.template:\n  script: [uvicorn hidden:app &]\nsmoke:\n  stage: test\n  variables:\n    DEBUG: true\n  script:\n    - python manage.py migrate\n    - python manage.py runserver 0.0.0.0:8080 &\n    - sleep 3 && curl localhost:8080\n"
    [start] = ci_starts(".gitlab-ci.yml", text)
    assert start.command == "python manage.py runserver 0.0.0.0:8080"
    assert start.env == {"PORT": "8080", "DEBUG": "true"} and start.setup == ["python manage.py migrate"]
    assert start.evidence.line == 12 and start.port == 8080


# --- hostile input ---------------------------------------------------------------------------------------------------

YAML_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
jobs: {x: {steps: *f}, y: {steps: [{run: *f, env: *f}]}}
smoke: {script: *f, variables: *f}
"""


@pytest.mark.parametrize(
    "text",
    [
        YAML_BOMB,
        "jobs: [unclosed",
        "- just\n- a list\n",
        "[" * 5000 + "]" * 5000,
        "jobs:\n  a:\n    steps:\n      - run: " + "uvicorn x:app " * 200_000 + "&\n",
        "\x00\xff\xfe binary \x01",
    ],
)
def test_hostile_workflows_never_raise(text: str) -> None:
    assert isinstance(ci_starts(".github/workflows/x.yml", text), list)
    assert isinstance(ci_starts(".gitlab-ci.yml", text), list)


@pytest.mark.parametrize(
    "text",
    [
        "```\n" + "uvicorn a:b " * 100_000 + "\n```\n",
        "`" * 50_000 + "\n" + ("`x` " * 20_000),
        "```\n" + "$(" * 3000 + "\n'unbalanced \"quotes\n\\\n```\n",
        "\x00\x1b[31m\xff" * 10_000,
        "    \t\n" * 50_000,
    ],
)
def test_hostile_text_never_raises(text: str) -> None:
    for parse in (markdown_starts, makefile_starts, procfile_starts):
        assert isinstance(parse("README.md", text), list)


def test_self_referencing_make_variables_stop() -> None:
    text = "A = $(A)$(A)x\nB = $(C)\nC = $(B)\nrun:\n\tuvicorn app:app $(A) $(B)\n"
    [start] = makefile_starts("Makefile", text)
    assert start.command.startswith("uvicorn app:app")


def test_procfile_web_is_the_service_whatever_its_command() -> None:
    [start] = procfile_starts("Procfile", "web: bin/start-server --workers 2\nworker: rq worker high default\n")
    assert (start.command, start.port, start.setup) == ("bin/start-server --workers 2", None, [])


def test_endless_starts_are_read_up_to_a_cap() -> None:
    block = "```\n" + "".join(f"uvicorn app{i}:app\n" for i in range(20_000)) + "```\n"
    assert len(markdown_starts("README.md", block)) == 50
    workflow = "jobs:\n" + "".join(f"  j{i}:\n    steps:\n      - run: uvicorn a{i}:app &\n" for i in range(2_000))
    assert len(ci_starts(".github/workflows/x.yml", workflow)) == 50


@pytest.mark.parametrize(
    "text",
    [
        "a" + " " * 200_000 + "b:\n\tuvicorn x:app\n",  # a rule pattern that could backtrack over the spaces
        ("``a`" * 999 + "\n") * 100,  # backtick runs that could backtrack
        "run:\n\t" + "echo 2>&1 " * 10_000 + "\n",
    ],
)
def test_inputs_that_could_backtrack_are_read_in_linear_time(text: str) -> None:
    assert makefile_starts("Makefile", text) == [] and markdown_starts("README.md", text) == []
