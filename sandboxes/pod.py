"""Companion services as a pod: which services of a compose file run beside the app, and how — pure data, no Docker.

The app container has no network but loopback. Its companions (a database, a cache, a vector store) join that
network namespace, as the containers of a Kubernetes pod do, so the app reaches `localhost:5432` (and `db:5432`,
since every service name resolves to 127.0.0.1) and nothing else exists. `sidecars_from_compose` reads a compose
file's services into a `PodPlan`: the app's `depends_on` closure in start order, every other service listed as
not started with the reason, and a refusal for each thing a sidecar asks for that would weaken the sandbox or that
a pod cannot give (two services on one port). A plan with refusals is not run; it never raises.

Interpolation (`${VAR:-default}`, `$$`) is sandboxes/variables.py's, as start detection reads compose files, with
variables from the `.env` file beside the compose file only — the host's environment never enters.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import msgspec
import yaml

from sandboxes.variables import substitute

Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]
CONDITIONS: frozenset[str] = frozenset(Condition.__args__)  # type: ignore[attr-defined]

MAX_COMPOSE_CHARS = 1_000_000
MAX_COPY_BYTES = 100_000_000
"""Init files and directories copied into sidecars, all together; a seed dump larger than this is refused."""
MAX_COPY_FILES = 5_000

KNOWN_PORTS: dict[str, tuple[int, ...]] = {
    "postgres": (5432,), "postgis": (5432,), "pgvector": (5432,), "timescaledb": (5432,), "redis": (6379,),
    "redis-stack": (6379, 8001), "redis-stack-server": (6379,), "valkey": (6379,), "qdrant": (6333, 6334),
    "chroma": (8000,), "mongo": (27017,), "mysql": (3306,), "mariadb": (3306,), "memcached": (11211,),
    "elasticsearch": (9200,), "opensearch": (9200,), "weaviate": (8080,), "milvus": (19530,), "minio": (9000,),
    "rabbitmq": (5672,), "neo4j": (7474, 7687), "ollama": (11434,), "meilisearch": (7700,), "typesense": (8108,),
    "langfuse": (3000,), "clickhouse-server": (8123, 9000), "etcd": (2379,),
}  # fmt: skip
"""Ports an image listens on by default, by the last part of its repository name (`qdrant/qdrant` → qdrant)."""

GRANTABLE_CAPABILITIES = frozenset({"CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER"})
"""The capabilities every sidecar gets anyway (sandboxes/docker_pod.py says why); a `cap_add` of these is moot."""

INIT_TARGET = re.compile(r"initdb|entrypoint-init|/docker-entrypoint|^/etc/|conf|/config", re.I)
"""Container paths where a mounted repository directory is configuration or seed data, to be copied in."""
DOCKER_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "dockershim.sock", "crio.sock")
WEAKENING_SECURITY_OPTS = re.compile(
    r"^(?:apparmor[:=]unconfined|seccomp[:=]unconfined|label[:=]disable|systempaths[:=]unconfined|"
    r"no-new-privileges[:=]false)$",
    re.I,
)
_NULL, _MERGE = "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PORT_FLAG = re.compile(r"^(?:--port|-p)(?:=(\d{1,5}))?$")
_KINDS_NOT_NEEDED = (
    (re.compile(r"front|ui$|^ui|web-?app|next|react|vue|streamlit|gradio", re.I), "a frontend"),
    (re.compile(r"langfuse|phoenix|jaeger|zipkin|otel|tempo|tracing", re.I), "tracing"),
    (re.compile(r"grafana|prometheus|kibana|dashboard|portainer|metabase", re.I), "a dashboard"),
    (re.compile(r"pgadmin|adminer|redis-?commander|redisinsight|mongo-express|phpmyadmin", re.I), "an admin tool"),
    (re.compile(r"nginx|traefik|caddy|haproxy|proxy", re.I), "a proxy"),
)


class Healthcheck(msgspec.Struct, frozen=True, kw_only=True):
    """A compose healthcheck, ready for `exec`: `test` is an argument vector (CMD-SHELL became `/bin/sh -c`)."""

    test: list[str]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    start_interval_s: float = 5.0


class CopiedPath(msgspec.Struct, frozen=True):
    """A file or directory of the repository that a sidecar reads (an init.sql, a seed directory, a config file):
    copied in read-only, never the repository itself bind-mounted."""

    source: str
    """Relative to the repository root, POSIX."""
    target: str
    directory: bool


class SidecarBuild(msgspec.Struct, frozen=True, kw_only=True):
    """A sidecar built from the repository (`build:`), for the dependency-layer path to build."""

    context: str
    """Relative to the repository root ("" is the root)."""
    dockerfile: str = "Dockerfile"
    """Relative to the context."""
    target: str | None = None
    args: dict[str, str] = msgspec.field(default_factory=dict)


class Sidecar(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    image: str | None = None
    build: SidecarBuild | None = None
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    command: list[str] | None = None
    """Exec form, as Compose runs a string command (split like a shell would, but no shell runs it)."""
    entrypoint: list[str] | None = None
    user: str | None = None
    working_dir: str | None = None
    ports: list[int] = msgspec.field(default_factory=list)
    """Container-side ports it listens on: the command's own, else `ports:`/`expose:`, else the image's default."""
    port_source: str = ""
    healthcheck: Healthcheck | None = None
    healthcheck_disabled: bool = False
    """`test: [NONE]` or `disable: true`: readiness falls back to the port, as with no healthcheck."""
    data_dirs: list[str] = msgspec.field(default_factory=list)
    """Container paths that become tmpfs: named and anonymous volumes, bind mounts of data directories, `tmpfs:`."""
    copied: list[CopiedPath] = msgspec.field(default_factory=list)
    depends_on: dict[str, Condition] = msgspec.field(default_factory=dict)
    aliases: list[str] = msgspec.field(default_factory=list)
    """Other names the app may use for it (`container_name`, `hostname`, network aliases)."""


class NotStarted(msgspec.Struct, frozen=True):
    service: str
    reason: str


class Refusal(msgspec.Struct, frozen=True):
    """Something a service asks for that a sandboxed pod will not give; the plan is then not run (not_run)."""

    service: str
    reason: str


class PodPlan(msgspec.Struct, frozen=True, kw_only=True):
    app_service: str
    repo_root: str
    sidecars: list[Sidecar] = msgspec.field(default_factory=list)
    """In start order: every sidecar after the ones it depends on."""
    app_depends_on: dict[str, Condition] = msgspec.field(default_factory=dict)
    not_started: list[NotStarted] = msgspec.field(default_factory=list)
    refusals: list[Refusal] = msgspec.field(default_factory=list)
    extra_hosts: dict[str, str] = msgspec.field(default_factory=dict)
    """For the app container: every sidecar's names (and the app's own) → 127.0.0.1. Sidecars share its
    /etc/hosts, since they join its network namespace."""
    notes: list[str] = msgspec.field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    def sidecar(self, name: str) -> Sidecar:
        return next(sidecar for sidecar in self.sidecars if sidecar.name == name)


class ServiceLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Caps for each sidecar (VIVA_SANDBOX_SERVICE_*)."""

    memory_mb: int = 512
    """Memory, no swap; its tmpfs data directories count against it."""
    cpus: float = 1.0
    pids: int = 256
    data_mb: int = 256
    """Size of each tmpfs data directory."""
    tmp_mb: int = 64


