"""viva.toml: a candidate's own statement of how to start, query, evaluate and budget their app.

Format version 1 is documented in docs/MANIFEST.md; its JSON Schema is grader/profile/viva_toml.schema.json.
"""

from __future__ import annotations

import re
import tomllib
from typing import Annotated, Any, Literal

import msgspec

from rubrics.schema import tidy_descriptions

MANIFEST_NAME = "viva.toml"
JsonPointer = Annotated[
    str, msgspec.Meta(pattern=r"^(/[^/]*)*$", description="RFC 6901 JSON pointer into the response")
]
UrlPath = Annotated[str, msgspec.Meta(pattern=r"^/", max_length=500)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class AppSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How to start the service inside the sandbox."""

    start: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    health: Annotated[str, msgspec.Meta(pattern=r"^(/.*)?$", max_length=500)] = "/health"
    """The route that answers 200 once the app is ready; "" when any HTTP answer means ready."""
    startup_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
    env: dict[str, str] = msgspec.field(default_factory=dict)
    workdir: Annotated[
        str,
        msgspec.Meta(
            max_length=500,
            pattern=r"^(?!/)(?!.*\.\.)",
            description="where `start` runs, relative to the repository root",
        ),
    ] = ""
    setup: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]],
        msgspec.Meta(max_length=10, description="commands run before `start`, in order (an ingest, migrations)"),
    ] = msgspec.field(default_factory=list)


class QuerySection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which route answers a question, and where the answer, citations and cost sit in the response."""

    path: UrlPath
    method: Literal["POST", "GET"] = "POST"
    request: Annotated[str, msgspec.Meta(description="JSON request body with a {question} placeholder")] = (
        '{"question": "{question}"}'
    )
    answer: JsonPointer = "/answer"
    citations: JsonPointer | None = None
    cost: JsonPointer | None = None


class IngestSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A route that adds a document, for indirect-injection probes."""

    path: UrlPath
    method: Literal["POST", "PUT"] = "POST"
    request: str = '{"text": "{document}"}'


class EvalsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    command: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    cases: str | None = None


class BudgetSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    env: EnvName
    alert: (
        Annotated[str, msgspec.Meta(description="where an alert shows: a log line pattern or a metric name")] | None
    ) = None


class GoldenSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    queries: str


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    manifest_version: Literal[1]
    app: AppSection
    query: QuerySection | None = None
    ingest: IngestSection | None = None
    evals: EvalsSection | None = None
    budget: BudgetSection | None = None
    golden: GoldenSection | None = None


def parse_manifest(text: str) -> tuple[Manifest | None, list[str]]:
    """(the manifest, problems). A broken manifest is a note in the report, never a crash."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [f"viva.toml is not valid TOML: {error}"]
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as error:
        return None, [f"viva.toml: {_readable(str(error))}"]
    problems = []
    if manifest.query is not None and "{question}" not in manifest.query.request:
        problems.append("viva.toml: [query].request has no {question} placeholder")
    return manifest, problems


def manifest_json_schema() -> dict[str, Any]:
    schema: dict[str, Any] = tidy_descriptions(msgspec.json.schema(Manifest))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "viva.toml, manifest_version 1"
    return schema


def _readable(message: str) -> str:
    return re.sub(r" - at `\$\.?([^`]*)`", r" (at \1)", message)
