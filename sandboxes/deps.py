"""Dependency files, read as data: a requirements file is parsed line by line into requirement specifiers,
never handed to pip as it is. Option lines (--index-url, --extra-index-url, --find-links, -e, -r, -c, --trusted-host
…), direct URL and VCS references and local paths are refused with the reason; what remains is a list of
`name[extras] specifier ; marker` strings that `pip download --only-binary=:all:` on the host and `pip install
--no-index` in the sandbox can use safely."""

from __future__ import annotations

import hashlib

import msgspec
from packaging.requirements import InvalidRequirement, Requirement


class Refused(msgspec.Struct, frozen=True):
    line: int
    """The line in its file; 0 for an entry of a table (a lock file, pyproject.toml)."""
    text: str
    reason: str
    source: str = ""
    """The repository-relative file it came from, when known."""

    def describe(self) -> str:
        """`line 3: torch @ https://… (a direct URL …; requirements.txt)`: the report's form (its `line N: name`
        start is what grader.dynamic.run reads the refused names from)."""
        return f"line {self.line}: {self.text} ({self.reason}{'; ' + self.source if self.source else ''})"


class ParsedRequirements(msgspec.Struct, frozen=True):
    requirements: list[str]
    refused: list[Refused]

    def cache_key(self, base_image_id: str) -> str:
        """The dependency layer's cache key: what is installed and on what."""
        digest = hashlib.sha256("\n".join(sorted(self.requirements)).encode() + b"\0" + base_image_id.encode())
        return digest.hexdigest()[:32]


_REASONS = [
    (("--index-url", "-i ", "--extra-index-url", "--trusted-host"), "points pip at another package index"),
    (("--find-links", "-f "), "points pip at local or remote archives"),
    (("-e ", "--editable"), "an editable install would run the project's build on install"),
    (("-r ", "--requirement", "-c ", "--constraint"), "includes another file, which is not read"),
    (("--",), "pip options are not accepted"),
]


def parse_requirements(text: str) -> ParsedRequirements:
    requirements: list[str] = []
    refused: list[Refused] = []
    for number, raw in enumerate(_logical_lines(text), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        reason = _option_reason(line)
        if reason is None and (
            line.startswith((".", "/", "~"))
            or "://" in line.split(";")[0]
            or line.startswith(("git+", "hg+", "svn+", "bzr+"))
        ):
            reason = "a direct URL, VCS or local path reference is not installed from the wheelhouse"
        if reason is None:
            try:
                requirement = Requirement(line)
            except InvalidRequirement as error:
                reason = f"not a requirement: {str(error)[:120]}"
            else:
                if requirement.url:
                    reason = "a direct URL reference (name @ url) is not installed from the wheelhouse"
                else:
                    requirements.append(str(requirement))
                    continue
        refused.append(Refused(number, line[:200], reason))
    return ParsedRequirements(requirements, refused)


def _option_reason(line: str) -> str | None:
    if not line.startswith("-"):
        return None
    for prefixes, reason in _REASONS:
        if line.startswith(prefixes):
            return reason
    return "pip options are not accepted"


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined, keeping one entry per physical start line for numbering."""
    lines: list[str] = []
    pending = ""
    for physical in text.splitlines():
        if physical.rstrip().endswith("\\"):
            pending += physical.rstrip()[:-1] + " "
            continue
        lines.append(pending + physical)
        pending = ""
    if pending:
        lines.append(pending)
    return lines
