"""The dependency layer: wheels fetched on the host (from the package registry), installed in a network-less
container, committed as an image; a second grading of the same requirements reuses it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandboxes.deps import parse_requirements
from sandboxes.docker_backend import DockerSandbox, docker_client
from sandboxes.errors import LayerTooLarge
from sandboxes.images import build_offline_base
from sandboxes.layers import VENV, dependency_layer
from sandboxes.settings import SandboxSettings

pytestmark = pytest.mark.docker
IMAGE = SandboxSettings().offline_image


@pytest.fixture(scope="module")
def client():
    found = docker_client()
    try:
        found.images.get(IMAGE)
    except Exception:
        build_offline_base(found, IMAGE)
    return found


def test_cold_then_warm_and_the_app_can_import_it(client, tmp_path: Path) -> None:
    requirements = parse_requirements("six==1.16.0\n")
    _forget_layer(client, requirements)
    cold = dependency_layer(client, IMAGE, requirements, tmp_path)
    assert cold.install_ok and not cold.cached, cold.log_tail
    warm = dependency_layer(client, IMAGE, requirements, tmp_path)
    assert warm.cached and warm.image == cold.image
    assert warm.seconds < cold.seconds / 3

    async def check() -> str:
        async with DockerSandbox(cold.image) as sandbox:
            result = await sandbox.exec([f"{VENV}/bin/python", "-c", "import six; print(six.__version__)"])
            return result.stdout

    assert asyncio.run(check()) == "1.16.0\n"


def test_a_requirement_without_a_wheel_is_reported(client, tmp_path: Path) -> None:
    layer = dependency_layer(client, IMAGE, parse_requirements("viva-no-such-package-xyz==0.0.1\n"), tmp_path)
    assert not layer.install_ok
    assert layer.missing_wheels == ["viva-no-such-package-xyz==0.0.1"]
    assert "no wheel for" in layer.log_tail


def test_one_requirement_without_a_wheel_leaves_the_others_installed_and_says_so(client, tmp_path: Path) -> None:
    """A project pins one package that has no wheel here (bitsandbytes on the wrong platform, a private name): the
    rest still install, so the app can start if it does not need that one; the layer says what it left out, and a
    cached copy says the same."""
    requirements = parse_requirements("six==1.16.0\nviva-no-such-package-xyz==0.0.1\n")
    _forget_layer(client, requirements)
    layer = dependency_layer(client, IMAGE, requirements, tmp_path)
    assert not layer.install_ok and layer.image.startswith("viva-deps:"), layer.log_tail
    assert layer.missing_wheels == ["viva-no-such-package-xyz==0.0.1"]
    assert "installed without viva-no-such-package-xyz==0.0.1" in layer.log_tail

    async def check(image: str) -> str:
        async with DockerSandbox(image) as sandbox:
            result = await sandbox.exec([f"{VENV}/bin/python", "-c", "import six; print(six.__version__)"])
            return result.stdout

    assert asyncio.run(check(layer.image)) == "1.16.0\n"
    again = dependency_layer(client, IMAGE, requirements, tmp_path)
    assert again.cached and not again.install_ok and again.missing_wheels == layer.missing_wheels


def test_a_package_with_no_wheel_is_built_inside_the_sandbox(client, tmp_path: Path) -> None:
    """docopt 0.6.2 exists only as a source archive: it is fetched as a file and built in the build container."""
    requirements = parse_requirements("docopt==0.6.2\n")
    _forget_layer(client, requirements)
    layer = dependency_layer(client, IMAGE, requirements, tmp_path)
    assert layer.install_ok, layer.log_tail
    assert layer.missing_wheels == []
    archives = list((tmp_path / "wheelhouse").rglob("docopt-0.6.2.tar.gz"))
    assert archives, "the source archive is downloaded as a plain file"

    async def check() -> str:
        async with DockerSandbox(layer.image) as sandbox:
            result = await sandbox.exec([f"{VENV}/bin/python", "-c", "import docopt; print(docopt.__version__)"])
            return result.stdout

    assert asyncio.run(check()) == "0.6.2\n"


def test_option_and_path_lines_never_reach_pip(client, tmp_path: Path) -> None:
    """A requirements file that points pip at another index or a local path: those lines are refused with a
    reason, and the layer installs only what was parsed as a requirement."""
    parsed = parse_requirements("six==1.16.0\n--index-url http://127.0.0.1:9/simple\n--find-links /etc\n./local_pkg\n")
    assert parsed.requirements == ["six==1.16.0"]
    assert [refused.line for refused in parsed.refused] == [2, 3, 4]
    layer = dependency_layer(client, IMAGE, parsed, tmp_path)
    assert layer.install_ok and layer.requirements == ["six==1.16.0"]


def test_a_layer_past_the_ceiling_is_refused_and_removed(client, tmp_path: Path) -> None:
    """VIVA_SANDBOX_LAYER_MAX_MB bounds the layer's own size (the image's past the base's): past it the image is
    removed and the error names the size and the ceiling, which the grading reports as not_run."""
    requirements = parse_requirements("six==1.16.0\nidna==3.10\n")
    _forget_layer(client, requirements)
    with pytest.raises(
        LayerTooLarge, match=r"the dependency layer is \d+ MB installed, over the 1 MB ceiling"
    ) as raised:
        dependency_layer(client, IMAGE, requirements, tmp_path, max_mb=1)
    assert raised.value.size_mb > 1
    key = requirements.cache_key(str(client.images.get(IMAGE).id))
    left = [
        image.tags for image in client.images.list(name="viva-deps") if any(tag.endswith(key) for tag in image.tags)
    ]
    assert left == [], f"the oversized layer should be gone, found {left}"


def _forget_layer(client, requirements) -> None:
    """Remove a cached layer so the next build is cold."""
    key = requirements.cache_key(str(client.images.get(IMAGE).id))
    for image in client.images.list(name="viva-deps"):
        if any(tag.endswith(key) for tag in image.tags):
            client.images.remove(image.id, force=True)
