"""How a compose file says the app starts: which service is the app, and the command Docker Compose would run.

`parse_compose` reads the services (YAML nodes, so every service keeps its line), bounded against hostile input;
`app_service` picks the service that is this repository's app rather than a database beside it; `compose_start`
combines that service's command and entrypoint with the Dockerfile it builds from, as Compose does. Paths in the
result are repository-relative POSIX; `read` is the only way anything else is read.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec
import yaml

from grader.model import Evidence
from grader.profile.model import StartCandidate
from grader.profile.starts.dockerfile import (
    SH,
    Dockerfile,
    ImageConfig,
    RunValue,
    image_config,
    parse_dockerfile,
    python_version,
    repo_dir,
    run_command,
    run_notes,
    run_port,
    run_value,
)
from sandboxes.variables import substitute, unset_references

MAX_COMPOSE_CHARS = 1_000_000
MAX_NODES = 20_000
"""YAML nodes visited per file: aliases can make a small file a huge graph (a "billion laughs")."""
MAX_DEPTH = 64
INFRASTRUCTURE = (
    "postgres", "postgis", "pgvector", "mysql", "mariadb", "mongo", "redis", "memcached", "qdrant", "chroma",
    "weaviate", "milvus", "elasticsearch", "opensearch", "ollama", "minio", "rabbitmq", "kafka", "zookeeper",
    "nginx", "traefik", "grafana", "prometheus", "jaeger", "langfuse", "phoenix", "neo4j",
)  # fmt: skip
"""Images (and service names) that are a companion of the app, never the app itself."""
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template")

_APP_NAME = re.compile(r"(?:^|[-_.])(?:api|app|web|backend|server|service)(?:$|[-_.\d])", re.I)
_FRONTEND_NAME = re.compile(r"(?:^|[-_.])(?:frontend|ui|client)(?:$|[-_.\d])", re.I)
_WEB_SERVER = re.compile(r"\b(?:uvicorn|gunicorn|hypercorn|flask|fastapi|python[\d.]*)\b")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ComposeService(msgspec.Struct, frozen=True, kw_only=True):
    """One service as written. Paths are repository-relative POSIX; `command`, `entrypoint`, `environment` values
    and `working_dir` are as written (compose_start interpolates them with the `.env` file); ports, build and
    volumes are interpolated with their defaults only."""

    name: str
    line: int
    """The line of the service's key."""
    build_context: str | None = None
    """The build context relative to the repository root ("" is the root); a URL stays as written."""
    dockerfile: str | None = None
    """The Dockerfile, relative to the build context (None: "Dockerfile")."""
    target: str | None = None
    image: str | None = None
    command: str | list[str] | None = None
    command_line: int | None = None
    entrypoint: str | list[str] | None = None
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    inherited_env: list[str] = msgspec.field(default_factory=list)
    """`environment` names given without a value: Compose takes them from the host (or `.env`)."""
    env_files: list[str] = msgspec.field(default_factory=list)
    """Repository-relative paths, in order."""
    ports: list[int] = msgspec.field(default_factory=list)
    """Container ports (the side the app listens on)."""
    working_dir: str | None = None
    depends_on: list[str] = msgspec.field(default_factory=list)
    profiles: list[str] = msgspec.field(default_factory=list)
    bind_mounts: list[tuple[str, str]] = msgspec.field(default_factory=list)
    """(repository-relative source, container path) for `volumes` that mount a directory of the repository."""
    service_excerpt: str = ""
    command_excerpt: str = ""


class ComposeFile(msgspec.Struct, frozen=True):
    path: str
    services: list[ComposeService]
    notes: list[str]


class _TooBig(Exception):
    """Raised while reading YAML nodes when a file's graph exceeds MAX_NODES or MAX_DEPTH."""


@dataclass
class _Budget:
    left: int = MAX_NODES

    def spend(self, depth: int) -> None:
        self.left -= 1
        if self.left < 0 or depth > MAX_DEPTH:
            raise _TooBig


