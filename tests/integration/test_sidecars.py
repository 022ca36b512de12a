"""Companion services as pod-style sidecars, on real Docker: a candidate's compose file, Viva's offline service
images (built once per session), a hardened app container with no network, and sidecars in its network
namespace. The app talks to them the way an app does (the PostgreSQL wire protocol with SCRAM, RESP, a real
chromadb client); isolation is shown structurally (interfaces, routes, a host loopback listener that cannot be
reached); no packet goes anywhere but loopback and no registry is ever asked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandboxes import docker_pod
from sandboxes.deps import ParsedRequirements
from sandboxes.docker_backend import OWNER_LABEL, PID_LABEL, docker_client, reap
from sandboxes.docker_pod import POD_LABEL, Pod, PodStartFailed, start_sidecars
from sandboxes.images import build_offline_base
from sandboxes.layers import dependency_layer
from sandboxes.pod import PodPlan, ServiceLimits, load_compose, sidecars_from_compose
from sandboxes.service_images import (
    CHROMA_VERSION,
    OFFLINE_IMAGES,
    SERVICE_KINDS,
    ServiceImagePolicy,
    build_service_image,
    resolve_pod_images,
    service_image_current,
)
from sandboxes.settings import SandboxSettings

pytestmark = [pytest.mark.docker, pytest.mark.slow]
BASE = SandboxSettings().offline_image
OWNER = "viva-sidecar-test"
LIMITS = ServiceLimits(memory_mb=384, pids=128, data_mb=128)
FAST = 0.05
"""Healthcheck intervals and start periods are multiplied by this: a `5s` interval polls every 0.25 s here."""


@pytest.fixture(scope="session")
def client() -> Any:
    return docker_client()


@pytest.fixture(scope="session")
def service_images(client: Any, tmp_path_factory: pytest.TempPathFactory) -> ServiceImagePolicy:
    """Viva's offline postgres, redis and chroma images, built once (and again only when their recipe changed),
    served by the operator's table as an air-gapped deployment would. Pull policy `never`: no registry exists."""
    try:
        client.images.get(BASE)
    except Exception:
        build_offline_base(client, BASE)
    cache = tmp_path_factory.mktemp("service-wheels")
    for kind in SERVICE_KINDS:
        if not service_image_current(client, kind):
            build_service_image(client, kind, base_image=BASE, cache_dir=cache)
    table = {
        "postgres:16": OFFLINE_IMAGES["postgres"],
        "redis:7": OFFLINE_IMAGES["redis"],
        "chromadb/chroma": OFFLINE_IMAGES["chroma"],
    }
    return ServiceImagePolicy(pull_policy="never", table=table)


