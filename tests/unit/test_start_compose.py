"""Reading a candidate's compose file for how the app starts (grader/profile/starts/compose.py)."""

from __future__ import annotations

import textwrap

import pytest

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.starts.compose import (
    ComposeFile,
    app_service,
    compose_start,
    env_file_values,
    parse_compose,
)

BACKEND_DOCKERFILE = """\
FROM python:3.11-slim AS builder
RUN pip install poetry==1.8.3
WORKDIR /build
COPY pyproject.toml poetry.lock ./
RUN poetry export -o requirements.txt

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 LOG_LEVEL=info
WORKDIR /app
COPY --from=builder /build/requirements.txt .
RUN pip install -r requirements.txt
COPY . .
EXPOSE 8000
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0"]
"""

RAG_STACK = """\
services:
  qdrant:
    image: qdrant/qdrant:v1.9.2
    ports:
      - "6333:6333"
  postgres:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD: postgres
  redis:
    image: redis:7
  api:
    build: ./backend
    env_file: .env
    environment:
      - QDRANT_URL=http://qdrant:6333
      - DATABASE_URL=postgresql://postgres:postgres@postgres:5432/rag
    ports:
      - "8080:8000"
    depends_on:
      qdrant:
        condition: service_started
      postgres:
        condition: service_healthy
"""


def parsed(text: str, path: str = "docker-compose.yml") -> ComposeFile:
    return parse_compose(path, textwrap.dedent(text))


def start_of(text: str, files: dict[str, str], path: str = "docker-compose.yml") -> StartCandidate:
    start = compose_start(parsed(text, path), files.get)
    assert start is not None, "expected a start from this compose file"
    return start


def test_rag_stack_starts_the_api_built_from_backend() -> None:
    files = {"backend/Dockerfile": BACKEND_DOCKERFILE, ".env": "OPENAI_API_KEY=sk-test\nLOG_LEVEL=debug\n"}
    start = start_of(RAG_STACK, files)
    assert (start.tier, start.source) == ("packaged", "compose service api")
    assert start.command == "uvicorn app.main:app --host 0.0.0.0"
    assert (start.workdir, start.port, start.port_source) == ("backend", 8000, "compose ports")
    assert start.env == {
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "debug",  # the env file beats the image's ENV
        "OPENAI_API_KEY": "sk-test",
        "QDRANT_URL": "http://qdrant:6333",
        "DATABASE_URL": "postgresql://postgres:postgres@postgres:5432/rag",
    }
    assert start.services == ["qdrant", "postgres"]
    assert start.evidence == Evidence("docker-compose.yml", 12, "api:")
    assert start.skipped == [
        "backend/Dockerfile:2: RUN pip install poetry==1.8.3",
        "backend/Dockerfile:5: RUN poetry export -o requirements.txt",
        "backend/Dockerfile:11: RUN pip install -r requirements.txt",
    ]
    assert (start.python_version, start.notes) == ("3.11", [])


def test_compose_command_replaces_cmd_and_its_port_wins() -> None:
    compose = """\
        services:
          api:
            build: ./backend
            command: ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "9000", "--reload"]
            ports: ["8080:8000"]
    """
    start = start_of(compose, {"backend/Dockerfile": BACKEND_DOCKERFILE})
    assert start.command == "uvicorn app.main:app --host 0.0.0.0 --port 9000 --reload"
    assert (start.port, start.port_source) == (9000, "the command")
    assert start.evidence == Evidence(
        "docker-compose.yml",
        4,
        'command: ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "9000", "--reload"]',
    )


def test_string_command_is_split_like_compose_and_rejoined() -> None:
    compose = """\
        services:
          api:
            build: .
            command: sh -c "alembic upgrade head && uvicorn app.main:app --host 0.0.0.0 --port 8000"
    """
    start = start_of(compose, {"Dockerfile": BACKEND_DOCKERFILE})
    assert start.command == "sh -c 'alembic upgrade head && uvicorn app.main:app --host 0.0.0.0 --port 8000'"
    assert (start.port, start.port_source, start.workdir) == (8000, "the command", "")


def test_expose_is_the_last_resort_for_the_port() -> None:
    start = start_of("services:\n  api:\n    build: ./backend\n", {"backend/Dockerfile": BACKEND_DOCKERFILE})
    assert (start.port, start.port_source) == (8000, "EXPOSE")


