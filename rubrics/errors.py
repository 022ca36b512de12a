"""Errors raised by the rubrics package."""

from __future__ import annotations

import msgspec


class RubricError(Exception):
    """Root of every error this package raises."""


class RubricProblem(msgspec.Struct, frozen=True):
    """One thing wrong with a rubric: where (a field path and, when known, a source line) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}"


class RubricInvalid(RubricError):
    """Raised when a rubric document parses but breaks the schema or the rules; carries every problem found."""

    def __init__(self, problems: list[RubricProblem], source: str = "rubric") -> None:
        self.problems = problems
        self.source = source
        listing = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{source} is not a valid rubric:\n{listing}")


class RubricSyntaxError(RubricError):
    """Raised when a rubric document is not well-formed YAML or JSON at all."""

    def __init__(self, message: str, line: int | None = None, source: str = "rubric") -> None:
        self.reason = message
        self.line = line
        self.source = source
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{source}: {message}{where}")


class RubricNotFound(RubricError):
    """Raised when a rubric id names no built-in rubric and no file."""