def write_repository(root: Path, compose: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docker-compose.yml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def plan_of(root: Path, app: str = "api") -> PodPlan:
    plan = sidecars_from_compose(load_compose((root / "docker-compose.yml").read_text()), app, root, root)
    assert not plan.refused, plan.refusals
    return plan


@contextmanager
def app_container(client: Any, plan: PodPlan, image: str = BASE, owner: str = OWNER) -> Iterator[Any]:
    """The app's container as DockerSandbox makes it (non-root, no capabilities, no new privileges, network none,
    read-only root, capped), with the plan's extra_hosts — the argument DockerSandbox is gaining."""
    container = client.containers.run(
        image,
        ["sleep", "infinity"],
        detach=True,
        name=f"viva-sidecar-test-app-{os.getpid()}-{time.monotonic_ns() % 10**8}",
        user="1000:1000",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        network_mode="none",
        read_only=True,
        tmpfs={"/work": "rw,exec,nosuid,nodev,size=64m,uid=1000,gid=1000", "/tmp": "rw,nosuid,nodev,size=16m"},
        mem_limit="512m",
        memswap_limit="512m",
        pids_limit=128,
        environment={"HOME": "/work"},
        extra_hosts=plan.extra_hosts,
        labels={OWNER_LABEL: owner, PID_LABEL: str(os.getpid())},
        init=True,
    )
    try:
        yield container
    finally:
        container.remove(force=True, v=True)


@contextmanager
def pod_for(client: Any, policy: ServiceImagePolicy, plan: PodPlan, app: Any, **options: Any) -> Iterator[Pod]:
    images, missing = resolve_pod_images(client, plan, policy)
    assert not missing, missing
    pod = start_sidecars(
        client, plan, app.id, OWNER, LIMITS, images={name: item.image for name, item in images.items()},
        start_budget_s=options.pop("start_budget_s", 90.0), time_scale=options.pop("time_scale", FAST),
    )  # fmt: skip
    try:
        yield pod
    finally:
        pod.remove()


def start_failure(client: Any, policy: ServiceImagePolicy, plan: PodPlan, **options: Any) -> PodStartFailed:
    """What start_sidecars raised for `plan`, beside a fresh app container; and that it left no sidecar behind."""
    with app_container(client, plan) as app:
        with pytest.raises(PodStartFailed) as failed, pod_for(client, policy, plan, app, **options):
            pass
        assert not client.containers.list(all=True, filters={"label": f"{POD_LABEL}={app.id}"}), "nothing is left"
    return failed.value


def python_in(container: Any, script: str, *args: str) -> tuple[int, str]:
    code, output = container.exec_run(["python3", "-c", script, *args], user="1000:1000")
    return code, output.decode(errors="replace")


# A PostgreSQL client in the standard library only: startup, SCRAM-SHA-256, one simple query, rows printed.
PG_CLIENT = r"""
import base64, hashlib, hmac, os, socket, struct, sys
host, user, password, database, query = sys.argv[1:6]
s = socket.create_connection((host, 5432), 5)
def exact(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk: raise SystemExit("connection closed")
        data += chunk
    return data
def read():
    kind = exact(1); size = struct.unpack("!I", exact(4))[0]
    return kind, exact(size - 4)
def send(kind, body): s.sendall(kind + struct.pack("!I", len(body) + 4) + body)
params = f"user\0{user}\0database\0{database}\0\0".encode()
s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
kind, body = read()
if kind == b"E": raise SystemExit(body.decode(errors="replace"))
assert struct.unpack("!I", body[:4])[0] == 10, body
nonce = base64.b64encode(os.urandom(18)).decode()
first_bare = f"n=,r={nonce}"
send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first_bare) + 3) + ("n,," + first_bare).encode())
kind, body = read()
server_first = body[4:].decode()
fields = dict(item.split("=", 1) for item in server_first.split(","))
salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
final = f"c=biws,r={fields['r']}"
signature = hmac.new(hashlib.sha256(client_key).digest(), f"{first_bare},{server_first},{final}".encode(), "sha256").digest()
proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
send(b"p", f"{final},p={proof}".encode())
while True:
    kind, body = read()
    if kind == b"E": raise SystemExit("ERROR " + body.decode(errors="replace"))
    if kind == b"Z": break
send(b"Q", query.encode() + b"\0")
while True:
    kind, body = read()
    if kind == b"E": raise SystemExit("ERROR " + body.decode(errors="replace"))
    if kind == b"D":
        count, offset, row = struct.unpack("!H", body[:2])[0], 2, []
        for _ in range(count):
            size = struct.unpack("!i", body[offset:offset + 4])[0]; offset += 4
            row.append(body[offset:offset + size].decode()); offset += size
        print("|".join(row))
    if kind == b"Z": break
"""

REDIS_PING = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 6379), 5)
s.sendall(b"PING\r\n")
print(s.recv(64).decode().strip())
"""

RAG_REPOSITORY = """\
    services:
      api:
        build: .
        ports: ["8000:8000"]
        depends_on:
          db:
            condition: service_healthy
          cache:
            condition: service_started
      db:
        image: postgres:16
        environment:
          POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-rag-secret}
          POSTGRES_USER: rag
          POSTGRES_DB: ragdb
        volumes:
          - pgdata:/var/lib/postgresql/data
          - ./db/init.sql:/docker-entrypoint-initdb.d/init.sql
        healthcheck:
          test: ["CMD-SHELL", "pg_isready -U rag -d ragdb"]
          interval: 5s
          timeout: 5s
          retries: 10
      cache:
        image: redis:7-alpine
        command: redis-server --appendonly yes
      frontend:
        build: ./frontend
        depends_on: [api]
    volumes:
      pgdata:
"""
INIT_SQL = """\
CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL);
INSERT INTO documents (title) VALUES ('refund policy'), ('shipping times');
"""


@pytest.fixture
def rag(tmp_path: Path) -> PodPlan:
    return plan_of(write_repository(tmp_path / "repo", RAG_REPOSITORY, {"db/init.sql": INIT_SQL}))


# --- the app reaches its companions on localhost ---------------------------------------------------------


def test_the_app_queries_postgres_over_localhost_and_the_init_sql_ran(client, service_images, rag) -> None:
    with app_container(client, rag) as app, pod_for(client, service_images, rag, app):
        code, output = python_in(
            app, PG_CLIENT, "127.0.0.1", "rag", "rag-secret", "ragdb", "SELECT title FROM documents ORDER BY id"
        )
        assert (code, output.split()) == (0, ["refund", "policy", "shipping", "times"]), output
        code, by_name = python_in(app, PG_CLIENT, "db", "rag", "rag-secret", "ragdb", "SELECT current_user")
        assert (code, by_name.strip()) == (0, "rag"), "the service name resolves to the pod's loopback"
        code, refused = python_in(app, PG_CLIENT, "db", "rag", "wrong", "ragdb", "SELECT 1")
        assert code != 0 and "password authentication failed" in refused, "TCP needs the password, as over a network"


def test_the_app_pings_redis_over_localhost(client, service_images, rag) -> None:
    with app_container(client, rag) as app, pod_for(client, service_images, rag, app):
        assert python_in(app, REDIS_PING, "127.0.0.1") == (0, "+PONG\n")
        assert python_in(app, REDIS_PING, "cache") == (0, "+PONG\n")


def test_services_the_app_does_not_need_are_not_started(client, service_images, rag) -> None:
    assert [item.service for item in rag.not_started] == ["frontend"]
    with app_container(client, rag) as app, pod_for(client, service_images, rag, app) as pod:
        running = client.containers.list(filters={"label": f"{POD_LABEL}={app.id}"})
        assert sorted(container.labels["viva.service"] for container in running) == ["cache", "db"]
    assert {started.service: started.ready for started in pod.started} == {
        "db": "healthy",
        "cache": "listening on 6379",
    }


# --- the official-image entrypoint under the stated capabilities ------------------------------------------


def test_the_entrypoint_drops_to_its_user_under_the_small_capability_set(client, service_images, rag) -> None:
    with app_container(client, rag) as app, pod_for(client, service_images, rag, app) as pod:
        for service, user in (("db", "postgres"), ("cache", "redis")):
            status = pod.container(service).exec_run(["cat", "/proc/1/status"]).output.decode()
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            expected_uid = pod.container(service).exec_run(["id", "-u", user]).output.decode().strip()
            assert fields["Uid"].split()[0] == expected_uid, f"{service} runs as {user}"
            assert fields["NoNewPrivs"].strip() == "1"
            assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0, "no capability is left"


def test_without_the_capabilities_the_same_image_cannot_start(client, service_images, rag, monkeypatch) -> None:
    monkeypatch.setattr(docker_pod, "SIDECAR_CAPABILITIES", ())
    failure = start_failure(client, service_images, rag)
    assert failure.service == "db" and failure.kind == "exited"
    assert "Operation not permitted" in failure.log_tail, failure.log_tail


# --- readiness and start failures --------------------------------------------------------------------------


def test_dependency_order_a_migration_waits_for_healthy_and_the_app_for_completion(
    client, service_images, tmp_path
) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on:
              migrate:
                condition: service_completed_successfully
          migrate:
            image: postgres:16
            entrypoint: ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE migrated (id int)"]
            environment:
              PGPASSWORD: pw
            depends_on:
              db:
                condition: service_healthy
          db:
            image: postgres:16
            ports: ["5432"]
            environment:
              POSTGRES_PASSWORD: pw
            healthcheck:
              test: pg_isready -h 127.0.0.1
              interval: 2s
              start_period: 10s
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    # Half time: a 5 s start period and 1 s polls, longer than the database's first initialisation takes here.
    with app_container(client, plan) as app, pod_for(client, service_images, plan, app, time_scale=0.5) as pod:
        code, output = python_in(app, PG_CLIENT, "db", "postgres", "pw", "postgres", "SELECT count(*) FROM migrated")
        assert (code, output.strip()) == (0, "0"), output
        assert pod.check() == [], "a one-shot that exited 0 is done, not down"


def test_a_sidecar_that_exits_during_start_is_reported_with_its_log(client, service_images, tmp_path) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on: [db]
          db:
            image: postgres:16
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    failure = start_failure(client, service_images, plan)
    assert failure.kind == "exited" and failure.exit_code == 1
    assert "superuser password is not specified" in failure.log_tail


def test_a_healthcheck_that_never_passes_is_unhealthy_after_its_retries(client, service_images, tmp_path) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on:
              cache: {condition: service_healthy}
          cache:
            image: redis:7
            healthcheck:
              test: ["CMD", "redis-cli", "-p", "6390", "ping"]
              interval: 2s
              retries: 3
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    started = time.monotonic()
    failure = start_failure(client, service_images, plan)
    assert failure.kind == "unhealthy" and "3 times in a row" in failure.reason
    assert not failure.probe_missing
    assert time.monotonic() - started < 30


def test_a_healthcheck_whose_program_the_image_lacks_is_says_so(client, service_images, tmp_path) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on: [cache]
          cache:
            image: redis:7
            healthcheck:
              test: ["CMD", "curl", "-f", "http://localhost:6379"]
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    failure = start_failure(client, service_images, plan)
    assert failure.probe_missing, "a substitute image's missing tool is Viva's limitation, not the candidate's"


@pytest.fixture(scope="module")
def shell_less_image(client: Any, service_images: ServiceImagePolicy) -> Iterator[str]:
    """A distroless-style image: python3 and no `sh` at all, as a candidate's `gcr.io/distroless/python3` is."""
    repository, version = "viva-test-no-shell", str(os.getpid())
    maker = client.containers.run(
        BASE, ["rm", "-f", "/bin/sh", "/bin/dash", "/usr/bin/sh", "/usr/bin/dash"], user="0", detach=True
    )
    try:
        assert maker.wait(timeout=60)["StatusCode"] == 0
        maker.commit(repository=repository, tag=version)
    finally:
        maker.remove(force=True)
    yield f"{repository}:{version}"
    client.images.remove(f"{repository}:{version}", force=True)


