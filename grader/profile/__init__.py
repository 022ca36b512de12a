"""The static profile: facts about a repository, read from its files, each with `path:line` evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grader.profile.model import ProfileLimits, RepoProfile

if TYPE_CHECKING:
    from grader.profile.build import build_profile

__all__ = ["ProfileLimits", "RepoProfile", "build_profile"]


def __getattr__(name: str) -> Any:
    # build_profile (regexes, YAML, the Python analyser) loads on first use: the settings import this package for
    # ProfileLimits alone, and `viva --help` should not pay for the profiler.
    if name == "build_profile":
        from grader.profile.build import build_profile  # noqa: PLC0415 - see above

        return build_profile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
