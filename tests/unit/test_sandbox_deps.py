"""Requirements are parsed, never handed to pip: option lines, URLs, VCS and local paths are refused with a reason."""

from __future__ import annotations

import pytest

from sandboxes.base import SandboxLimits
from sandboxes.deps import parse_requirements


def test_plain_requirements_are_kept_normalised() -> None:
    parsed = parse_requirements(
        "fastapi==0.115.6\nopenai>=1.0  # comment\nuvicorn[standard]==0.32.1; python_version>'3.8'\n"
    )
    assert parsed.requirements == [
        "fastapi==0.115.6",
        "openai>=1.0",
        'uvicorn[standard]==0.32.1; python_version > "3.8"',
    ]
    assert parsed.refused == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("--index-url http://evil.example/simple", "another package index"),
        ("--extra-index-url https://x.example", "another package index"),
        ("-i https://x.example/simple", "another package index"),
        ("--find-links /tmp/wheels", "archives"),
        ("-f ./wheels", "archives"),
        ("-e .", "editable"),
        ("-e git+https://github.com/o/n.git#egg=n", "editable"),
        ("-r other.txt", "another file"),
        ("--trusted-host evil.example", "another package index"),
        ("--pre", "pip options"),
        ("./local/package", "local path"),
        ("/abs/package.tar.gz", "local path"),
        ("git+https://github.com/o/n.git", "VCS"),
        ("https://files.example/pkg-1.0.tar.gz", "direct URL"),
        ("pkg @ https://files.example/pkg-1.0.tar.gz", "direct URL"),
        ("pkg @ file:///etc/passwd", "direct URL"),
        ("not a requirement!!", "not a requirement"),
    ],
)
def test_refused_lines_say_why(line: str, reason: str) -> None:
    parsed = parse_requirements(f"fastapi==0.115.6\n{line}\n")
    assert parsed.requirements == ["fastapi==0.115.6"]
    [refused] = parsed.refused
    assert refused.line == 2 and reason in refused.reason


def test_continuations_and_cache_key() -> None:
    parsed = parse_requirements("fastapi==0.115.6 \\\n  ; python_version >= '3.8'\nhttpx==0.28.1\n")
    assert len(parsed.requirements) == 2
    same = parse_requirements("httpx==0.28.1\nfastapi==0.115.6; python_version >= '3.8'\n")
    assert parsed.cache_key("sha256:img") == same.cache_key("sha256:img")
    assert parsed.cache_key("sha256:img") != parsed.cache_key("sha256:other")


def test_limits_are_lowered_by_grading_and_organisation_caps() -> None:
    base = SandboxLimits(memory_mb=2048, timeout_s=300)
    capped = base.capped_by(SandboxLimits(memory_mb=512), None, SandboxLimits(timeout_s=60, cpus=4))
    assert (capped.memory_mb, capped.timeout_s, capped.cpus) == (512, 60, 1.0)