def parse_compose(path: str, text: str) -> ComposeFile:
    """The services of a compose file; what cannot be read becomes a note, never an error."""
    if len(text) > MAX_COMPOSE_CHARS:
        return ComposeFile(path, [], [f"{path}: longer than {MAX_COMPOSE_CHARS} characters; not read"])
    if "\x00" in text:
        return ComposeFile(path, [], [f"{path}: binary content; not read"])
    try:
        root = yaml.compose(text, Loader=_LOADER)
        return _compose_file(path, root, text.split("\n"))
    except _TooBig:
        return ComposeFile(path, [], [f"{path}: more than {MAX_NODES} YAML nodes (aliases?) or too deep; not read"])
    except Exception as error:  # hostile input: any failure of the YAML reader is a note, never a crash
        reason = str(error).strip().split("\n", 1)[0][:160]
        return ComposeFile(path, [], [f"{path}: not readable YAML ({type(error).__name__}: {reason})"])


def _compose_file(path: str, root: yaml.Node | None, lines: list[str]) -> ComposeFile:
    budget = _Budget()
    top = _pairs(root, budget, 0) if isinstance(root, yaml.MappingNode) else {}
    services_node = top.get("services", (None, None))[1]
    if not isinstance(services_node, yaml.MappingNode):
        return ComposeFile(path, [], [f"{path}: no `services` mapping"])
    directory = posixpath.dirname(path)
    services: list[ComposeService] = []
    notes: list[str] = []
    for name, (key_node, value_node) in _pairs(services_node, budget, 1).items():
        if not isinstance(value_node, yaml.MappingNode):
            notes.append(f"{path}:{_line(key_node)}: service {name} is not a mapping")
            continue
        nodes = _pairs(value_node, budget, 2)
        fields = {key: _plain(node, budget, 3) for key, (_, node) in nodes.items()}
        command_node = nodes.get("command", (None, None))[1]
        services.append(
            _service(name, _line(key_node), fields, command_node=command_node, directory=directory, lines=lines)
        )
    return ComposeFile(path, services, notes)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _pairs(node: yaml.MappingNode, budget: _Budget, depth: int) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping's entries by key, YAML merge keys (`<<: *defaults`) applied: explicit keys win, then earlier
    merged mappings."""
    merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        budget.spend(depth)
        if key_node.tag == _MERGE_TAG:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for key, pair in _pairs(source, budget, depth + 1).items():
                        merged.setdefault(key, pair)
        else:
            explicit[str(_plain(key_node, budget, depth + 1))] = (key_node, value_node)
    return {**merged, **explicit}


def _plain(node: yaml.Node, budget: _Budget, depth: int) -> object:
    """A node as plain data; every scalar stays the text it was written as (`8000` is "8000"), booleans as
    "true"/"false" (what Compose passes on), null as None."""
    budget.spend(depth)
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return None
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() in {"true", "false"}:
            return node.value.lower()
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, budget, depth + 1) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return {key: _plain(value, budget, depth + 1) for key, (_, value) in _pairs(node, budget, depth).items()}
    return None


# One service's fields, from plain data.


def _service(
    name: str, line: int, fields: dict[str, object], *, command_node: yaml.Node | None, directory: str, lines: list[str]
) -> ComposeService:
    context, dockerfile, target = _build(fields.get("build"), directory)
    environment, inherited = _environment(fields.get("environment"))
    command_line = _line(command_node) if command_node is not None else None
    return ComposeService(
        name=name,
        line=line,
        build_context=context,
        dockerfile=dockerfile,
        target=target,
        image=_text(fields.get("image")),
        command=_run(fields.get("command")),
        command_line=command_line,
        entrypoint=_run(fields.get("entrypoint")),
        environment=environment,
        inherited_env=inherited,
        env_files=_env_files(fields.get("env_file"), directory),
        ports=_ports(fields.get("ports")),
        working_dir=_text(fields.get("working_dir")),
        depends_on=_names(fields.get("depends_on")),
        profiles=_names(fields.get("profiles")),
        bind_mounts=_bind_mounts(fields.get("volumes"), directory),
        service_excerpt=_excerpt(lines, line),
        command_excerpt=_excerpt(lines, command_line) if command_line else "",
    )


def _excerpt(lines: list[str], line: int) -> str:
    return lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _defaults(value: str) -> str:
    """Interpolated with no variables known: `${X:-default}` gives its default, `${X}` nothing."""
    return substitute(value, {}, double_dollar=True)


def _repo_relative(directory: str, path: str) -> str:
    """A path written relative to the compose file's directory, relative to the repository root instead."""
    normal = posixpath.normpath(posixpath.join(directory, path))
    return "" if normal == "." else normal


