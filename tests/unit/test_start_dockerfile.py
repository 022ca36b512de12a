"""Reading a candidate's Dockerfile for how the app starts, with Docker's own rules (grader/profile/starts/dockerfile.py)."""

from __future__ import annotations

import textwrap

import pytest

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.starts.dockerfile import (
    Instruction,
    dockerfile_start,
    image_config,
    parse_dockerfile,
    python_version,
    shell_join,
)


def start_of(text: str, path: str = "Dockerfile", context: str = "", target: str | None = None) -> StartCandidate:
    start = dockerfile_start(parse_dockerfile(path, textwrap.dedent(text)), context=context, target=target)
    assert start is not None, "expected a start from this Dockerfile"
    return start


FASTAPI_SLIM = """\
    FROM python:3.11-slim
    WORKDIR /app
    COPY requirements.txt .
    RUN pip install --no-cache-dir -r requirements.txt
    COPY . .
    EXPOSE 8000
    CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
"""


def test_shell_join_quotes_only_what_sh_would_change() -> None:
    assert shell_join(["uvicorn", "app.main:app", "--host", "0.0.0.0"]) == "uvicorn app.main:app --host 0.0.0.0"
    assert shell_join(["sh", "-c", "alembic upgrade head && uvicorn app:app"]) == (
        "sh -c 'alembic upgrade head && uvicorn app:app'"
    )
    assert shell_join(["echo", "$PORT", ""]) == "echo '$PORT' ''"


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("python:3.12-slim", "3.12"),
        ("python:3.11.9-bookworm", "3.11"),
        ("docker.io/library/python:3.10", "3.10"),
        ("tiangolo/uvicorn-gunicorn-fastapi:python3.11", "3.11"),
        ("ghcr.io/astral-sh/uv:python3.12-bookworm-slim", "3.12"),
        ("python:3.11-slim@sha256:abc123", "3.11"),
        ("python", None),
        ("python:latest", None),
        ("ubuntu:22.04", None),
        ("localhost:5000/python", None),
    ],
)
def test_python_version_from_image_names(image: str, version: str | None) -> None:
    assert python_version(image) == version


def test_single_stage_fastapi_image() -> None:
    start = start_of(FASTAPI_SLIM)
    assert start.tier == "packaged" and start.source == "Dockerfile"
    assert start.command == "uvicorn app.main:app --host 0.0.0.0 --port 8000"
    assert (start.workdir, start.port, start.port_source) == ("", 8000, "the command")
    assert start.evidence == Evidence(
        "Dockerfile", 7, 'CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]'
    )
    assert start.skipped == ["Dockerfile:4: RUN pip install --no-cache-dir -r requirements.txt"]
    assert start.python_version == "3.11"
    assert start.notes == []


def test_shell_form_cmd_reads_port_from_env() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        ENV PORT=8080
        WORKDIR /app
        COPY . .
        CMD uvicorn main:app --host 0.0.0.0 --port $PORT
    """)
    assert start.command == "uvicorn main:app --host 0.0.0.0 --port $PORT"  # sh expands it from env
    assert (start.port, start.port_source, start.env) == (8080, "the command", {"PORT": "8080"})


def test_unset_port_variable_falls_back_to_expose_with_a_note() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        COPY . /app
        WORKDIR /app
        EXPOSE 8000/tcp
        CMD uvicorn main:app --host 0.0.0.0 --port $PORT
    """)
    assert (start.port, start.port_source) == (8000, "EXPOSE")
    assert start.notes == ["the command reads $PORT, which nothing here sets"]


def test_a_default_in_the_command_is_the_port() -> None:
    start = start_of("""\
        FROM python:3.12-slim
        CMD ["sh", "-c", "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}"]
    """)
    assert start.command == "sh -c 'uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}'"
    assert (start.port, start.port_source) == (8000, "the command's default")
    assert start.notes == []


