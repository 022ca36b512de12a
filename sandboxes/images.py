"""The base image: pulled from a registry (`python:3.12-slim`) or built offline with debootstrap and
`docker import` — which one is a setting (SandboxSettings.image_source); nothing probes a registry to decide."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sandboxes.errors import SandboxUnavailable
from sandboxes.settings import SandboxSettings

if TYPE_CHECKING:
    import docker

# The Docker SDK (and requests) load inside the functions that talk to the engine: a grading imports this
# module whether or not it runs a sandbox, and the SDK takes a tenth of a second to import.

DEBOOTSTRAP_PACKAGES = "python3,python3-venv,python3-pip,git,ca-certificates"
SUITE = "bookworm"


def ensure_base_image(client: docker.DockerClient, settings: SandboxSettings) -> str:
    """The base image's id, pulling it when the source is `pull`. Raises SandboxUnavailable with what to do."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    name = settings.image
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        pass
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(f"the Docker engine did not answer: {error}") from None
    if settings.image_source == "offline":
        raise SandboxUnavailable(f"the offline base image {name!r} is missing: run `viva sandbox build-base`")
    try:
        return str(client.images.pull(name).id)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(
            f"could not pull {name!r} ({error}); with no registry, set "
            "VIVA_SANDBOX_IMAGE_SOURCE=offline and run `viva sandbox build-base`"
        ) from None


def build_offline_base(client: docker.DockerClient, name: str, *, mirror: str | None = None) -> str:
    """debootstrap a minimal Debian with Python into a scratch directory, slim it, and `docker import` it."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    if shutil.which("debootstrap") is None:
        raise SandboxUnavailable("debootstrap is not installed (Debian: apt-get install debootstrap)")
    repository, _, tag = name.partition(":")
    with tempfile.TemporaryDirectory(prefix="viva-base-") as scratch:
        root = Path(scratch) / "rootfs"
        command = ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}", SUITE, str(root)]
        if mirror:
            command.append(mirror)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SandboxUnavailable("building the base image failed: " + " / ".join(tail))
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(root / leftover, ignore_errors=True)
        archive = Path(scratch) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        try:
            client.api.import_image_from_file(str(archive), repository=repository, tag=tag or "latest")
            return str(client.images.get(name).id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            raise SandboxUnavailable(f"docker import of the base image failed: {error}") from None