def _build(value: object, directory: str) -> tuple[str | None, str | None, str | None]:
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, dict):
        return None, None, None
    context = _defaults(_text(value.get("context")) or ".")
    if "://" not in context and not context.startswith("git@"):
        context = _repo_relative(directory, context)
    dockerfile, target = _text(value.get("dockerfile")), _text(value.get("target"))
    return context, _defaults(dockerfile) if dockerfile else None, _defaults(target) if target else None


def _run(value: object) -> str | list[str] | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return None


def _environment(value: object) -> tuple[dict[str, str], list[str]]:
    """`environment` as a mapping or a list of `NAME=value`; names without a value come from the host."""
    environment: dict[str, str] = {}
    inherited: list[str] = []
    items: list[tuple[str, object]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, str):
                key, equals, written = entry.partition("=")
                items.append((key.strip(), written if equals else None))
    for name, setting in items:
        if isinstance(setting, str):
            environment[name] = setting
        elif setting is None and name:
            inherited.append(name)
    return environment, inherited


def _env_files(value: object, directory: str) -> list[str]:
    entries = value if isinstance(value, list) else [value]
    paths: list[str] = []
    for entry in entries:
        path = _text(entry.get("path")) if isinstance(entry, dict) else _text(entry)
        if path:
            paths.append(_repo_relative(directory, _defaults(path)))
    return paths


def _ports(value: object) -> list[int]:
    """Container ports from "8000:8000", "127.0.0.1:8000:8000", "8000", "8000-8001:8000-8001", or a mapping's
    `target`."""
    ports: list[int] = []
    for entry in value if isinstance(value, list) else []:
        text = _text(entry.get("target")) if isinstance(entry, dict) else _text(entry)
        if text is None:
            continue
        container = _defaults(text).split("/", 1)[0].rsplit(":", 1)[-1].split("-", 1)[0].strip()
        if container.isdigit() and 0 < int(container) < 65536:
            ports.append(int(container))
    return ports


def _names(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(key) for key in value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _bind_mounts(value: object, directory: str) -> list[tuple[str, str]]:
    mounts: list[tuple[str, str]] = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, dict):
            source, target = _text(entry.get("source")), _text(entry.get("target"))
        elif isinstance(entry, str):
            source, _, rest = _defaults(entry).partition(":")
            target = rest.split(":", 1)[0]
        else:
            continue
        if source and target and source.startswith(".") and target.startswith("/"):
            mounts.append((_repo_relative(directory, source), posixpath.normpath(target)))
    return mounts


# Which service is the app.


def app_service(compose: ComposeFile) -> ComposeService | None:
    """The service that is this repository's app: built here (published ports first, then an app-like name, then
    file order), else one with published ports running a Python web server. Companion images (databases, vector
    stores, proxies) never are; a service behind a `profiles` switch only when nothing else is."""
    services = [service for service in compose.services if not _is_infrastructure(service)]
    for pool in ([service for service in services if not service.profiles], services):
        chosen = _choose(pool)
        if chosen is not None:
            return chosen
    return None


def _choose(pool: list[ComposeService]) -> ComposeService | None:
    built = [(index, service) for index, service in enumerate(pool) if is_built_here(service)]
    if built:
        return min(built, key=lambda item: _preference(*item))[1]
    for service in pool:
        if service.ports and _WEB_SERVER.search(_run_text(service.entrypoint) + " " + _run_text(service.command)):
            return service
    return None


def _preference(index: int, service: ComposeService) -> tuple[bool, bool, bool, int]:
    # A frontend beside the API is built here too and publishes a port: the app-like name decides then.
    return not service.ports, bool(_FRONTEND_NAME.search(service.name)), not _APP_NAME.search(service.name), index