# Reading a compose file.


_LOADER_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ComposeLoader(_LOADER_BASE):  # type: ignore[misc] # the base is one of two loader classes
    """Plain scalars stay text, as Compose reads them (`5432:5432` is not the base-60 number YAML 1.1 makes of it,
    `on` is not True); null and merge keys are still resolved."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag in (_NULL, _MERGE)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


MAX_NODES = 20_000
"""Values visited in one compose file: aliases can make a small file a huge graph (a "billion laughs")."""


def _too_big(value: object) -> bool:
    pending, seen = [value], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > MAX_NODES:
            return True
        if isinstance(item, Mapping):
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False


def load_compose(text: str) -> dict[str, Any]:
    """A compose file as plain data for `sidecars_from_compose`: scalars as written (text), `<<` merges applied.
    An unreadable or oversized file is an empty mapping (the plan then says there is no such service)."""
    if len(text) > MAX_COMPOSE_CHARS or "\x00" in text:
        return {}
    try:
        loaded = yaml.load(text, Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader whose scalars all stay text
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) and not _too_big(loaded) else {}


# The plan.


def sidecars_from_compose(
    compose: Mapping[str, Any],
    app_service: str,
    repo_root: Path,
    compose_dir: Path,
    *,
    app_port: int | None = None,
) -> PodPlan:
    """The pod for `app_service`: its depends_on closure as sidecars in start order, the rest not started, and a
    refusal for everything a sidecar may not have. `compose_dir` is where the compose file lies (relative paths
    in it are from there); nothing outside `repo_root` is read. `app_port`, when the caller knows the app's port,
    joins the check that no two services of the pod listen on one port."""
    repo_root = repo_root.resolve()
    compose_dir = compose_dir.resolve()
    plan = _Planner(repo_root, compose_dir)
    services = compose.get("services")
    if _too_big(services):
        plan.refuse(app_service, f"the compose file has more than {MAX_NODES} values (aliases?); not read")
        return plan.result(app_service, {}, [])
    if not isinstance(services, Mapping) or app_service not in services:
        plan.refuse(app_service, f"the compose file defines no service {app_service!r}")
        return plan.result(app_service, {}, [])
    variables = _env_file_values(_read_inside(repo_root, compose_dir / ".env") or "")
    raw: dict[str, Mapping[str, Any]] = {}
    for name, value in services.items():
        interpolated = _interpolated(value, variables)
        if isinstance(interpolated, Mapping):
            raw[str(name)] = interpolated
        else:
            plan.notes.append(f"service {name} is not a mapping; left out")
    if app_service not in raw:
        plan.refuse(app_service, f"service {app_service!r} is not a mapping")
        return plan.result(app_service, {}, [])
    app_depends = _depends_on(raw[app_service], plan, app_service)
    order = plan.closure(app_service, raw, app_depends)
    sidecars = [plan.sidecar(name, raw[name], variables) for name in order]
    for name, definition in raw.items():
        if name != app_service and name not in order:
            plan.not_started.append(NotStarted(name, _not_needed(name, definition, app_service)))
    plan.check_ports(app_service, _declared_ports(raw[app_service]) or ([app_port] if app_port else []), sidecars)
    return plan.result(app_service, app_depends, sidecars)


class _Planner:
    def __init__(self, repo_root: Path, compose_dir: Path) -> None:
        self.repo_root = repo_root
        self.compose_dir = compose_dir
        self.refusals: list[Refusal] = []
        self.not_started: list[NotStarted] = []
        self.notes: list[str] = []
        self.copied_bytes = 0
        self.copied_files = 0

    def refuse(self, service: str, reason: str) -> None:
        self.refusals.append(Refusal(service, reason))

    def result(self, app: str, app_depends: dict[str, Condition], sidecars: list[Sidecar]) -> PodPlan:
        names = [app, *(name for sidecar in sidecars for name in (sidecar.name, *sidecar.aliases))]
        hosts = {name: "127.0.0.1" for name in names if _HOSTNAME.match(name)}
        return PodPlan(
            app_service=app,
            repo_root=str(self.repo_root),
            sidecars=sidecars,
            app_depends_on=app_depends,
            not_started=self.not_started,
            refusals=self.refusals,
            extra_hosts=hosts,
            notes=self.notes,
        )

    def closure(self, app: str, raw: Mapping[str, Any], app_depends: dict[str, Condition]) -> list[str]:
        """The services the app needs, directly or through another, each after those it depends on."""
        order: list[str] = []
        visiting: list[str] = []

        def visit(name: str, needed_by: str) -> None:
            if name in order or name == app:
                return
            if name in visiting:
                cycle = " → ".join([*visiting[visiting.index(name) :], name])
                self.refuse(name, f"depends_on goes round in a circle ({cycle}); Compose refuses it too")
                return
            definition = raw.get(name)
            if not isinstance(definition, Mapping):
                self.notes.append(f"{needed_by} depends on {name}, which the compose file does not define")
                return
            visiting.append(name)
            for dependency in _depends_on(definition, self, name):
                visit(dependency, name)
            visiting.pop()
            order.append(name)

        for name in app_depends:
            visit(name, app)
        return order

    def sidecar(self, name: str, definition: Mapping[str, Any], variables: Mapping[str, str]) -> Sidecar:
        self._refusals(name, definition)
        image = _text(definition.get("image"))
        build = self._build(name, definition.get("build"))
        if image is None and build is None:
            self.refuse(name, f"{name} has neither `image` nor `build`: nothing says what to run")
        command = _run(definition.get("command"))
        entrypoint = _run(definition.get("entrypoint"))
        # An entrypoint of its own (psql for a migration, a script) is not the image's server: no default port.
        ports, port_source = _ports(definition, command, image if entrypoint is None else None)
        data_dirs, copied = self._volumes(name, definition)
        healthcheck, disabled = _healthcheck(definition.get("healthcheck"), self.notes, name)
        return Sidecar(
            name=name,
            image=image,
            build=build,
            environment=self._environment(name, definition, variables),
            command=command,
            entrypoint=entrypoint,
            user=_text(definition.get("user")),
            working_dir=_text(definition.get("working_dir")),
            ports=ports,
            port_source=port_source,
            healthcheck=healthcheck,
            healthcheck_disabled=disabled,
            data_dirs=data_dirs,
            copied=copied,
            depends_on=_depends_on(definition, self, name),
            aliases=_aliases(definition),
        )

    def _refusals(self, name: str, definition: Mapping[str, Any]) -> None:
        if _text(definition.get("privileged")) in {"true", "True", "yes"} or definition.get("privileged") is True:
            self.refuse(name, f"{name} asks to run privileged (every device and capability of the host)")
        if (mode := _text(definition.get("network_mode"))) is not None:
            self.refuse(name, f"{name} sets network_mode {mode!r}: a sidecar joins the app's network namespace only")
        for key in ("pid", "ipc", "uts", "cgroup", "userns_mode"):
            value = _text(definition.get(key)) or ""
            if value == "host" or value.startswith(("container:", "service:")):
                self.refuse(name, f"{name} sets {key}: {value} (it would share a namespace outside its own pod)")
        if definition.get("devices"):
            self.refuse(name, f"{name} asks for host devices ({_listed(definition.get('devices'))})")
        added = [str(cap).upper().removeprefix("CAP_") for cap in _list(definition.get("cap_add"))]
        extra = [cap for cap in added if cap not in GRANTABLE_CAPABILITIES]
        if extra:
            self.refuse(name, f"{name} adds capabilities ({', '.join(extra)}) beyond what a database needs")
        weakening = [
            str(opt) for opt in _list(definition.get("security_opt")) if WEAKENING_SECURITY_OPTS.match(str(opt))
        ]
        if weakening:
            self.refuse(name, f"{name} weakens its confinement (security_opt {', '.join(weakening)})")

    def _build(self, name: str, value: object) -> SidecarBuild | None:
        if isinstance(value, str):
            value = {"context": value}
        if not isinstance(value, Mapping):
            return None
        context = _text(value.get("context")) or "."
        if "://" in context or context.startswith("git@"):
            self.refuse(name, f"{name} builds from a remote context ({context}); only the repository is built")
            return None
        inside = self._inside(self.compose_dir / context)
        if inside is None:
            self.refuse(name, f"{name} builds from {context}, outside the repository")
            return None
        args = value.get("args")
        pairs = _mapping_or_list(args) if args is not None else {}
        return SidecarBuild(
            context=inside,
            dockerfile=_text(value.get("dockerfile")) or "Dockerfile",
            target=_text(value.get("target")),
            args={key: item for key, item in pairs.items() if item is not None},
        )

    def _inside(self, path: Path) -> str | None:
        """`path` relative to the repository root (symlinks followed, as Docker would), or None outside it."""
        resolved = Path(os.path.realpath(path))
        if resolved != self.repo_root and self.repo_root not in resolved.parents:
            return None
        relative = resolved.relative_to(self.repo_root).as_posix()
        return "" if relative == "." else relative

    def _environment(self, name: str, definition: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
        """env_file entries in order, then `environment` over them; a name without a value takes `.env`'s."""
        environment: dict[str, str] = {}
        for entry in _list(definition.get("env_file")):
            path = _text(entry.get("path")) if isinstance(entry, Mapping) else _text(entry)
            if path is None:
                continue
            text = _read_inside(self.repo_root, self.compose_dir / path)
            if text is None:
                text = self._example_instead(name, path)
            environment.update(_env_file_values(text or ""))
        for key, value in _mapping_or_list(definition.get("environment")).items():
            if value is not None:
                environment[key] = value
            elif key in variables:
                environment[key] = variables[key]
            else:
                self.notes.append(f"{name}: environment {key} takes its value from the host, which Viva never passes")
        return environment

    def _example_instead(self, name: str, path: str) -> str | None:
        directory = (self.compose_dir / path).parent
        for example in (".env.example", ".env.sample", ".env.template"):
            text = _read_inside(self.repo_root, directory / example)
            if text is not None:
                self.notes.append(f"{name}: env file {path} is not in the repository; read {example} beside it")
                return text
        self.notes.append(f"{name}: env file {path} is not in the repository")
        return None

    def _volumes(self, name: str, definition: Mapping[str, Any]) -> tuple[list[str], list[CopiedPath]]:
        data_dirs: list[str] = [
            target for item in _list(definition.get("tmpfs")) if (target := str(item).split(":", 1)[0]).startswith("/")
        ]
        copied: list[CopiedPath] = []
        for entry in _list(definition.get("volumes")):
            kind, source, written_target, read_only = _volume(entry)
            if written_target is None or not written_target.startswith("/"):
                self.notes.append(f"{name}: volume {entry!r} is not understood; left out")
                continue
            target = str(PurePosixPath(written_target))
            if kind == "bind" and source is not None:
                found = self._bind(name, source, target, read_only)
                if isinstance(found, CopiedPath):
                    copied.append(found)
                elif found:
                    data_dirs.append(target)
            else:
                data_dirs.append(target)
        return list(dict.fromkeys(data_dirs)), copied

    def _bind(self, name: str, source: str, target: str, read_only: bool) -> CopiedPath | bool:
        """A bind mount: the Docker socket and anything outside the repository refused (False); a repository file,
        or a directory mounted for configuration or seeding, copied in; any other directory a tmpfs (True)."""
        source = source.replace("${PWD}", str(self.compose_dir)).replace("$PWD", str(self.compose_dir))
        if any(source.rstrip("/").endswith(socket) for socket in DOCKER_SOCKETS):
            self.refuse(name, f"{name} mounts the Docker socket ({source}): it would control the host's containers")
            return False
        host = Path(os.path.expanduser(source)) if source.startswith("~") else self.compose_dir / source
        inside = self._inside(host)
        if inside is None:
            self.refuse(name, f"{name} bind-mounts {source} → {target}, outside the repository")
            return False
        path = self.repo_root / inside
        if path.is_file() or (path.is_dir() and (read_only or INIT_TARGET.search(target))):
            return self._copy(name, CopiedPath(inside, target, path.is_dir()))
        if path.is_dir() and any(child.name != ".gitkeep" for child in path.iterdir()):
            self.notes.append(f"{name}: {source} → {target} is a data directory; it starts empty (a tmpfs)")
        return True

    def _copy(self, name: str, copied: CopiedPath) -> CopiedPath | bool:
        path = self.repo_root / copied.source
        files = [path] if not copied.directory else [item for item in path.rglob("*") if item.is_file()]
        self.copied_files += len(files)
        self.copied_bytes += sum(item.stat().st_size for item in files if not item.is_symlink())
        if self.copied_bytes > MAX_COPY_BYTES or self.copied_files > MAX_COPY_FILES:
            self.refuse(
                name,
                f"{name} mounts {copied.source}, which takes the files copied into the pod past "
                f"{MAX_COPY_BYTES // 1_000_000} MB or {MAX_COPY_FILES} files",
            )
            return False
        return copied

    def check_ports(self, app: str, app_ports: list[int], sidecars: list[Sidecar]) -> None:
        """In one network namespace two servers cannot listen on one port (Compose gave each its own address)."""
        owner = dict.fromkeys(app_ports, app)
        for sidecar in sidecars:
            for port in sidecar.ports:
                if port in owner and owner[port] != sidecar.name:
                    self.refuse(
                        sidecar.name,
                        f"{owner[port]} and {sidecar.name} both listen on port {port}; in one pod (one network "
                        "namespace) only one can",
                    )
                owner.setdefault(port, sidecar.name)