@pytest.mark.parametrize(
    ("cmd", "port"),
    [
        ('["gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", "0.0.0.0:8081", "app.main:app"]', 8081),
        ("gunicorn --bind=:8082 wsgi:app", 8082),
        ("gunicorn --bind 0.0.0.0:8083 wsgi:app", 8083),
        ('["hypercorn", "main:app", "--bind", "[::]:8084"]', 8084),
        ("python manage.py runserver 0.0.0.0:8085", 8085),
        ("flask run --host=0.0.0.0 --port=8086", 8086),
        ("streamlit run ui.py --server.port 8501", 8501),
    ],
)
def test_ports_the_command_names_beat_expose(cmd: str, port: int) -> None:
    start = start_of(f"FROM python:3.11-slim\nEXPOSE 9999\nCMD {cmd}\n")
    assert (start.port, start.port_source) == (port, "the command")


def test_exec_form_passes_variables_literally() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        ENV PORT=8000
        EXPOSE 8000
        CMD ["uvicorn", "main:app", "--port", "$PORT"]
    """)
    assert start.command == "uvicorn main:app --port '$PORT'"
    assert (start.port, start.port_source) == (8000, "EXPOSE")  # uvicorn would receive "$PORT", not 8000
    assert start.notes == [
        "the exec-form command passes '$PORT' to the program as written (Docker substitutes no variables in exec form)"
    ]


def test_entrypoint_script_with_exec_cmd_appends_arguments() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        WORKDIR /app
        COPY . .
        RUN chmod +x ./docker-entrypoint.sh
        ENTRYPOINT ["./docker-entrypoint.sh"]
        CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0"]
    """)
    assert start.command == "./docker-entrypoint.sh uvicorn app.main:app --host 0.0.0.0"
    assert start.evidence.line == 6  # the CMD names the app; the ENTRYPOINT wraps it


def test_shell_form_entrypoint_ignores_cmd() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        ENTRYPOINT python serve.py --port 7000
        CMD ["--reload"]
    """)
    assert start.command == "python serve.py --port 7000"
    assert start.evidence.line == 2
    assert "the CMD is ignored: the ENTRYPOINT is in shell form" in start.notes


def test_exec_entrypoint_with_shell_cmd_runs_cmd_under_sh() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        ENTRYPOINT ["/usr/bin/tini", "--"]
        CMD uvicorn main:app --port 8000
    """)
    assert start.command == "/usr/bin/tini -- /bin/sh -c 'uvicorn main:app --port 8000'"
    assert start.port == 8000