def test_a_healthcheck_in_an_image_without_a_shell_still_decides_readiness(
    client, service_images, shell_less_image, tmp_path
) -> None:
    """Viva batches scaled-down healthchecks in a loop of the sidecar's own shell; an image with none gets one exec
    per check instead, and still turns healthy once its check passes (and not before)."""
    compose = """\
        services:
          api:
            build: .
            depends_on:
              worker: {condition: service_healthy}
          worker:
            image: distroless/worker:1
            command: ["python3", "-c", "import time; time.sleep(2); open('/tmp/ready', 'w').close(); time.sleep(600)"]
            healthcheck:
              test: ["CMD", "python3", "-c", "import os, sys; sys.exit(0 if os.path.exists('/tmp/ready') else 1)"]
              interval: 5s
              retries: 30
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    policy = ServiceImagePolicy(
        pull_policy="never", table={**service_images.table, "distroless/worker:1": shell_less_image}
    )
    with app_container(client, plan) as app:
        began = time.monotonic()
        with pod_for(client, policy, plan, app) as pod:
            waited = time.monotonic() - began
            no_shell = pod.container("worker").exec_run(["sh", "-c", "true"]).exit_code
        (started,) = pod.started
    assert no_shell in {126, 127}, "the image really has no shell"
    assert started.service == "worker" and started.ready == "healthy"
    assert waited >= 2.0, "healthy only once the check passed"


def test_a_sidecar_that_is_late_fails_within_the_startup_budget(client, service_images, tmp_path) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on: [slow]
          slow:
            image: redis:7
            entrypoint: ["sleep", "600"]
            ports: ["6379"]
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    started = time.monotonic()
    failure = start_failure(client, service_images, plan, start_budget_s=3.0)
    assert failure.kind == "timeout" and "VIVA_SANDBOX_SERVICE_START_S" in failure.reason
    assert time.monotonic() - started < 15


# --- isolation, death, cleanup ------------------------------------------------------------------------------


def test_a_sidecar_has_only_loopback_and_cannot_reach_the_host(client, service_images, rag) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        with app_container(client, rag) as app, pod_for(client, service_images, rag, app) as pod:
            cache = pod.container("cache")
            devices = cache.exec_run(["cat", "/proc/net/dev"]).output.decode()
            routes = cache.exec_run(["cat", "/proc/net/route"]).output.decode()
            connect = cache.exec_run(
                [
                    "bash",
                    "-c",
                    f"timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo CONNECTED || echo refused",
                ]
            ).output.decode()
    finally:
        listener.close()
    assert [line.split(":")[0].strip() for line in devices.splitlines()[2:]] == ["lo"]
    assert routes.splitlines()[1:] == [], "no route at all"
    assert "refused" in connect and "CONNECTED" not in connect


def test_a_sidecar_killed_mid_grading_is_reported_promptly(client, service_images, rag) -> None:
    with app_container(client, rag) as app, pod_for(client, service_images, rag, app) as pod:
        assert pod.check() == []
        pod.container("cache").kill()
        started = time.monotonic()
        [down] = pod.check()
        assert time.monotonic() - started < 2
    assert down.service == "cache" and down.exit_code == 137 and down.status == "exited"


def test_remove_takes_everything_and_can_be_called_twice(client, service_images, rag) -> None:
    with app_container(client, rag) as app:
        with pod_for(client, service_images, rag, app) as pod:
            copies = pod._copies_dir
            assert copies is not None and any(copies.rglob("init.sql"))
            assert len(client.containers.list(all=True, filters={"label": f"{POD_LABEL}={app.id}"})) == 2
            pod.remove()
            pod.remove()
        assert not client.containers.list(all=True, filters={"label": f"{POD_LABEL}={app.id}"})
        assert not copies.exists()


def test_every_app_instance_gets_its_own_pod(client, service_images, rag) -> None:
    write = r"""