# Fields, from plain data.


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _listed(value: object) -> str:
    return ", ".join(str(item) for item in _list(value))[:200]


def _mapping_or_list(value: object) -> dict[str, str | None]:
    """`environment`/`args` as a mapping or a list of `NAME=value`; a name alone has no value (None)."""
    pairs: dict[str, str | None] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            pairs[str(key)] = _text(item) if item is not None else None
    elif isinstance(value, list):
        for entry in value:
            key, equals, written = str(entry).partition("=")
            if key.strip():
                pairs[key.strip()] = written if equals else None
    return pairs


def _run(value: object) -> list[str] | None:
    """A command or entrypoint in exec form: a list as written, a string split as Compose splits it."""
    if isinstance(value, list):
        return [str(item) for item in value]
    text = _text(value)
    if text is None:
        return None
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes: Compose would refuse; a shell may still make sense of it
        return ["/bin/sh", "-c", text]


def _depends_on(definition: Mapping[str, Any], planner: _Planner, name: str) -> dict[str, Condition]:
    """`depends_on` as a list (service_started) or a mapping with conditions; `links` count as started."""
    value = definition.get("depends_on")
    found: dict[str, Condition] = {}
    if isinstance(value, Mapping):
        for other, settings in value.items():
            written = _text(settings.get("condition")) if isinstance(settings, Mapping) else None
            condition = written or "service_started"
            if condition not in CONDITIONS:
                planner.notes.append(f"{name}: depends_on {other} has an unknown condition {condition!r}; started")
                condition = "service_started"
            found[str(other)] = condition  # type: ignore[assignment] # checked against CONDITIONS just above
    else:
        found.update(dict.fromkeys((str(other) for other in _list(value)), "service_started"))
    for link in _list(definition.get("links")):
        found.setdefault(str(link).split(":", 1)[0], "service_started")
    return found