def _run_text(value: str | list[str] | None) -> str:
    return " ".join(value) if isinstance(value, list) else value or ""


def is_built_here(service: ComposeService) -> bool:
    context = service.build_context
    return context is not None and "://" not in context and not context.startswith(("git@", "../", "/"))


def _is_infrastructure(service: ComposeService) -> bool:
    image = (service.image or "").split("@", 1)[0]
    repository = image.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    names = [repository] if service.image else []
    names.append(service.name.lower())
    return any(name.startswith(INFRASTRUCTURE) for name in names if name)


# The app service's start.


def compose_start(compose: ComposeFile, read: Callable[[str], str | None]) -> StartCandidate | None:
    """How Compose starts the app service: its command and entrypoint over its Dockerfile's, its env files and
    environment over the image's ENV, its working_dir where COPY or a bind mount puts the repository. None when
    there is no app service or nothing would run."""
    service = app_service(compose)
    if service is None:
        return None
    directory = posixpath.dirname(compose.path)
    variables = env_file_values(read(_repo_relative(directory, ".env")) or "")
    notes: list[str] = []
    dockerfile, config = _image(compose.path, service, read, notes)
    entrypoint, cmd = _run_values(service, config, variables, notes)
    command = run_command(entrypoint, cmd, config.shell if config else SH)
    if command is None:
        return None
    env = {**(config.env if config else {}), **_file_env(service, read, notes)}
    env.update(_service_env(service, variables, env, notes))
    port = _port(entrypoint, cmd, env, service, config)
    companions = _companions(compose, service, notes)
    odd = run_notes(entrypoint, cmd, env)
    return StartCandidate(
        tier="packaged",
        source=f"compose service {service.name}",
        command=command,
        evidence=Evidence(
            compose.path,
            service.command_line or service.line,
            service.command_excerpt if service.command_line else service.service_excerpt,
        ),
        workdir=_workdir(service, config, variables, directory),
        port=port[0] if port else None,
        port_source=port[1] if port else "",
        env=env,
        services=companions,
        compose_service=service.name,
        skipped=config.skipped if config else [],
        python_version=config.python_version if config else python_version(service.image or ""),
        notes=[*(dockerfile.notes if dockerfile else []), *(config.notes if config else []), *notes, *odd],
    )


def _image(
    compose_path: str, service: ComposeService, read: Callable[[str], str | None], notes: list[str]
) -> tuple[Dockerfile | None, ImageConfig | None]:
    """The Dockerfile the service builds from, and its target stage's image config."""
    if service.build_context is None or not is_built_here(service):
        return None, None
    path = _repo_relative(service.build_context, service.dockerfile or "Dockerfile")
    text = read(path)
    if text is None:
        notes.append(f"{compose_path}: service {service.name} builds from {path}, which the repository lacks")
        return None, None
    dockerfile = parse_dockerfile(path, text)
    config = image_config(dockerfile, target=service.target)
    if config is None:
        stage = f"stage {service.target!r}" if service.target else "build stage"
        notes.append(f"{path}: no {stage}")
    return dockerfile, config


def _run_values(
    service: ComposeService, config: ImageConfig | None, variables: Mapping[str, str], notes: list[str]
) -> tuple[RunValue | None, RunValue | None]:
    """Compose's entrypoint replaces ENTRYPOINT and drops the image's CMD; its command replaces CMD."""
    entrypoint = _compose_run(service.entrypoint, variables, notes)
    cmd = _compose_run(service.command, variables, notes)
    if entrypoint is not None:
        return entrypoint, cmd
    image_entrypoint = run_value(config.entrypoint) if config else None
    return image_entrypoint, cmd if cmd is not None else (run_value(config.cmd) if config else None)


