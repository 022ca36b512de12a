"""The pod plan from compose files written the way candidates write them: which companions start beside the app,
with what, and every refusal (one test each), each with a reason a report can show."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxes.pod import Healthcheck, PodPlan, load_compose, parse_duration, sidecars_from_compose

RAG_STACK = """\
x-restart: &restart
  restart: unless-stopped

services:
  api:
    build: .
    ports:
      - "8000:8000"
    env_file: .env
    depends_on:
      postgres:
        condition: service_healthy
      redis:
        condition: service_started
      qdrant:
        condition: service_started

  postgres:
    <<: *restart
    image: pgvector/pgvector:pg16
    environment:
      POSTGRES_USER: ${POSTGRES_USER:-rag}
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
      POSTGRES_DB: rag
    ports:
      - 5432:5432
    volumes:
      - pgdata:/var/lib/postgresql/data
      - ./db/init.sql:/docker-entrypoint-initdb.d/init.sql
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U $${POSTGRES_USER} -d rag"]
      interval: 5s
      timeout: 5s
      retries: 10
      start_period: 1m30s

  redis:
    image: redis:7-alpine
    command: redis-server --appendonly yes
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]

  qdrant:
    image: qdrant/qdrant:v1.9.2
    volumes:
      - ./qdrant_storage:/qdrant/storage
    healthcheck:
      test: curl -f http://localhost:6333/healthz || exit 1

  frontend:
    build: ./frontend
    ports: ["3000:3000"]
    depends_on: [api]

  langfuse:
    image: langfuse/langfuse:2
    ports: ["3001:3000"]
    environment:
      - DATABASE_URL=postgresql://rag:secret@postgres:5432/langfuse
    depends_on: [postgres]

volumes:
  pgdata:
"""


def repository(tmp_path: Path, compose: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "docker-compose.yml").write_text(compose)
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def plan_for(tmp_path: Path, compose: str, app: str = "api", files: dict[str, str] | None = None) -> PodPlan:
    root = repository(tmp_path, compose, files)
    return sidecars_from_compose(load_compose(compose), app, root, root)


def only_service(image_lines: str) -> str:
    """A compose file whose app depends on one service `db`, given the service's lines (indented 4)."""
    return f"services:\n  api:\n    build: .\n    depends_on: [db]\n  db:\n{image_lines}"


# --- what starts, and how --------------------------------------------------------------------------------


def test_a_rag_stack_starts_the_app_closure_and_lists_the_rest_with_reasons(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, RAG_STACK, files={".env": "POSTGRES_PASSWORD=hunter2\n", "db/init.sql": "select 1;"})
    assert not plan.refused, plan.refusals
    assert [sidecar.name for sidecar in plan.sidecars] == ["postgres", "redis", "qdrant"]
    assert plan.app_depends_on == {
        "postgres": "service_healthy",
        "redis": "service_started",
        "qdrant": "service_started",
    }
    reasons = {item.service: item.reason for item in plan.not_started}
    assert set(reasons) == {"frontend", "langfuse"}
    assert reasons["frontend"].startswith("a frontend") and reasons["langfuse"].startswith("tracing")
    assert plan.extra_hosts == dict.fromkeys(["api", "postgres", "redis", "qdrant"], "127.0.0.1")


def test_environment_is_interpolated_from_the_env_file_beside_the_compose_file(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, RAG_STACK, files={".env": "POSTGRES_PASSWORD=hunter2\n", "db/init.sql": ""})
    postgres = plan.sidecar("postgres")
    assert postgres.environment == {"POSTGRES_USER": "rag", "POSTGRES_PASSWORD": "hunter2", "POSTGRES_DB": "rag"}
    # `$$` is a literal dollar for the container's shell, as Compose passes it on
    assert postgres.healthcheck is not None
    assert postgres.healthcheck.test == ["/bin/sh", "-c", "pg_isready -U ${POSTGRES_USER} -d rag"]