def _aliases(definition: Mapping[str, Any]) -> list[str]:
    names = [_text(definition.get("container_name")), _text(definition.get("hostname"))]
    networks = definition.get("networks")
    if isinstance(networks, Mapping):
        for settings in networks.values():
            if isinstance(settings, Mapping):
                names += [_text(alias) for alias in _list(settings.get("aliases"))]
    return list(dict.fromkeys(name for name in names if name))


def _volume(entry: object) -> tuple[str, str | None, str | None, bool]:
    """(kind: bind/volume/tmpfs, source, target, read-only) of a short or long `volumes` entry."""
    if isinstance(entry, Mapping):
        kind = _text(entry.get("type")) or "volume"
        read_only = _text(entry.get("read_only")) in {"true", "True"}
        return kind, _text(entry.get("source")), _text(entry.get("target")), read_only
    parts = str(entry).split(":")
    if len(parts) == 1:
        return "volume", None, parts[0], False
    source, target = parts[0], parts[1]
    read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
    return kind, source, target, read_only


def _declared_ports(definition: Mapping[str, Any]) -> list[int]:
    """Container sides of `ports:` ("5432", "5433:5432", "127.0.0.1:5433:5432", "6333-6334:6333-6334", "5432/udp",
    a long entry's `target`) and of `expose:`."""
    ports: list[int] = []
    for entry in [*_list(definition.get("ports")), *_list(definition.get("expose"))]:
        text = _text(entry.get("target")) if isinstance(entry, Mapping) else _text(entry)
        if text is None:
            continue
        container = text.split("/", 1)[0].rsplit(":", 1)[-1].strip()
        first, _, last = container.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ports += [port for port in range(int(first), int(last or first) + 1) if 0 < port < 65536][:100]
    return list(dict.fromkeys(ports))