def _compose_run(value: str | list[str] | None, variables: Mapping[str, str], notes: list[str]) -> RunValue | None:
    """A command or entrypoint as Compose runs it: interpolated, and a string split into arguments (exec form; no
    shell runs it)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_interpolate(arg, variables, notes) for arg in value]
    text = _interpolate(value, variables, notes)
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes: Compose would refuse it; sh may still make sense of the text
        return text


def _interpolate(text: str, variables: Mapping[str, str], notes: list[str]) -> str:
    for name in unset_references(text, variables):
        note = f"compose reads ${name} from the environment or .env, which do not set it here (it becomes empty)"
        if note not in notes:
            notes.append(note)
    return substitute(text, variables, double_dollar=True)


def _file_env(service: ComposeService, read: Callable[[str], str | None], notes: list[str]) -> dict[str, str]:
    """The service's env files in order; a missing one is replaced by an example file beside it, if any."""
    env: dict[str, str] = {}
    for path in service.env_files:
        text = read(path)
        if text is None:
            text = _example_instead(path, read, notes)
        env.update(env_file_values(text or ""))
    return env


def _example_instead(path: str, read: Callable[[str], str | None], notes: list[str]) -> str | None:
    directory = posixpath.dirname(path)
    for name in ENV_EXAMPLES:
        example = _repo_relative(directory, name)
        text = read(example)
        if text is not None:
            notes.append(f"env file {path} is not in the repository; read {example} instead")
            return text
    notes.append(f"env file {path} is not in the repository (and no example file is beside it)")
    return None


def _service_env(
    service: ComposeService, variables: Mapping[str, str], known: Mapping[str, str], notes: list[str]
) -> dict[str, str]:
    """`environment`, interpolated; a name without a value takes the `.env` value (Compose's own lookup), else
    stays as the image or an env file set it."""
    env = {name: _interpolate(value, variables, notes) for name, value in service.environment.items()}
    for name in service.inherited_env:
        if name in variables:
            env[name] = variables[name]
        elif name not in known:
            notes.append(f"environment {name} takes its value from the host, which does not set it here")
    return env


def env_file_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file (`export ` prefixes, quotes and `#` comments allowed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ENV_LINE.fullmatch(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        values[match[1]] = _env_value(match[2].strip())
    return values


def _env_value(raw: str) -> str:
    if raw[:1] in {"'", '"'} and raw.find(raw[0], 1) > 0:
        inner = raw[1 : raw.find(raw[0], 1)]
        return inner if raw[0] == "'" else inner.replace("\\n", "\n")
    return re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()


def _workdir(service: ComposeService, config: ImageConfig | None, variables: Mapping[str, str], directory: str) -> str:
    """Where the command runs in the repository: working_dir (else the image's WORKDIR) through the image's COPYs
    and the service's bind mounts; else the build context, else the compose file's directory."""
    built = service.build_context if is_built_here(service) else None
    context = built if built is not None else directory
    copies = list(config.copies) if config else []
    copies += [(posixpath.relpath(source or ".", context or "."), target) for source, target in service.bind_mounts]
    working_dir = substitute(service.working_dir, variables, double_dollar=True) if service.working_dir else None
    container_dir = working_dir or (config.workdir if config else None)
    return repo_dir(copies, container_dir, context) if container_dir else context


def _port(
    entrypoint: RunValue | None,
    cmd: RunValue | None,
    env: Mapping[str, str],
    service: ComposeService,
    config: ImageConfig | None,
) -> tuple[int, str] | None:
    """The command's own port, else the container side of `ports`, else the image's EXPOSE."""
    found = run_port(entrypoint, cmd, env)
    if found is not None:
        return found
    if service.ports:
        return service.ports[0], "compose ports"
    if config is not None and config.exposed:
        return config.exposed[0], "EXPOSE"
    return None


def _companions(compose: ComposeFile, service: ComposeService, notes: list[str]) -> list[str]:
    """The services the app depends on, directly or through another, nearest first."""
    by_name = {other.name: other for other in compose.services}
    found: list[str] = []
    pending = list(service.depends_on)
    while pending:
        name = pending.pop(0)
        if name == service.name or name in found:
            continue
        found.append(name)
        companion = by_name.get(name)
        if companion is None:
            notes.append(f"{compose.path}: {service.name} depends on {name}, which the file does not define")
        else:
            pending += companion.depends_on
    return found