def test_the_host_environment_never_enters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-the-host")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host")
    compose = only_service(
        "    image: postgres:16\n    environment:\n      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-dev}\n      - OPENAI_API_KEY\n"
    )
    plan = plan_for(tmp_path, compose)
    assert plan.sidecar("db").environment == {"POSTGRES_PASSWORD": "dev"}
    assert any("OPENAI_API_KEY" in note for note in plan.notes)


def test_environment_in_list_form_with_an_env_file_under_it(tmp_path: Path) -> None:
    compose = only_service(
        "    image: postgres:16\n    env_file: [db.env]\n    environment:\n      - POSTGRES_DB=app\n      - POSTGRES_USER=app\n"
    )
    plan = plan_for(tmp_path, compose, files={"db.env": "POSTGRES_PASSWORD='s3cret'\nPOSTGRES_DB=overridden\n"})
    assert plan.sidecar("db").environment == {
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_DB": "app",
        "POSTGRES_USER": "app",
    }


def test_ports_come_from_the_command_then_ports_then_the_image_default(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    depends_on: [cache, db, vectors, search]\n"
        "  cache:\n    image: redis:7\n    command: [redis-server, --port, '6380']\n"
        "  db:\n    image: postgres:16\n    ports: ['127.0.0.1:5433:5432']\n"
        "  vectors:\n    image: qdrant/qdrant\n"
        "  search:\n    image: example/search:1\n    expose: ['7000-7001']\n"
    )
    plan = plan_for(tmp_path, compose)
    assert plan.sidecar("cache").ports == [6380] and plan.sidecar("cache").port_source == "command"
    assert plan.sidecar("db").ports == [5432]
    assert plan.sidecar("vectors").ports == [6333, 6334]
    assert plan.sidecar("search").ports == [7000, 7001]


def test_unquoted_port_pairs_stay_ports_not_base_60_numbers(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, only_service("    image: redis:7\n    ports:\n      - 6379:6379\n"))
    assert plan.sidecar("db").ports == [6379]


def test_commands_and_entrypoints_in_string_and_list_form(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    depends_on: [a, b]\n"
        "  a:\n    image: redis:7\n    command: redis-server --save '' --appendonly no\n"
        "  b:\n    image: postgres:16\n    entrypoint: [docker-entrypoint.sh]\n    command: [postgres, -c, max_connections=50]\n"
    )
    plan = plan_for(tmp_path, compose)
    assert plan.sidecar("a").command == ["redis-server", "--save", "", "--appendonly", "no"]
    assert plan.sidecar("a").entrypoint is None
    assert plan.sidecar("b").entrypoint == ["docker-entrypoint.sh"]
    assert plan.sidecar("b").command == ["postgres", "-c", "max_connections=50"]


@pytest.mark.parametrize(
    ("healthcheck", "expected"),
    [
        (
            'test: ["CMD", "pg_isready", "-U", "postgres"]\n      interval: 10s\n      retries: 5',
            Healthcheck(test=["pg_isready", "-U", "postgres"], interval_s=10.0, retries=5),
        ),
        (
            'test: ["CMD-SHELL", "redis-cli ping | grep PONG"]\n      timeout: 500ms\n      start_period: 1m',
            Healthcheck(test=["/bin/sh", "-c", "redis-cli ping | grep PONG"], timeout_s=0.5, start_period_s=60.0),
        ),
        (
            "test: pg_isready -h localhost\n      interval: 1m30s",
            Healthcheck(test=["/bin/sh", "-c", "pg_isready -h localhost"], interval_s=90.0),
        ),
    ],
    ids=["CMD", "CMD-SHELL", "string"],
)
def test_healthchecks_in_each_syntax(tmp_path: Path, healthcheck: str, expected: Healthcheck) -> None:
    plan = plan_for(tmp_path, only_service(f"    image: postgres:16\n    healthcheck:\n      {healthcheck}\n"))
    assert plan.sidecar("db").healthcheck == expected


@pytest.mark.parametrize("disabled", ['test: ["NONE"]', "disable: true"])
def test_a_disabled_healthcheck_falls_back_to_the_port(tmp_path: Path, disabled: str) -> None:
    plan = plan_for(tmp_path, only_service(f"    image: postgres:16\n    healthcheck:\n      {disabled}\n"))
    db = plan.sidecar("db")
    assert db.healthcheck is None and db.healthcheck_disabled and db.ports == [5432]