def test_later_cmd_replaces_earlier() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        CMD ["python", "app.py"]
        CMD ["uvicorn", "app:app"]
    """)
    assert (start.command, start.evidence.line) == ("uvicorn app:app", 3)


def test_entrypoint_drops_inherited_cmd_but_keeps_one_set_in_the_same_stage() -> None:
    inherited = start_of("""\
        FROM python:3.11-slim AS base
        CMD ["python", "-m", "http.server"]
        FROM base
        ENTRYPOINT ["python", "serve.py"]
    """)
    assert inherited.command == "python serve.py"
    same_stage = start_of("""\
        FROM python:3.11-slim
        CMD ["--port", "8000"]
        ENTRYPOINT ["uvicorn", "main:app"]
    """)
    assert same_stage.command == "uvicorn main:app --port 8000"


def test_multi_stage_poetry_build_skips_what_the_target_needs() -> None:
    start = start_of("""\
        FROM python:3.11-slim AS builder
        RUN pip install poetry==1.8.3
        WORKDIR /build
        COPY pyproject.toml poetry.lock ./
        RUN poetry export -f requirements.txt -o requirements.txt && pip wheel -r requirements.txt -w /wheels

        FROM python:3.11-slim AS test
        RUN pytest

        FROM python:3.11-slim AS runtime
        COPY --from=builder /wheels /wheels
        RUN pip install /wheels/*
        WORKDIR /srv
        COPY src/ ./src/
        WORKDIR /srv/src
        CMD ["python", "-m", "rag_service"]
    """)
    assert start.skipped == [
        "Dockerfile:2: RUN pip install poetry==1.8.3",
        "Dockerfile:5: RUN poetry export -f requirements.txt -o requirements.txt && pip wheel -r requirements.txt -w /wheels",
        "Dockerfile:12: RUN pip install /wheels/*",
    ]  # the test stage is not built for the runtime target
    assert (start.command, start.workdir, start.python_version) == ("python -m rag_service", "src", "3.11")


def test_from_an_earlier_stage_inherits_env_workdir_and_base() -> None:
    start = start_of("""\
        ARG PYTHON_VERSION=3.12
        FROM python:${PYTHON_VERSION}-slim AS base
        ENV PYTHONUNBUFFERED=1 APP_MODULE=app.main:app
        WORKDIR /app
        COPY . .
        EXPOSE 8000

        FROM base AS prod
        ARG WORKERS=2
        CMD gunicorn -k uvicorn.workers.UvicornWorker -w $WORKERS $APP_MODULE
    """)
    assert start.python_version == "3.12"
    assert start.env == {"PYTHONUNBUFFERED": "1", "APP_MODULE": "app.main:app", "WORKERS": "2"}
    assert (start.workdir, start.port, start.port_source) == ("", 8000, "EXPOSE")


def test_target_names_the_stage() -> None:
    text = """\
        FROM python:3.11-slim AS Dev
        CMD ["uvicorn", "main:app", "--reload"]
        FROM python:3.11-slim AS prod
        CMD ["gunicorn", "main:app"]
    """
    assert start_of(text).command == "gunicorn main:app"
    assert start_of(text, target="dev").command == "uvicorn main:app --reload"
    assert dockerfile_start(parse_dockerfile("Dockerfile", textwrap.dedent(text)), target="staging") is None


def test_no_cmd_or_entrypoint_is_no_start() -> None:
    assert dockerfile_start(parse_dockerfile("Dockerfile", "FROM python:3.11\nRUN pip install x\n")) is None
    assert dockerfile_start(parse_dockerfile("Dockerfile", 'FROM python:3.11\nCMD ["python"]\nCMD []\n')) is None


def test_env_and_arg_forms_with_substitution() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        ARG MODEL=gpt-4o-mini
        ARG UNSET
        ENV A=1 B="two words" C=$A
        ENV A=2 D=$A
        ENV GREETING hello world
        ENV	TABBED	"a b"
        ENV LLM_MODEL=${MODEL} FALLBACK=${UNSET:-local} QUOTED='$MODEL' ESCAPED=\\$MODEL
        ENV PATH="/app/.venv/bin:$PATH"
        CMD python app.py
    """)
    assert start.env == {
        "MODEL": "gpt-4o-mini",
        "A": "2",
        "B": "two words",
        "C": "",  # Docker substitutes with what was set before the instruction: A was not set yet
        "D": "1",
        "GREETING": "hello world",
        "TABBED": "a b",
        "LLM_MODEL": "gpt-4o-mini",
        "FALLBACK": "local",
        "QUOTED": "$MODEL",
        "ESCAPED": "$MODEL",
    }
    assert "Dockerfile:9: ENV PATH is the image's own; not passed on" in start.notes


def test_global_arg_is_only_in_scope_in_a_stage_when_redeclared() -> None:
    start = start_of("""\
        ARG APP_PORT=9000
        ARG BASE=python:3.10-slim
        ARG NO_DEFAULT
        FROM ${BASE}
        ARG APP_PORT
        ARG NO_DEFAULT
        EXPOSE ${APP_PORT}/tcp
        CMD python app.py
    """)
    assert (start.python_version, start.port, start.port_source) == ("3.10", 9000, "EXPOSE")
    assert start.env == {"APP_PORT": "9000"}


def test_relative_workdirs_join_and_map_into_the_copied_tree() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        WORKDIR /app
        COPY . .
        WORKDIR services
        WORKDIR ./api
        CMD ["uvicorn", "main:app"]
    """)
    assert start.workdir == "services/api"


def test_workdir_inside_a_copied_subdirectory() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        COPY ./backend/ /app
        WORKDIR /app
        CMD ["uvicorn", "main:app"]
    """)
    assert start.workdir == "backend"


def test_copying_a_directorys_contents_with_a_star_maps_workdir_to_that_directory() -> None:
    flask_bot = """\
        FROM python:3.11.2
        RUN pip3 install --upgrade pip wheel python-dotenv gunicorn flask openai
        COPY ./app/* /app/
        WORKDIR /app
        CMD ["gunicorn", "--bind", "0.0.0.0:5000", "wsgi:app"]
    """
    assert start_of(flask_bot).workdir == "app"
    assert start_of("FROM python:3.12\nWORKDIR /srv\nCOPY * ./\nCMD python bot.py\n").workdir == ""
    only_python_files = "FROM python:3.12\nWORKDIR /srv\nCOPY app/*.py ./\nCMD python bot.py\n"
    assert start_of(only_python_files).workdir == ""  # a pattern of some files maps nothing


def test_copy_into_a_subdirectory_of_workdir_maps_to_its_parent() -> None:
    fastapi_docs_layout = """\
        FROM python:3.11
        WORKDIR /code
        COPY ./requirements.txt /code/requirements.txt
        RUN pip install --no-cache-dir --upgrade -r /code/requirements.txt
        COPY ./app /code/app
        CMD ["fastapi", "run", "app/main.py", "--port", "80"]
    """
    assert start_of(fastapi_docs_layout).workdir == ""
    assert start_of(fastapi_docs_layout, path="api/Dockerfile", context="api").workdir == "api"
    nested = start_of("FROM python:3.11\nWORKDIR /code\nCOPY backend/app /code/app\nCMD uvicorn app.main:app\n")
    assert nested.workdir == "backend"  # /code holds backend/, so app.main imports from there


def test_files_and_other_stages_do_not_map_workdir() -> None:
    start = start_of("""\
        FROM python:3.11-slim AS deps
        COPY . /build
        FROM python:3.11-slim
        WORKDIR /opt/service
        COPY requirements.txt pyproject.toml ./
        COPY main.py .
        COPY --from=deps /build/src /opt/service
        COPY docs /usr/share/docs
        CMD ["python", "main.py"]
    """)
    assert start.workdir == ""


def test_copy_flags_are_skipped_and_sources_normalised() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        RUN useradd -m app
        COPY --chown=app:app --chmod=755 ./ /home/app/
        WORKDIR /home/app/service
        USER app
        CMD ["python", "-m", "service"]
    """)
    assert start.workdir == "service"
    assert start.skipped == [
        "Dockerfile:2: RUN useradd -m app",
        "Dockerfile:5: USER app (the sandbox runs as its own unprivileged user)",
    ]


def test_subdirectory_dockerfile_with_its_own_context() -> None:
    start = start_of(FASTAPI_SLIM, path="backend/Dockerfile", context="backend")
    assert (start.source, start.workdir) == ("Dockerfile backend/Dockerfile", "backend")
    assert start.evidence.path == "backend/Dockerfile"
    assert start.skipped == ["backend/Dockerfile:4: RUN pip install --no-cache-dir -r requirements.txt"]


def test_long_run_steps_are_cut_to_120_characters() -> None:
    long_install = "pip install " + " ".join(f"package-{number}" for number in range(40))
    start = start_of(f"FROM python:3.11\nRUN {long_install}\nCMD python app.py\n")
    assert start.skipped == [f"Dockerfile:2: RUN {long_install[:120]}"]


def test_continuations_comments_and_blank_lines() -> None:
    parsed = parse_dockerfile(
        "Dockerfile",
        textwrap.dedent("""\
            # a comment before anything
            FROM python:3.11-slim

            RUN apt-get update && \\
                # comments inside a continuation are dropped
                apt-get install -y curl \\

                && rm -rf /var/lib/apt/lists/*
            CMD ["uvicorn", \\
                 "main:app"]
        """),
    )
    [stage] = parsed.stages
    run, cmd = stage.instructions
    assert (run.keyword, run.line) == ("RUN", 4)
    assert " ".join(run.value.split()) == "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*"
    assert cmd == Instruction("CMD", '["uvicorn",      "main:app"]', 9, ["uvicorn", "main:app"])


def test_escape_directive_changes_the_continuation_character() -> None:
    parsed = parse_dockerfile(
        "Dockerfile", "# escape=`\nFROM python:3.11-windowsservercore\nWORKDIR C:\\app\nRUN pip install `\n    flask\n"
    )
    workdir, run = parsed.stages[0].instructions
    assert workdir.value == "C:\\app"
    assert (run.value.split(), parsed.escape) == (["pip", "install", "flask"], "`")


def test_heredoc_is_one_instruction() -> None:
    text = (
        "FROM python:3.11-slim\n"
        "RUN <<EOF\n"
        "pip install -r requirements.txt\n"
        'CMD ["not", "an", "instruction"]\n'
        "EOF\n"
        'COPY <<-"CONF" /etc/app.conf\n'
        "\tmode=prod\n"
        "\tCONF\n"
        'CMD ["python", "app.py"]\n'
    )
    start = start_of(text)
    assert (start.command, start.evidence.line) == ("python app.py", 9)
    assert start.skipped == ['Dockerfile:2: RUN <<EOF pip install -r requirements.txt CMD ["not", "an", "instruction"]']


def test_keywords_are_case_insensitive() -> None:
    start = start_of('from python:3.11-slim as base\nworkdir /app\ncopy . .\ncmd ["python", "bot.py"]\n')
    assert (start.command, start.workdir, start.python_version) == ("python bot.py", "", "3.11")
    assert start.evidence.excerpt == 'CMD ["python", "bot.py"]'


@pytest.mark.parametrize("cmd", ["['uvicorn', 'main:app']", '["uvicorn", "main:app",]', '["python", 1]'])
def test_invalid_json_array_cmd_is_shell_form(cmd: str) -> None:
    parsed = parse_dockerfile("Dockerfile", f"FROM python:3.11\nCMD {cmd}\n")
    assert parsed.stages[0].instructions[0].exec_form is None
    start = dockerfile_start(parsed)
    assert start is not None and start.command == cmd  # what Docker would hand to /bin/sh -c
    assert "Dockerfile:2: CMD looks like a JSON array but is not valid JSON, so Docker runs it as a shell command" in (
        start.notes
    )


def test_shell_instruction_wraps_shell_form() -> None:
    start = start_of("""\
        FROM python:3.11-slim
        SHELL ["/bin/bash", "-c"]
        CMD source .venv/bin/activate && uvicorn main:app
    """)
    assert start.command == "/bin/bash -c 'source .venv/bin/activate && uvicorn main:app'"


def test_a_non_python_base_is_still_returned() -> None:
    start = start_of('FROM node:20-alpine\nWORKDIR /web\nCOPY . .\nCMD ["node", "server.js"]\n')
    assert (start.command, start.python_version) == ("node server.js", None)


def test_image_config_exposes_copies_for_compose() -> None:
    config = image_config(parse_dockerfile("Dockerfile", "FROM python:3.11\nWORKDIR /app\nCOPY src ./src\n"))
    assert config is not None
    assert (config.workdir, config.copies, config.cmd) == ("/app", [("src", "/app/src")], None)


def test_unknown_instructions_are_noted_and_long_lists_capped() -> None:
    text = "FROM python:3.11\nRUNN pip install x\n" + "RUN echo step\n" * 150 + "garbage = line\n" * 30 + "CMD x\n"
    start = start_of(text)
    assert start.notes[0] == "Dockerfile:2: unknown instruction RUNN (Docker would refuse to build)"
    assert len(start.notes) == 21 and start.notes[-1] == "Dockerfile: 11 more notes not listed"
    assert len(start.skipped) == 101 and start.skipped[-1] == "Dockerfile: 50 more steps not listed"


@pytest.mark.parametrize(
    "text",
    [
        "FROM python:3.11\n" + "RUN echo hi\n" * 200_000,  # over the size limit
        "FROM python:3.11\x00\x01\x02CMD x",
        bytes(range(256)).decode("latin-1") * 50,
        "# only a comment\n\n",
        "FROM",
        "CMD python app.py\n",
        "FROM python:3.11\nCMD " + "[" * 100_000,
        "FROM python:3.11\nENV A=" + "${" * 100_000 + "\nCMD x\n",
        "FROM python:3.11\nRUN <<EOF\nnever closed\n",
        "FROM a AS a\nFROM a AS b\nFROM b AS a\nCMD x\n",
        "FROM python:3.11\nWORKDIR ../../..\nCOPY ../.. /\nEXPOSE 99999 -1 abc\nCMD x\n",
        "\\\n" * 10_000,
    ],
)
def test_hostile_input_never_raises(text: str) -> None:
    parsed = parse_dockerfile("Dockerfile", text)
    start = dockerfile_start(parsed)
    assert start is None or start.tier == "packaged"
    if len(text) > 1_000_000 or "\x00" in text:
        assert parsed.stages == [] and parsed.notes