def _ports(definition: Mapping[str, Any], command: list[str] | None, image: str | None) -> tuple[list[int], str]:
    """The ports a sidecar listens on and where that was read: its command's `--port N`/`-p N`/`-c port=N`, else
    `ports:`/`expose:`, else the image's known default."""
    words = command or []
    for index, word in enumerate(words):
        match = _PORT_FLAG.match(word)
        value = match[1] if match and match[1] else (words[index + 1] if match and index + 1 < len(words) else None)
        if value is None and word.startswith("port="):
            value = word.removeprefix("port=")
        if value is not None and value.isdigit() and 0 < int(value) < 65536:
            return [int(value)], "command"
    declared = _declared_ports(definition)
    if declared:
        return declared, "ports"
    repository = (image or "").split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
    known = KNOWN_PORTS.get(repository)
    return (list(known), f"the default of {repository}") if known else ([], "")


def _healthcheck(value: object, notes: list[str], name: str) -> tuple[Healthcheck | None, bool]:
    if not isinstance(value, Mapping):
        return None, False
    if _text(value.get("disable")) in {"true", "True"}:
        return None, True
    test = value.get("test")
    argv: list[str]
    if isinstance(test, list) and test:
        form, rest = str(test[0]).upper(), [str(item) for item in test[1:]]
        if form == "NONE":
            return None, True
        if form == "CMD":
            argv = rest
        elif form == "CMD-SHELL":
            argv = ["/bin/sh", "-c", " ".join(rest)]
        else:
            notes.append(f"{name}: healthcheck test {test!r} starts with neither CMD, CMD-SHELL nor NONE; ignored")
            return None, False
    elif (text := _text(test)) is not None:
        argv = ["/bin/sh", "-c", text]
    else:
        return None, False

    def seconds(key: str, default: float) -> float:
        written = _text(value.get(key))
        parsed = parse_duration(written) if written is not None else None
        if written is not None and parsed is None:
            notes.append(f"{name}: healthcheck {key} {written!r} is not a duration; {default:g}s used")
        return default if parsed is None else parsed

    retries = _text(value.get("retries"))
    return (
        Healthcheck(
            test=argv,
            interval_s=seconds("interval", 30.0),
            timeout_s=seconds("timeout", 30.0),
            retries=int(retries) if retries is not None and retries.isdigit() else 3,
            start_period_s=seconds("start_period", 0.0),
            start_interval_s=seconds("start_interval", 5.0),
        ),
        False,
    )


