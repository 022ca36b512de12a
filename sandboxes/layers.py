"""The per-repository dependency layer: wheels downloaded on the host (only wheels: no build backend of the
candidate's runs here); a pinned requirement with no wheel has its source archive fetched as a plain file
(checked against the index's sha256) and built inside the sandbox; everything is installed in a network-less,
non-root build container with `pip install --no-index`, and committed as an image keyed by the requirements
and the base image, so a second grading skips it."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from packaging.requirements import Requirement

from sandboxes.deps import ParsedRequirements
from sandboxes.errors import LayerTooLarge, SandboxUnavailable

if TYPE_CHECKING:
    import docker

# The Docker SDK (and requests) load inside the functions that talk to the engine: a grading imports this
# module whether or not it runs a sandbox, and the SDK takes a tenth of a second to import.

VENV = "/var/tmp/viva-venv"  # noqa: S108 - a path inside the image
"""Inside the image: a directory of the root filesystem (a tmpfs would not be committed), read-only at run time."""
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"]


class DependencyLayer(msgspec.Struct, frozen=True):
    image: str
    cached: bool
    requirements: list[str]
    missing_wheels: list[str]
    """Requirements no wheel could be found for; the install fails on them and the log says so."""
    install_ok: bool
    log_tail: str
    seconds: float


def image_python(client: docker.DockerClient, image: str) -> str:
    """`3.11` or the like: the base image's Python, which the wheels must match."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    try:
        output = client.containers.run(
            image,
            ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            network_mode="none",
            user="1000:1000",
            remove=True,
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(f"could not ask the base image for its Python version: {error}") from None
    return bytes(output).decode().strip()


INDEX_UNREACHABLE = re.compile(
    r"NewConnectionError|Connection refused|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|ConnectTimeout|Could not fetch URL"
)
PARTIAL_MARK = "[viva] the full install failed; installing the packages that have a wheel"
PARTIAL_LABEL = "viva.missing"
"""A layer installed without some requirements says which, so a cached one is reported the same way."""
BUILD_TOOLS = [
    "setuptools>=68", "wheel", "setuptools_scm[toml]>=6.2", "hatchling", "hatch-vcs", "flit_core", "poetry-core",
    "pdm-backend", "Cython", "pybind11", "scikit-build-core",
]  # fmt: skip
"""Wheels put beside any source archive, so pip can build it inside the sandbox with no index."""


def fetch_sdist(requirement: str, wheelhouse: Path, index_url: str) -> bool:
    """Download a pinned requirement's source archive as a plain file from the package index's simple page
    (PEP 503), checked against the sha256 the index gives; nothing of it runs here. False when the requirement is
    not pinned to one version or the release has no source archive."""
    parsed = Requirement(requirement)
    pins = [spec.version for spec in parsed.specifier if spec.operator in ("==", "===")]
    if len(pins) != 1:
        return False
    project = re.sub(r"[-_.]+", "-", parsed.name).lower()
    try:
        page = httpx.get(f"{index_url.rstrip('/')}/{project}/", timeout=30, follow_redirects=True)
        page.raise_for_status()
    except httpx.HTTPError:
        return False
    stem = re.sub(r"[-_.]+", "[-_.]", re.escape(project).replace("\\-", "-"))
    wanted = re.compile(rf"^{stem}-{re.escape(pins[0])}\.(tar\.gz|zip)$", re.I)
    for url, name in re.findall(r'<a[^>]+href="([^"]+)"[^>]*>([^<]+)</a>', page.text):
        if not wanted.match(name.strip()):
            continue
        address, _, fragment = url.partition("#")
        try:
            archive = httpx.get(address, timeout=120, follow_redirects=True)
            archive.raise_for_status()
        except httpx.HTTPError:
            return False
        digest = dict(part.split("=", 1) for part in fragment.split("&") if "=" in part).get("sha256")
        if digest is not None and digest != hashlib.sha256(archive.content).hexdigest():
            return False
        (wheelhouse / Path(name.strip()).name).write_bytes(archive.content)
        return True
    return False


def download_wheels(
    requirements: ParsedRequirements,
    wheelhouse: Path,
    python: str,
    index_url: str = "https://pypi.org/simple",
    extra_index_url: str = "",
) -> tuple[list[str], str, bool]:
    """`pip download --only-binary=:all:` for the image's Python and platform. All requirements together first, so
    pip resolves them as one set, as the install will (downloaded one by one, two of them could each pull a version
    of a shared dependency the other excludes, and the install would find no solution among them). When that
    fails, one at a time, so one without a wheel does not hide the others, then the rest together again.
    `extra_index_url`, when set, is searched after `index_url`. Returns (requirements without a wheel, pip's last
    words, whether the index could not be reached at all — then nothing is known about the requirements)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    if not requirements.requirements:
        return [], "", False
    together = _pip_download(requirements.requirements, wheelhouse, python, index_url, extra_index_url)
    if together.returncode == 0:
        return [], "", False
    missing: list[str] = []
    last = ""
    unreachable = bool(INDEX_UNREACHABLE.search(together.stderr))
    for requirement in requirements.requirements:
        result = _pip_download([requirement], wheelhouse, python, index_url, extra_index_url)
        if result.returncode != 0:
            missing.append(requirement)
            last = (result.stderr.strip().splitlines() or [""])[-1][:300]
            unreachable |= bool(INDEX_UNREACHABLE.search(result.stderr))
    available = [item for item in requirements.requirements if item not in missing]
    if missing and available:
        _pip_download(available, wheelhouse, python, index_url, extra_index_url)
    return missing, last, unreachable


def _pip_download(
    requirements: list[str], wheelhouse: Path, python: str, index_url: str, extra_index_url: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--index-url",
        index_url,
        *(["--extra-index-url", extra_index_url] if extra_index_url else []),
        "--python-version",
        python,
        "--implementation",
        "cp",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "-d",
        str(wheelhouse),
        *requirements,
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=1200)


def dependency_layer(
    client: docker.DockerClient,
    base_image: str,
    requirements: ParsedRequirements,
    cache_dir: Path,
    index_url: str = "https://pypi.org/simple",
    *,
    extra_index_url: str = "",
    max_mb: int | None = None,
) -> DependencyLayer:
    """The image with `requirements` installed in VENV over `base_image`, built once per requirements and base.
    Raises SandboxUnavailable when the index or the engine cannot be reached, LayerTooLarge when the layer's own
    size (the image's past the base image's) is over `max_mb`."""
    import docker  # noqa: PLC0415 - the Docker SDK loads when a sandbox is used (see the top)
    import docker.errors  # noqa: PLC0415 - as above
    import requests.exceptions  # noqa: PLC0415 - as above

    started = time.monotonic()
    base_id = str(client.images.get(base_image).id)
    key = requirements.cache_key(base_id)
    tag = f"viva-deps:{key}"
    try:
        cached = client.images.get(tag)
    except docker.errors.ImageNotFound:
        pass
    else:
        _check_size(client, cached, base_id, max_mb, remove=False)
        left_out = [item for item in (cached.labels or {}).get(PARTIAL_LABEL, "").split("\n") if item]
        said = f"installed without {', '.join(left_out)} (no wheel or source archive)" if left_out else ""
        return DependencyLayer(
            tag, True, requirements.requirements, left_out, not left_out, said, time.monotonic() - started
        )
    wheelhouse = cache_dir / "wheelhouse" / key
    missing, pip_said = _fill_wheelhouse(client, base_image, requirements, wheelhouse, (index_url, extra_index_url))
    (wheelhouse / "requirements.txt").write_text("\n".join(requirements.requirements) + "\n")
    available = [item for item in requirements.requirements if item not in missing]
    (wheelhouse / "available.txt").write_text("\n".join(available) + "\n")
    for path in [wheelhouse, *wheelhouse.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    pip = f"{VENV}/bin/pip install --quiet --no-index --disable-pip-version-check --find-links /wheels"
    script = f"python3 -m venv {VENV} && {pip} -r /wheels/requirements.txt"
    if missing and available:
        # One package without a wheel should not leave the app with none: install the others, and say so.
        script = (
            f"python3 -m venv {VENV} && ({pip} -r /wheels/requirements.txt || "
            f"(echo '{PARTIAL_MARK}' && {pip} -r /wheels/available.txt))"
        )
    container = None
    try:
        container, log, built = _install(client, base_image, script, wheelhouse, (index_url, extra_index_url))
        partial = built and PARTIAL_MARK in log
        ok = built and not partial
        if built:
            labels = {PARTIAL_LABEL: "\n".join(missing)} if partial else {}
            image = container.commit(repository="viva-deps", tag=key, conf={"Labels": labels})
            _check_size(client, image, base_id, max_mb, remove=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SandboxUnavailable(f"the dependency layer could not be built: {error}") from None
    finally:
        if container is not None:
            container.remove(force=True)
    tail = "\n".join(log.strip().splitlines()[-20:])
    if missing:
        tail = f"no wheel for: {', '.join(missing)} ({pip_said})\n" + tail
    if partial:
        tail = f"installed without {', '.join(missing)}: they have no wheel or source archive\n" + tail
    return DependencyLayer(
        tag if built else base_image, False, requirements.requirements, missing, ok, tail, time.monotonic() - started
    )


MARKER_ROUNDS = 2
"""Extra install rounds for dependencies the host's download left out (see `_install`)."""
_NO_MATCH = re.compile(r"No matching distribution found for ([^\n]+)")


def _install(
    client: docker.DockerClient, base_image: str, script: str, wheelhouse: Path, indexes: tuple[str, str]
) -> tuple[Any, str, bool]:
    """Run the install (the finished container, its log, whether it succeeded). pip downloads on the host evaluate
    environment markers with the host's Python, so a dependency only the image's older patch release needs
    (`async-timeout; python_full_version < "3.11.3"`) can be missing: what the image's pip asked for is fetched
    and the install runs again, up to MARKER_ROUNDS times."""
    rounds = 0
    while True:
        container = _run_install(client, base_image, script, wheelhouse)
        built = container.wait(timeout=900).get("StatusCode") == 0
        log = container.logs().decode(errors="replace")
        wanted = sorted({match.split(";")[0].strip() for match in _NO_MATCH.findall(log)})
        if built or rounds == MARKER_ROUNDS or not wanted:
            return container, log, built
        rounds += 1
        if not _fetch_more(client, base_image, wanted, wheelhouse, indexes):
            return container, log, built
        container.remove(force=True)


def _run_install(client: docker.DockerClient, base_image: str, script: str, wheelhouse: Path) -> Any:
    """The install container, started: non-root, no network, no capabilities, the wheelhouse read-only."""
    return client.containers.run(
        base_image,
        ["sh", "-c", script],
        detach=True,
        user="1000:1000",
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit="2g",
        pids_limit=512,
        volumes={str(wheelhouse.resolve()): {"bind": "/wheels", "mode": "ro"}},
        labels={"viva.owner": "viva-layer"},
    )


def _fetch_more(
    client: docker.DockerClient, base_image: str, wanted: list[str], wheelhouse: Path, indexes: tuple[str, str]
) -> bool:
    """Download `wanted` (requirement texts, markers dropped) into the wheelhouse; whether anything new came."""
    before = {path.name for path in wheelhouse.iterdir()}
    python = image_python(client, base_image)
    download_wheels(ParsedRequirements(wanted, []), wheelhouse, python, *indexes)
    added = [path for path in wheelhouse.iterdir() if path.name not in before]
    for path in added:
        path.chmod(0o644)
    return bool(added)


def _fill_wheelhouse(
    client: docker.DockerClient,
    base_image: str,
    requirements: ParsedRequirements,
    wheelhouse: Path,
    indexes: tuple[str, str],
) -> tuple[list[str], str]:
    """Wheels (else source archives) for `requirements` in `wheelhouse` from (index, extra index): (what has
    neither, what pip said)."""
    index_url, extra_index_url = indexes
    complete = wheelhouse / ".complete"
    if complete.exists():  # a wheelhouse that once had everything is reused without asking the index again
        return [], ""
    python = image_python(client, base_image)
    missing, pip_said, unreachable = download_wheels(requirements, wheelhouse, python, index_url, extra_index_url)
    if unreachable:
        raise SandboxUnavailable(f"the package index {index_url} is not reachable from this host ({pip_said})")
    if missing:
        urls = [url for url in indexes if url]
        missing = [item for item in missing if not any(fetch_sdist(item, wheelhouse, url) for url in urls)]
        download_wheels(ParsedRequirements(BUILD_TOOLS, []), wheelhouse, python, index_url, extra_index_url)
    if not missing:
        complete.touch()
    return missing, pip_said


def _check_size(client: docker.DockerClient, image: Any, base_id: str, max_mb: int | None, *, remove: bool) -> None:
    """Raise LayerTooLarge when the layer's own size (the image's past its base's) is over `max_mb`; a layer just
    built is removed first, so nothing of it stays on the host. A cached one was within the ceiling it was built
    under and stays for the grading that set a higher one."""
    if max_mb is None:
        return
    size_mb = (int(image.attrs.get("Size", 0)) - int(client.images.get(base_id).attrs.get("Size", 0))) // 1_000_000
    if size_mb <= max_mb:
        return
    if remove:
        client.images.remove(image.id, force=True)
    raise LayerTooLarge(size_mb, max_mb)