def test_compose_entrypoint_drops_the_image_cmd_unless_command_is_given() -> None:
    dockerfile = 'FROM python:3.11-slim\nENTRYPOINT ["./entrypoint.sh"]\nCMD ["uvicorn", "main:app"]\n'
    alone = start_of("services:\n  app:\n    build: .\n    entrypoint: python serve.py\n", {"Dockerfile": dockerfile})
    assert alone.command == "python serve.py"
    both = start_of(
        "services:\n  app:\n    build: .\n    entrypoint: [python, -m]\n    command: gunicorn main:app\n",
        {"Dockerfile": dockerfile},
    )
    assert both.command == "python -m gunicorn main:app"
    command_only = start_of("services:\n  app:\n    build: .\n    command: [flask, run]\n", {"Dockerfile": dockerfile})
    assert command_only.command == "./entrypoint.sh flask run"


def test_port_forms_give_container_ports() -> None:
    compose = parsed("""\
        services:
          api:
            build: .
            ports:
              - "8000:8000"
              - "127.0.0.1:8001:8001"
              - "8002"
              - "8003-8004:8003-8004"
              - 8005
              - target: 8006
                published: 80
              - "9000:8007/udp"
              - "${API_PORT:-80}:8008"
    """)
    assert compose.services[0].ports == [8000, 8001, 8002, 8003, 8005, 8006, 8007, 8008]


def test_environment_list_and_mapping_forms() -> None:
    compose = parsed("""\
        services:
          listed:
            image: python:3.11
            environment:
              - DEBUG=true
              - EMPTY=
              - FROM_HOST
          mapped:
            image: python:3.11
            environment:
              DEBUG: true
              WORKERS: 4
              RATIO: 0.5
              NOTHING:
    """)
    listed, mapped = compose.services
    assert (listed.environment, listed.inherited_env) == ({"DEBUG": "true", "EMPTY": ""}, ["FROM_HOST"])
    assert (mapped.environment, mapped.inherited_env) == (
        {"DEBUG": "true", "WORKERS": "4", "RATIO": "0.5"},
        ["NOTHING"],
    )


def test_interpolation_reads_the_env_file_beside_the_compose_file() -> None:
    compose = """\
        services:
          api:
            image: python:3.11-slim
            command: uvicorn main:app --port ${API_PORT:-8000} --root-path $${ROOT_PATH}
            ports: ["8000:8000"]
            environment:
              MODEL: ${LLM_MODEL}
              TEMPERATURE: ${TEMPERATURE-0.2}
              FROM_HOST:
    """
    with_env = start_of(
        compose, {"deploy/.env": "API_PORT=9100\nLLM_MODEL=gpt-4o-mini\nFROM_HOST=yes\n"}, "deploy/compose.yaml"
    )
    assert with_env.command == "uvicorn main:app --port 9100 --root-path '${ROOT_PATH}'"
    assert with_env.env == {"MODEL": "gpt-4o-mini", "TEMPERATURE": "0.2", "FROM_HOST": "yes"}
    assert (with_env.port, with_env.port_source, with_env.workdir) == (9100, "the command", "deploy")
    without = start_of(compose, {}, "deploy/compose.yaml")
    assert without.command == "uvicorn main:app --port 8000 --root-path '${ROOT_PATH}'"
    assert without.env == {"MODEL": "", "TEMPERATURE": "0.2"}
    assert "compose reads $LLM_MODEL from the environment or .env, which do not set it here (it becomes empty)" in (
        without.notes
    )
    assert "environment FROM_HOST takes its value from the host, which does not set it here" in without.notes


def test_missing_env_file_falls_back_to_the_example() -> None:
    files = {"backend/Dockerfile": BACKEND_DOCKERFILE, ".env.example": "OPENAI_API_KEY=sk-replace-me\nQDRANT_URL=x\n"}
    start = start_of(RAG_STACK, files)
    assert start.env["OPENAI_API_KEY"] == "sk-replace-me"
    assert start.env["QDRANT_URL"] == "http://qdrant:6333"  # `environment` beats env files
    assert start.notes == ["env file .env is not in the repository; read .env.example instead"]
    bare = start_of(RAG_STACK, {"backend/Dockerfile": BACKEND_DOCKERFILE})
    assert bare.notes == ["env file .env is not in the repository (and no example file is beside it)"]


def test_env_file_long_form_and_lists_relative_to_the_compose_file() -> None:
    compose = parsed(
        """\
        services:
          api:
            build: ../backend
            env_file:
              - ./config/common.env
              - path: ./config/local.env
                required: false
    """,
        "deploy/docker-compose.yml",
    )
    assert compose.services[0].env_files == ["deploy/config/common.env", "deploy/config/local.env"]
    files = {
        "backend/Dockerfile": BACKEND_DOCKERFILE,
        "deploy/config/common.env": "A=1\nB=common\n",
        "deploy/config/.env.sample": "B=sample\n",
    }
    start = compose_start(compose, files.get)
    assert start is not None and (start.env["A"], start.env["B"]) == ("1", "sample")
    assert start.notes == [
        "env file deploy/config/local.env is not in the repository; read deploy/config/.env.sample instead"
    ]