def parse_duration(text: str) -> float | None:
    """Seconds in a compose duration (`1m30s`, `500ms`, `10s`; a bare number is seconds), or None."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _not_needed(name: str, definition: object, app: str) -> str:
    image = _text(definition.get("image")) if isinstance(definition, Mapping) else None
    for pattern, kind in _KINDS_NOT_NEEDED:
        if pattern.search(name) or (image and pattern.search(image.rsplit("/", 1)[-1])):
            return f"{kind}, and {app} does not depend on it (Viva starts only the app's depends_on closure)"
    return f"{app} does not depend on it, directly or through another service (Viva starts only what the app needs)"


# Files and variables.


def _read_inside(repo_root: Path, path: Path) -> str | None:
    """A text file of the repository (symlinks may not lead out), or None."""
    resolved = Path(os.path.realpath(path))
    if repo_root not in resolved.parents or not resolved.is_file() or resolved.stat().st_size > MAX_COMPOSE_CHARS:
        return None
    try:
        return resolved.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)")


def _env_file_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file (`export ` prefixes, quotes and `#` comments allowed), as compose.py reads
    them."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ENV_LINE.fullmatch(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        raw = match[2].strip()
        if raw[:1] in {"'", '"'} and raw.find(raw[0], 1) > 0:
            inner = raw[1 : raw.find(raw[0], 1)]
            values[match[1]] = inner if raw[0] == "'" else inner.replace("\\n", "\n")
        else:
            values[match[1]] = re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()
    return values


def _interpolated(value: object, variables: Mapping[str, str]) -> object:
    """Every string in a service's definition interpolated, as Compose does before reading it."""
    if isinstance(value, str):
        return interpolate(value, variables)
    if isinstance(value, list):
        return [_interpolated(item, variables) for item in value]
    if isinstance(value, Mapping):
        return {key: _interpolated(item, variables) for key, item in value.items()}
    return value


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose interpolation (sandboxes/variables.py, the rules start detection reads compose files by)."""
    return substitute(text, values, double_dollar=True)
