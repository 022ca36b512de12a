"""deploy/compose.yaml and deploy/Dockerfile: the deployment of web + PostgreSQL + workers each beside its own Docker
engine (docs/SCALING.md).

Nothing here can run the file (this machine has no registry for the `postgres` and `docker:dind` images, and no
compose); tests/server/test_many_workers.py runs the same topology as plain processes. What these tests hold are the
invariants that make the file right, each of which a plausible edit would break: every worker is bound to an engine
of its own over a Unix socket; every path a worker hands its engine to bind-mount is on a volume the engine mounts
at the same path; web and workers share one snapshot directory; the settings named are real Viva settings and
select Procrastinate on the compose file's PostgreSQL; a stopping worker has time to drain; no secret reaches an
engine; the image copies every package the project installs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from server.settings import load_settings

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
OPERATOR = {"VIVA_POSTGRES_PASSWORD": "a-password"}
"""What the operator sets before `docker compose up`."""


def substitute(value: Any, environ: dict[str, str]) -> Any:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` in every string of the file."""
    if isinstance(value, dict):
        return {key: substitute(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        if name in environ and environ[name] != "":
            return environ[name]
        if operator == ":?":
            raise KeyError(f"{name}: {word}")
        return word if operator == ":-" else ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return substitute(yaml.safe_load(COMPOSE.read_text()), OPERATOR)


def services(compose: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    def is_kind(service: dict[str, Any]) -> bool:
        command = " ".join(service.get("command", []))
        if kind == "worker":
            return command.startswith("viva worker")
        if kind == "engine":
            return command.startswith("dockerd")
        return command.startswith("viva serve")

    return {name: service for name, service in compose["services"].items() if is_kind(service)}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount point inside the container → the named volume (or host path) mounted there."""
    found = {}
    for item in service.get("volumes", []):
        source, target = item.split(":")[:2]
        found[target] = source
    return found


def volume_at(service: dict[str, Any], path: str) -> tuple[str, str] | None:
    """The (volume, mount point) a path inside the container lives on: the deepest mount point holding it."""
    holding = [
        (point, volume)
        for point, volume in mounts(service).items()
        if PurePosixPath(path) == PurePosixPath(point) or PurePosixPath(point) in PurePosixPath(path).parents
    ]
    if not holding:
        return None
    point, volume = max(holding, key=lambda pair: len(pair[0]))
    return volume, point


def test_the_operator_must_set_the_database_password() -> None:
    with pytest.raises(KeyError, match="VIVA_POSTGRES_PASSWORD"):
        substitute(yaml.safe_load(COMPOSE.read_text()), {})


def test_one_web_process_serves_without_running_gradings_and_there_are_workers(compose: dict[str, Any]) -> None:
    web = services(compose, "web")
    assert len(web) == 1
    (command,) = [service["command"] for service in web.values()]
    assert "--no-worker" in command
    assert len(services(compose, "worker")) >= 2


def test_every_process_reads_real_settings_that_put_procrastinate_on_the_compose_files_postgres(
    compose: dict[str, Any],
) -> None:
    processes = {**services(compose, "web"), **services(compose, "worker")}
    for name, service in processes.items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        settings = load_settings(environment)  # an unknown or mistyped VIVA_* name fails here, naming it
        url = settings.database.url or ""
        assert url.startswith("postgresql+asyncpg://"), (name, url)
        host = url.split("@", 1)[1].split(":", 1)[0].split("/", 1)[0]
        assert host in compose["services"] and "postgres" in compose["services"][host]["image"], (name, host)
        assert settings.server.job_engine == "procrastinate", name
        assert host in service["depends_on"], f"{name} may start before its database"


def test_each_worker_is_bound_to_an_engine_of_its_own_over_a_unix_socket(compose: dict[str, Any]) -> None:
    engines = services(compose, "engine")
    bound: dict[str, str] = {}
    for name, worker in services(compose, "worker").items():
        docker_host = worker["environment"]["DOCKER_HOST"]
        assert docker_host.startswith("unix://"), f"{name}: a worker runs beside its engine, not against {docker_host}"
        socket = docker_host.removeprefix("unix://")
        on = volume_at(worker, socket)
        assert on is not None, f"{name}: its engine's socket {socket} is on no volume"
        volume, point = on
        serving = [
            engine_name
            for engine_name, engine in engines.items()
            if mounts(engine).get(point) == volume and f"--host={docker_host}" in engine["command"]
        ]
        assert len(serving) == 1, f"{name}: {len(serving)} engines listen on its socket"
        assert serving[0] not in bound.values(), f"{name} and {bound} share the engine {serving[0]}"
        bound[name] = serving[0]
        assert serving[0] in worker["depends_on"]
    assert len(bound) == len(services(compose, "worker"))


def test_every_path_a_worker_hands_its_engine_is_at_the_same_path_in_the_engine(compose: dict[str, Any]) -> None:
    """Sandboxes bind-mount the attempt's scratch directory, the gateway's sockets, the wheel cache and temporary
    copies by their paths on the worker: the engine resolves those paths in its own filesystem."""
    engines = services(compose, "engine")
    for name, worker in services(compose, "worker").items():
        environment = worker["environment"]
        socket = environment["DOCKER_HOST"].removeprefix("unix://")
        on = volume_at(worker, socket)
        assert on is not None
        engine = next(engine for engine in engines.values() if mounts(engine).get(on[1]) == on[0])
        for variable in ("VIVA_DATA_DIR", "VIVA_SANDBOX_CACHE_DIR", "TMPDIR"):
            path = environment[variable]
            held = volume_at(worker, path)
            assert held is not None, f"{name}: {variable}={path} is on no volume (lost with the container)"
            volume, point = held
            assert mounts(engine).get(point) == volume, f"{name}: its engine does not see {variable} at {path}"


def test_web_and_workers_share_one_snapshot_directory_and_workers_keep_their_own_data(compose: dict[str, Any]) -> None:
    processes = {**services(compose, "web"), **services(compose, "worker")}
    shared = {
        name: volume_at(service, service["environment"]["VIVA_SHARED_DIR"]) for name, service in processes.items()
    }
    assert None not in shared.values() and len({on[0] for on in shared.values() if on}) == 1, shared
    own = {name: volume_at(service, service["environment"]["VIVA_DATA_DIR"]) for name, service in processes.items()}
    assert None not in own.values() and len({on[0] for on in own.values() if on}) == len(own), own


def test_a_stopping_worker_has_time_to_drain(compose: dict[str, Any]) -> None:
    for name, worker in services(compose, "worker").items():
        drain = load_settings(dict(worker["environment"])).server.worker_drain_seconds
        grace = worker.get("stop_grace_period", "10s")
        match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", grace)
        assert match, grace
        seconds = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
        assert seconds > drain, f"{name}: killed after {seconds} s, before its {drain} s drain ends"


def test_no_secret_reaches_an_engine_and_only_engines_are_privileged(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        is_engine = name in services(compose, "engine")
        assert bool(service.get("privileged")) == is_engine, name
        if is_engine:
            environment = service.get("environment", {})
            assert not any(key.startswith("VIVA_") or "KEY" in key for key in environment), name
            assert not any(OPERATOR["VIVA_POSTGRES_PASSWORD"] in str(value) for value in environment.values())


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    used = {source for service in compose["services"].values() for source in mounts(service).values()}
    named = {source for source in used if not source.startswith(("/", ".", "~"))}
    assert named <= set(compose["volumes"]), named - set(compose["volumes"])


def test_the_image_copies_every_package_the_project_installs_and_passes_signals_on() -> None:
    text = DOCKERFILE.read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for package in (pattern.rstrip("*") for pattern in packages["include"]):
        assert re.search(rf"^COPY {package} ", text, re.MULTILINE), f"the image leaves out {package}/"
    entrypoint = next(line for line in text.splitlines() if line.startswith("ENTRYPOINT"))
    assert "tini" in entrypoint and "exec" in entrypoint  # SIGTERM reaches viva (a worker drains) and not a shell