def test_env_file_values_reads_what_dotenv_files_hold() -> None:
    text = textwrap.dedent("""\
        # OpenAI
        export OPENAI_API_KEY=sk-123
        MODEL="gpt-4o-mini"  # cheap
        PROMPT='say "hi" # literally'
        URL=http://localhost:6333 # the vector store
        HASH=abc#def
        not a line
        EMPTY=
    """)
    assert env_file_values(text) == {
        "OPENAI_API_KEY": "sk-123",
        "MODEL": "gpt-4o-mini",
        "PROMPT": 'say "hi" # literally',
        "URL": "http://localhost:6333",
        "HASH": "abc#def",
        "EMPTY": "",
    }


def test_depends_on_closure_nearest_first() -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on: [worker, postgres]
          worker:
            build: .
            command: celery -A app.tasks worker
            depends_on:
              redis:
                condition: service_healthy
              postgres:
                condition: service_healthy
          postgres:
            image: postgres:16
          redis:
            image: redis:7
            depends_on: [api]
    """
    start = start_of(compose, {"Dockerfile": 'FROM python:3.12\nCMD ["python", "-m", "app"]\n'})
    assert start.services == ["worker", "postgres", "redis"]


def test_build_mapping_with_dockerfile_and_target() -> None:
    compose = """\
        services:
          api:
            build:
              context: .
              dockerfile: docker/Dockerfile.api
              target: prod
    """
    dockerfile = (
        "FROM python:3.12-slim AS base\nWORKDIR /srv\nCOPY src /srv\n"
        'FROM base AS dev\nCMD ["uvicorn", "main:app", "--reload"]\n'
        'FROM base AS prod\nCMD ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "main:app"]\n'
        'FROM base AS test\nCMD ["pytest"]\n'
    )
    start = start_of(compose, {"docker/Dockerfile.api": dockerfile})
    assert start.command == "gunicorn -k uvicorn.workers.UvicornWorker main:app"
    assert (start.workdir, start.python_version) == ("src", "3.12")
    service = parsed(compose).services[0]
    assert (service.build_context, service.dockerfile, service.target) == ("", "docker/Dockerfile.api", "prod")


def test_context_is_relative_to_the_compose_file_directory() -> None:
    compose = parsed("services:\n  api:\n    build:\n      context: ../backend\n", "deploy/docker-compose.yml")
    assert compose.services[0].build_context == "backend"
    start = compose_start(compose, {"backend/Dockerfile": BACKEND_DOCKERFILE}.get)
    assert start is not None and start.skipped[0].startswith("backend/Dockerfile:2:")
    assert start.workdir == "backend"


def test_working_dir_is_mapped_through_the_dockerfile_copies() -> None:
    compose = "services:\n  api:\n    build: ./backend\n    working_dir: /app/src\n"
    assert start_of(compose, {"backend/Dockerfile": BACKEND_DOCKERFILE}).workdir == "backend/src"


def test_image_only_service_with_a_bind_mount() -> None:
    compose = """\
        services:
          api:
            image: python:3.11-slim
            volumes:
              - ./services/api:/code:ro
              - hf-cache:/root/.cache
            working_dir: /code
            command: bash -c "pip install -r requirements.txt && uvicorn main:app --host 0.0.0.0"
            ports: ["8000:8000"]
        volumes:
          hf-cache:
    """
    start = start_of(compose, {})
    assert start.command == "bash -c 'pip install -r requirements.txt && uvicorn main:app --host 0.0.0.0'"
    assert (start.workdir, start.port, start.python_version, start.skipped) == ("services/api", 8000, "3.11", [])


def test_nothing_to_run_is_no_start() -> None:
    only_images = "services:\n  app:\n    image: ghcr.io/acme/rag:latest\n    ports: ['8000:8000']\n"
    assert compose_start(parsed(only_images), {}.get) is None
    no_cmd = "services:\n  api:\n    build: .\n"
    assert compose_start(parsed(no_cmd), {"Dockerfile": "FROM python:3.11\nRUN pip install x\n"}.get) is None


def test_app_choice_prefers_ports_then_an_app_like_name() -> None:
    compose = parsed("""\
        services:
          worker:
            build: .
            command: celery -A tasks worker
          docs:
            build: ./docs
            ports: ["8001:8001"]
          frontend:
            build: ./frontend
            ports: ["3000:3000"]
          backend:
            build: ./backend
            ports: ["8000:8000"]
    """)
    chosen = app_service(compose)
    assert chosen is not None and chosen.name == "backend"


def test_a_profiled_service_is_the_app_only_when_nothing_else_is() -> None:
    both = parsed("""\
        services:
          debug:
            build: .
            profiles: [debug]
            ports: ["5678:5678"]
          app:
            build: .
    """)
    assert (chosen := app_service(both)) is not None and chosen.name == "app"
    only = parsed("services:\n  eval:\n    build: .\n    profiles: [eval]\n")
    assert (chosen := app_service(only)) is not None and chosen.name == "eval"


def test_without_a_build_a_published_web_server_is_the_app() -> None:
    compose = parsed("""\
        services:
          ollama:
            image: ollama/ollama
            command: serve
            ports: ["11434:11434"]
          exporter:
            image: prom/node-exporter
            ports: ["9100:9100"]
          api:
            image: python:3.12-slim
            command: ["python", "-m", "uvicorn", "main:app"]
            ports: ["8000:8000"]
    """)
    assert (chosen := app_service(compose)) is not None and chosen.name == "api"


def test_infrastructure_is_never_the_app() -> None:
    compose = parsed("""\
        services:
          chroma:
            image: chromadb/chroma:0.5.0
            ports: ["8000:8000"]
            command: uvicorn chromadb.app:app --port 8000
          langfuse:
            image: langfuse/langfuse:2
            ports: ["3000:3000"]
          nginx:
            build: ./nginx
            ports: ["80:80"]
    """)
    assert app_service(compose) is None


def test_a_missing_dockerfile_with_a_compose_command_still_starts() -> None:
    compose = "services:\n  api:\n    build: ./api\n    command: python -m api\n"
    start = start_of(compose, {})
    assert (start.command, start.workdir, start.skipped) == ("python -m api", "api", [])
    assert start.notes == ["docker-compose.yml: service api builds from api/Dockerfile, which the repository lacks"]


def test_merge_keys_and_line_numbers() -> None:
    compose = parsed("""\
        x-app: &app
          build: .
          env_file: [.env]
          command: uvicorn main:app --port 7000

        services:
          api:
            <<: *app
            ports: ["7000:7000"]
          api-debug:
            <<: *app
            command: python -m debugpy --listen 0.0.0.0:5678 -m uvicorn main:app
    """)
    api, debug = compose.services
    assert (api.line, api.command_line, api.command) == (7, 4, "uvicorn main:app --port 7000")
    assert (api.env_files, api.ports) == ([".env"], [7000])
    assert (debug.line, debug.command_line) == (10, 12)
    start = compose_start(compose, {"Dockerfile": "FROM python:3.11\n", ".env.example": "X=1\n"}.get)
    assert start is not None and start.evidence == Evidence(
        "docker-compose.yml", 4, "command: uvicorn main:app --port 7000"
    )


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 9)}]\n" for level in range(9)
)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("services:\n" + "  x: {image: y}\n" * 80_000, "longer than"),
        ("services:\n  api:\n    build: .\x00\x01", "binary"),
        (BOMB + "services:\n  api:\n    build: .\n    command: *j\n", "YAML nodes"),
        ("services:\n  api: &loop\n    build: .\n    deep: *loop\n    command: [python]\n", None),
        ("x: &m\n  <<: *m\nservices: {}\n", None),
        ("[" * 5000 + "]" * 5000, "not readable YAML"),
        ("services: [api, db]\n", "no `services` mapping"),
        ("services:\n  api: build .\n", "not a mapping"),
        ("a: 1\n---\nb: 2\n", "not readable YAML"),
        ("services:\n  api:\n    build: .\n  api: : :\n", "not readable YAML"),
        ("\t\x7f\ufffd{{{", "not readable YAML"),
        ("services:\n  api:\n    build: {context: [1]}\n    ports: [{target: [x]}, 99999, '-1', abc]\n", None),
    ],
)
def test_hostile_compose_files_never_raise(text: str, note: str | None) -> None:
    compose = parse_compose("docker-compose.yml", text)
    if note is not None:
        assert any(note in message for message in compose.notes), compose.notes
    start = compose_start(compose, {"Dockerfile": 'FROM python:3.11\nCMD ["python"]\n'}.get)
    assert start is None or start.tier == "packaged"
