"""Shared test fixtures.

`opened_paths` watches every `open` the interpreter performs (sys.addaudithook) while a test runs,
so a test can assert that grading never read a file outside its scratch directory.

No test calls a real model: `pydantic_ai.models.ALLOW_MODEL_REQUESTS` is False for the whole suite, so a model that
would talk to a provider raises before any connection. Tests of the real provider path (the SDKs against the local
fake provider in tests/providers/) opt back in with the `allow_model_requests` fixture.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pydantic_ai.models
import pytest

_watch: list[list[str]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _watch or event != "open" or not args:
        return
    target = args[0]
    if isinstance(target, (str, bytes, os.PathLike)):
        _watch[-1].append(os.fsdecode(target))


sys.addaudithook(_audit)  # hooks cannot be removed; this one does nothing unless a test is watching

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture
def allow_model_requests() -> Iterator[None]:
    """Let pydantic-ai models send requests for one test (to the local fake provider, never a vendor), then forbid
    them again."""
    with pydantic_ai.models.override_allow_model_requests(True):
        yield


@pytest.fixture
def opened_paths() -> Iterator[list[str]]:
    """The paths opened while the test runs (absolute or relative, as the opener passed them)."""
    seen: list[str] = []
    _watch.append(seen)
    try:
        yield seen
    finally:
        _watch.pop()


@pytest.fixture
def host_secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file outside any repository that stands for a host secret (a key, /etc/shadow, ...)."""
    secret = tmp_path_factory.mktemp("host") / "secret.txt"
    secret.write_text("HOST-SECRET-7f3a9 do not leak\n")
    return secret


# The fixture services are candidate code (with their own tests, run only inside a sandbox), not Viva's tests.
collect_ignore_glob = ["fixtures/apps/*"]
