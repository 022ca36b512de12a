"""Where a sidecar's image comes from: the operator's table (tag-insensitive rules), else a pull the policy allows.
No registry is ever contacted: the engine is a small fake that records what it was asked."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest

from sandboxes.pod import load_compose, sidecars_from_compose
from sandboxes.service_images import (
    ServiceImage,
    ServiceImagePolicy,
    ServiceImageUnavailable,
    parse_image_table,
    parse_reference,
    resolve_pod_images,
    resolve_service_image,
    table_match,
)
from sandboxes.settings import SandboxSettings
from server.errors import SettingsError
from server.settings import load_settings


class FakeImage:
    def __init__(self, name: str, size: int) -> None:
        self.id = f"sha256:{abs(hash(name)):064x}"[:71]
        self.attrs = {"Size": size}


class FakeImages:
    """The engine's image store: `local` images exist; `pull` gives an image of `pull_size` bytes."""

    def __init__(self, local: set[str], pull_size: int = 100_000_000) -> None:
        self.local, self.pull_size = local, pull_size
        self.pulled: list[str] = []
        self.removed: list[str] = []

    def get(self, name: str) -> FakeImage:
        if name not in self.local:
            raise docker.errors.ImageNotFound(name)
        return FakeImage(name, 1)

    def pull(self, name: str) -> FakeImage:
        self.pulled.append(name)
        return FakeImage(name, self.pull_size)

    def remove(self, image_id: str, force: bool = False) -> None:
        self.removed.append(image_id)


class FakeClient:
    def __init__(self, local: set[str] | None = None, pull_size: int = 100_000_000) -> None:
        self.images = FakeImages(local or set(), pull_size)


TABLE = {
    "postgres:16": "viva-svc-postgres:offline",
    "postgres": "viva-svc-postgres:any",
    "redis:7": "viva-svc-redis:offline",
    "docker.io/pgvector/pgvector:pg16": "viva-svc-pgvector:offline",
}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("postgres:16", "viva-svc-postgres:offline"),
        ("docker.io/library/postgres:16", "viva-svc-postgres:offline"),
        ("postgres:16.3-alpine", "viva-svc-postgres:offline"),
        ("postgres:16-bookworm", "viva-svc-postgres:offline"),
        ("postgres:16@sha256:" + "a" * 64, "viva-svc-postgres:offline"),
        ("postgres:15", "viva-svc-postgres:any"),
        ("postgres:160", "viva-svc-postgres:any"),
        ("postgres", "viva-svc-postgres:any"),
        ("redis:7.2-alpine", "viva-svc-redis:offline"),
        ("redis:6", None),
        ("pgvector/pgvector:pg16", "viva-svc-pgvector:offline"),
        ("ghcr.io/library/postgres:16", None),
        ("bitnami/postgresql:16", None),
    ],
)
def test_table_matching_rules(image: str, expected: str | None) -> None:
    assert table_match(TABLE, image) == expected


def test_references_are_taken_apart_as_docker_does() -> None:
    assert parse_reference("postgres:16").name == "docker.io/library/postgres"
    assert parse_reference("qdrant/qdrant").registry == "docker.io"
    assert parse_reference("ghcr.io/chroma-core/chroma:0.5").registry == "ghcr.io"
    assert parse_reference("localhost:5000/db").registry == "localhost:5000"
    assert parse_reference("localhost:5000/db").tag is None


def test_the_table_serves_a_local_build_and_nothing_is_pulled() -> None:
    client = FakeClient(local={"viva-svc-postgres:offline"})
    policy = ServiceImagePolicy(pull_policy="always", table=TABLE)
    result = resolve_service_image(client, "db", "postgres:16-alpine", policy)  # type: ignore[arg-type]
    assert result == ServiceImage("db", "postgres:16-alpine", "viva-svc-postgres:offline", "table")
    assert client.images.pulled == []


def test_a_table_entry_whose_local_image_is_missing_says_how_to_build_it() -> None:
    result = resolve_service_image(FakeClient(), "db", "postgres:16", ServiceImagePolicy(table=TABLE))  # type: ignore[arg-type]
    assert isinstance(result, ServiceImageUnavailable)
    assert result.image == "postgres:16" and "viva sandbox build-service postgres" in result.reason