def test_compose_durations() -> None:
    assert parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("250ms") == 0.25
    assert parse_duration("30") == 30.0
    assert parse_duration("soon") is None


def test_pgvector_with_an_init_sql_and_a_seed_directory_is_copied_in_and_data_goes_to_tmpfs(tmp_path: Path) -> None:
    compose = only_service(
        "    image: pgvector/pgvector:pg16\n"
        "    volumes:\n"
        "      - db-data:/var/lib/postgresql/data\n"
        "      - ./init.sql:/docker-entrypoint-initdb.d/00-init.sql:ro\n"
        "      - ./db/seed:/docker-entrypoint-initdb.d/seed\n"
        "      - ./pgdata:/var/lib/postgresql/backup\n"
        "      - type: tmpfs\n        target: /scratch\n"
        "volumes:\n  db-data: {}\n"
    )
    files = {"init.sql": "CREATE EXTENSION vector;", "db/seed/01.sql": "insert into t values (1);"}
    plan = plan_for(tmp_path, compose, files=files)
    db = plan.sidecar("db")
    assert not plan.refused, plan.refusals
    assert [(item.source, item.target, item.directory) for item in db.copied] == [
        ("init.sql", "/docker-entrypoint-initdb.d/00-init.sql", False),
        ("db/seed", "/docker-entrypoint-initdb.d/seed", True),
    ]
    assert db.data_dirs == ["/var/lib/postgresql/data", "/var/lib/postgresql/backup", "/scratch"]


def test_a_mapping_depends_on_reaches_services_through_other_services_in_start_order(tmp_path: Path) -> None:
    compose = (
        "services:\n"
        "  api:\n    build: .\n    depends_on:\n      worker:\n        condition: service_started\n"
        "  worker:\n    image: example/worker:1\n    depends_on:\n"
        "      migrate:\n        condition: service_completed_successfully\n"
        "      db:\n        condition: service_healthy\n"
        "  migrate:\n    image: example/migrate:1\n    depends_on: [db]\n"
        "  db:\n    image: postgres:16\n"
    )
    plan = plan_for(tmp_path, compose)
    assert [sidecar.name for sidecar in plan.sidecars] == ["db", "migrate", "worker"]
    assert plan.sidecar("worker").depends_on == {
        "migrate": "service_completed_successfully",
        "db": "service_healthy",
    }


def test_a_sidecar_built_from_the_repository_is_recorded_for_the_layer_path(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    depends_on: [embedder]\n"
        "  embedder:\n    build:\n      context: ./services/embedder\n      dockerfile: Dockerfile.cpu\n"
        "      args:\n        MODEL: small\n    ports: ['9000:9000']\n"
    )
    (tmp_path / "services/embedder").mkdir(parents=True)
    build = plan_for(tmp_path, compose).sidecar("embedder").build
    assert build is not None
    assert (build.context, build.dockerfile, build.args) == ("services/embedder", "Dockerfile.cpu", {"MODEL": "small"})


def test_names_aliases_and_container_names_resolve_to_loopback(tmp_path: Path) -> None:
    compose = only_service(
        "    image: redis:7\n    container_name: rag-redis\n    networks:\n      backend:\n        aliases: [cache]\n"
    )
    assert plan_for(tmp_path, compose).extra_hosts == {
        "api": "127.0.0.1",
        "db": "127.0.0.1",
        "rag-redis": "127.0.0.1",
        "cache": "127.0.0.1",
    }


# --- refusals, one each ------------------------------------------------------------------------------------


def refusal(tmp_path: Path, lines: str, files: dict[str, str] | None = None) -> str:
    plan = plan_for(tmp_path, only_service("    image: postgres:16\n" + lines), files=files)
    assert plan.refused, "expected a refusal"
    assert len(plan.refusals) == 1, plan.refusals
    return plan.refusals[0].reason


def test_privileged_is_refused(tmp_path: Path) -> None:
    assert "privileged" in refusal(tmp_path, "    privileged: true\n")