import socket, sys
s = socket.create_connection(("cache", 6379), 5)
s.sendall(sys.argv[1].encode())
print(s.recv(64).decode().strip())
"""
    with (
        app_container(client, rag) as first,
        app_container(client, rag) as second,
        pod_for(client, service_images, rag, first),
        pod_for(client, service_images, rag, second),
    ):
        assert python_in(first, write, "SET shared first\r\n") == (0, "+OK\n")
        assert python_in(second, write, "GET shared\r\n") == (0, "$-1\n"), "the second pod has its own redis"


def test_reap_removes_a_pod_left_by_a_dead_process(client, service_images, rag, tmp_path) -> None:
    owner = "viva-sidecar-crash-test"
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            import docker
            from sandboxes.docker_pod import start_sidecars
            from sandboxes.pod import ServiceLimits, load_compose, sidecars_from_compose
            from pathlib import Path
            client = docker.from_env()
            root = Path({str(tmp_path / "repo")!r})
            plan = sidecars_from_compose(load_compose((root / "docker-compose.yml").read_text()), "api", root, root)
            app = client.containers.run({BASE!r}, ["sleep", "infinity"], detach=True, network_mode="none",
                user="1000:1000", cap_drop=["ALL"], read_only=True, extra_hosts=plan.extra_hosts,
                labels={{"viva.owner": {owner!r}, "viva.pid": str(__import__("os").getpid())}})
            start_sidecars(client, plan, app.id, {owner!r}, ServiceLimits(),
                images={{"db": {OFFLINE_IMAGES["postgres"]!r}, "cache": {OFFLINE_IMAGES["redis"]!r}}}, time_scale=0.05)
            print(app.id, flush=True)
            time.sleep(120)
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    app_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    left = client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})
    assert len(left) == 3, "the crash must leave the app and both sidecars behind"
    removed = reap(client, owner=owner)
    assert len(removed) == 3
    assert not client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})
    assert app_id


# --- chroma with a real client ------------------------------------------------------------------------------

CHROMA_CLIENT = r"""
import chromadb
client = chromadb.HttpClient(host="vectors", port=8000)
collection = client.create_collection("docs")
collection.add(
    ids=["refund", "shipping", "returns"],
    documents=["Refunds take five days.", "Shipping takes two days.", "Returns are free."],
    embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.0, 0.7]],
)
found = collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
print(",".join(found["ids"][0]))
"""


def test_a_chroma_client_in_the_app_stores_and_queries_supplied_embeddings(
    client, service_images, tmp_path, tmp_path_factory
) -> None:
    compose = """\
        services:
          api:
            build: .
            depends_on: [vectors]
          vectors:
            image: chromadb/chroma:1.0.15
            volumes:
              - chroma-data:/data
        volumes:
          chroma-data:
    """
    plan = plan_of(write_repository(tmp_path / "repo", compose))
    layer = dependency_layer(
        client, BASE, ParsedRequirements([f"chromadb-client=={CHROMA_VERSION}"], []), tmp_path_factory.mktemp("layer")
    )
    assert layer.install_ok, layer.log_tail
    with app_container(client, plan, image=layer.image) as app, pod_for(client, service_images, plan, app):
        code, output = app.exec_run(
            ["/var/tmp/viva-venv/bin/python", "-c", CHROMA_CLIENT], user="1000:1000", environment={"HOME": "/work"}
        )
    assert (code, output.decode().strip().splitlines()[-1]) == (0, "refund,returns"), output.decode()
