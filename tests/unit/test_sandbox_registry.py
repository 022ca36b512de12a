"""The backend registry (sandboxes/base.py): a name that exists is found, one that does not says which do, and a
backend that isolates nothing never runs a grading's candidate code, however it is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.dynamic import DynamicOptions, run_dynamic
from grader.profile import build_profile
from rubrics.catalogue import ServiceStartsParams
from sandboxes.base import SandboxSpec, UnsafeBackend, backend, isolating_backend
from sandboxes.errors import UnknownBackend
from sandboxes.fake_backend import FakeSandbox
from sandboxes.settings import SandboxSettings


def test_an_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match=r"no sandbox backend 'nope'; known: docker, fake"):
        backend("nope")


def test_the_fake_is_registered_but_never_given_for_a_grading() -> None:
    assert backend("fake") is FakeSandbox and not backend("fake").isolates
    with pytest.raises(UnsafeBackend, match=r"isolates nothing.*VIVA_SANDBOX_BACKEND"):
        isolating_backend("fake")
    assert isolating_backend("docker").isolates


def test_a_fake_sandbox_without_its_scripted_world_refuses_to_exist() -> None:
    with pytest.raises(UnsafeBackend, match="only a test makes one"):
        FakeSandbox(SandboxSpec(image="viva-base:offline"))


def test_a_grading_configured_with_the_fake_backend_is_refused_before_any_sandbox(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("app = None\n")
    options = DynamicOptions(sandbox=SandboxSettings(backend="fake"), cache_dir=tmp_path / "cache")
    leaves = [("engineering.starts", "service_starts", ServiceStartsParams())]
    with pytest.raises(UnsafeBackend, match="isolates nothing"):
        run_dynamic(tmp_path, build_profile(tmp_path), leaves, tmp_path / "scratch", options)