def test_network_mode_host_is_refused(tmp_path: Path) -> None:
    assert "network_mode 'host'" in refusal(tmp_path, "    network_mode: host\n")


def test_any_network_mode_is_refused(tmp_path: Path) -> None:
    assert "network_mode 'bridge'" in refusal(tmp_path, "    network_mode: bridge\n")


def test_pid_host_is_refused(tmp_path: Path) -> None:
    assert "pid: host" in refusal(tmp_path, "    pid: host\n")


def test_ipc_host_is_refused(tmp_path: Path) -> None:
    assert "ipc: host" in refusal(tmp_path, "    ipc: host\n")


def test_devices_are_refused(tmp_path: Path) -> None:
    assert "/dev/fuse" in refusal(tmp_path, "    devices:\n      - /dev/fuse:/dev/fuse\n")


def test_cap_add_is_refused(tmp_path: Path) -> None:
    assert "SYS_ADMIN" in refusal(tmp_path, "    cap_add:\n      - SYS_ADMIN\n      - CHOWN\n")


def test_apparmor_unconfined_is_refused(tmp_path: Path) -> None:
    assert "apparmor:unconfined" in refusal(tmp_path, "    security_opt:\n      - apparmor:unconfined\n")


def test_seccomp_unconfined_is_refused(tmp_path: Path) -> None:
    assert "seccomp=unconfined" in refusal(tmp_path, "    security_opt: [seccomp=unconfined]\n")


def test_a_bind_mount_outside_the_repository_is_refused(tmp_path: Path) -> None:
    assert "outside the repository" in refusal(tmp_path, "    volumes:\n      - /etc:/host-etc:ro\n")


def test_a_relative_bind_mount_that_climbs_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    assert "outside the repository" in refusal(root, "    volumes:\n      - ../secrets:/run/secrets\n")


def test_a_symlink_that_leads_out_of_the_repository_is_refused(tmp_path: Path, host_secret: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "init.sql").symlink_to(host_secret)
    reason = refusal(root, "    volumes:\n      - ./init.sql:/docker-entrypoint-initdb.d/init.sql\n")
    assert "outside the repository" in reason


def test_the_docker_socket_is_refused(tmp_path: Path) -> None:
    reason = refusal(tmp_path, "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n")
    assert "Docker socket" in reason


def test_userns_mode_host_is_refused(tmp_path: Path) -> None:
    assert "userns_mode: host" in refusal(tmp_path, "    userns_mode: host\n")


def test_two_services_on_one_port_are_refused_naming_both(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    depends_on: [cache, queue]\n"
        "  cache:\n    image: redis:7\n  queue:\n    image: valkey/valkey:8\n"
    )
    plan = plan_for(tmp_path, compose)
    [only] = plan.refusals
    assert "cache and queue both listen on port 6379" in only.reason


def test_a_sidecar_on_the_apps_port_is_refused_naming_the_app(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n    depends_on: [chroma]\n"
        "  chroma:\n    image: chromadb/chroma:0.5.20\n"
    )
    [only] = plan_for(tmp_path, compose).refusals
    assert "api and chroma both listen on port 8000" in only.reason


def test_a_dependency_cycle_is_refused_not_a_crash(tmp_path: Path) -> None:
    compose = (
        "services:\n  api:\n    build: .\n    depends_on: [a]\n"
        "  a:\n    image: redis:7\n    depends_on: [b]\n  b:\n    image: postgres:16\n    depends_on: [a]\n"
    )
    assert "a → b → a" in plan_for(tmp_path, compose).refusals[0].reason


def test_an_unreadable_compose_file_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "services: [unclosed\n")
    assert plan.refused and "defines no service 'api'" in plan.refusals[0].reason


def test_a_billion_laughs_is_a_refusal_not_a_hang(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    text = "x-bomb:\n" + "".join(f"  {line}\n" for line in lines)
    text += "services:\n  api:\n    build: .\n    depends_on: [db]\n  db:\n    image: postgres:16\n    command: *a8\n"
    assert load_compose(text) == {}
    assert plan_for(tmp_path, text).refused