def test_if_missing_pulls_from_an_allowed_registry() -> None:
    client = FakeClient()
    result = resolve_service_image(client, "vectors", "qdrant/qdrant:v1.9.2", ServiceImagePolicy())  # type: ignore[arg-type]
    assert isinstance(result, ServiceImage) and result.source == "pulled"
    assert client.images.pulled == ["qdrant/qdrant:v1.9.2"]


def test_if_missing_uses_the_engines_own_copy_without_pulling() -> None:
    client = FakeClient(local={"qdrant/qdrant:v1.9.2"})
    result = resolve_service_image(client, "vectors", "qdrant/qdrant:v1.9.2", ServiceImagePolicy())  # type: ignore[arg-type]
    assert isinstance(result, ServiceImage) and result.source == "local"
    assert client.images.pulled == []


def test_always_pulls_even_when_a_copy_is_here() -> None:
    client = FakeClient(local={"redis:7"})
    resolve_service_image(client, "cache", "redis:7", ServiceImagePolicy(pull_policy="always"))  # type: ignore[arg-type]
    assert client.images.pulled == ["redis:7"]


def test_a_registry_off_the_allow_list_is_never_asked() -> None:
    client = FakeClient()
    policy = ServiceImagePolicy(registries=["docker.io"])
    result = resolve_service_image(client, "vectors", "ghcr.io/chroma-core/chroma:0.5", policy)  # type: ignore[arg-type]
    assert isinstance(result, ServiceImageUnavailable) and "ghcr.io" in result.reason
    assert client.images.pulled == []


def test_never_does_not_pull() -> None:
    client = FakeClient()
    policy = ServiceImagePolicy(pull_policy="never")
    result = resolve_service_image(client, "cache", "redis:7", policy)  # type: ignore[arg-type]
    assert isinstance(result, ServiceImageUnavailable) and result.image == "redis:7"
    assert client.images.pulled == []


def test_an_image_over_the_size_cap_is_removed_and_unavailable() -> None:
    client = FakeClient(pull_size=3_000_000_000)
    policy = ServiceImagePolicy(max_image_mb=2000)
    result = resolve_service_image(client, "search", "elasticsearch:8.14.0", policy)  # type: ignore[arg-type]
    assert isinstance(result, ServiceImageUnavailable) and "3,000 MB" in result.reason
    assert len(client.images.removed) == 1


def test_a_pod_resolves_every_sidecar_and_names_the_unavailable_ones(tmp_path: Path) -> None:
    compose = load_compose(
        "services:\n  api:\n    build: .\n    depends_on: [db, cache, embedder]\n"
        "  db:\n    image: postgres:16\n  cache:\n    image: redis:6\n"
        "  embedder:\n    build: ./embedder\n    ports: ['9000']\n"
    )
    (tmp_path / "embedder").mkdir()
    plan = sidecars_from_compose(compose, "api", tmp_path, tmp_path)
    client = FakeClient(local={"viva-svc-postgres:offline"})
    found, missing = resolve_pod_images(client, plan, ServiceImagePolicy(pull_policy="never", table=TABLE))  # type: ignore[arg-type]
    assert {name: image.image for name, image in found.items()} == {"db": "viva-svc-postgres:offline"}
    assert {item.service: item.image for item in missing} == {"cache": "redis:6", "embedder": "build embedder"}


def test_the_table_setting_is_read_and_a_bad_entry_names_the_variable() -> None:
    settings = load_settings(
        {
            "VIVA_SANDBOX_SERVICE_IMAGES": "postgres:16=viva-svc-postgres:offline, redis:7=viva-svc-redis:offline",
            "VIVA_SANDBOX_SERVICE_PULL_POLICY": "never",
        }
    )
    policy = ServiceImagePolicy.from_settings(settings.sandbox)
    assert policy.table == {"postgres:16": "viva-svc-postgres:offline", "redis:7": "viva-svc-redis:offline"}
    assert policy.pull_policy == "never" and policy.registries == ["docker.io", "ghcr.io"]
    with pytest.raises(SettingsError, match="'postgres:16' is not IMAGE=LOCAL_IMAGE"):
        load_settings({"VIVA_SANDBOX_SERVICE_IMAGES": "postgres:16"})
    with pytest.raises(ValueError, match="IMAGE=LOCAL_IMAGE"):
        parse_image_table(["=x"])
    assert SandboxSettings().service_limits().memory_mb == 512
