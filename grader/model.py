"""Plain data the grader passes around: evidence and scores.

A check returns a `Score`; scoring arithmetic (grader.scoring) turns leaf scores into a tree.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

ScoreStatus = Literal["scored", "not_run", "error"]
Basis = Literal["static", "dynamic", "judge", "interview"]

UnitInterval = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class Evidence(msgspec.Struct, frozen=True, omit_defaults=True):
    """A place in the repository a score rests on. `path` is relative to the repo root, POSIX style;
    `line` is 1-based (None for a whole file or a measured fact); `excerpt` is the text there, verbatim
    (untrusted: every renderer escapes it)."""

    path: str
    line: int | None = None
    excerpt: str = ""
    note: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class Score(msgspec.Struct, frozen=True, omit_defaults=True):
    """The result of one check for one rubric leaf.

    - status "scored": `value` in 0..1, the candidate's result (0 for a shortfall, with the reason);
    - status "not_run": Viva could not run the check (no sandbox, switched off, not built yet); `value` None;
    - status "error": the check itself crashed (our bug); `value` None, excluded like not_run.
    """

    status: ScoreStatus
    explanation: str
    value: UnitInterval | None = None
    basis: Basis = "static"
    evidence: list[Evidence] = msgspec.field(default_factory=list)

    @classmethod
    def scored(
        cls, value: float, explanation: str, evidence: list[Evidence] | None = None, basis: Basis = "static"
    ) -> Score:
        clamped = min(1.0, max(0.0, value))
        return cls(status="scored", value=clamped, explanation=explanation, evidence=evidence or [], basis=basis)

    @classmethod
    def not_run(cls, reason: str, basis: Basis = "static") -> Score:
        return cls(status="not_run", value=None, explanation=reason, basis=basis)

    @classmethod
    def error(cls, reason: str, basis: Basis = "static") -> Score:
        return cls(status="error", value=None, explanation=reason, basis=basis)
