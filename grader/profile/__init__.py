"""The static profile: facts about a repository, read from its files, each with `path:line` evidence."""

from __future__ import annotations

from grader.profile.build import build_profile
from grader.profile.model import ProfileLimits, RepoProfile

__all__ = ["ProfileLimits", "RepoProfile", "build_profile"]
