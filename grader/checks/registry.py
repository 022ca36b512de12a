"""One registry per check kind, keyed by catalogue name, and the guard every check runs under.

The catalogue (rubrics.catalogue) says which checks exist and what parameters they take; a kind's registry says
which code runs each of them. Registering a name the catalogue does not list under that kind is refused at import,
and tests/unit/test_check_registries.py holds catalogue, registries and docs/RUBRICS.md to the same names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

from grader.model import Basis, Score
from rubrics.catalogue import CATALOGUE
from rubrics.model import CheckKind

Entry = TypeVar("Entry")


class CheckRegistry(dict[str, Entry], Generic[Entry]):
    """The checks of one kind: catalogue name → what runs it (a function, or the data a shared runner reads)."""

    def __init__(self, kind: CheckKind, entries: Mapping[str, Entry] | None = None) -> None:
        super().__init__()
        self.kind = kind
        for name, entry in (entries or {}).items():
            self.add(name, entry)

    def add(self, name: str, entry: Entry) -> Entry:
        """Register `entry` for `name`. Raises ValueError for a name the catalogue lacks under this kind, or twice."""
        spec = CATALOGUE.get(name)
        if spec is None or spec.kind != self.kind:
            raise ValueError(f"{name!r} is not a {self.kind} check in rubrics/catalogue.py")
        if name in self:
            raise ValueError(f"the {self.kind} check {name!r} is registered twice")
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[Entry], Entry]:
        """Decorator form of `add`: `@STATIC_CHECKS.register("dockerfile")` above the check's function."""
        return lambda entry: self.add(name, entry)


def crash_score(name: str, error: Exception, basis: Basis) -> Score:
    """A crash inside a check is Viva's bug: status "error" with the reason, never a 0 and never a failed grading."""
    return Score.error(f"The check {name!r} failed inside Viva: {type(error).__name__}: {error}", basis=basis)


def guarded(name: str, basis: Basis, check: Callable[[], Score]) -> Score:
    """Run one check; its crash becomes `crash_score`."""
    try:
        return check()
    except Exception as error:
        return crash_score(name, error, basis)


async def guarded_async(name: str, basis: Basis, check: Callable[[], Awaitable[Score]]) -> Score:
    """`guarded` for a check that awaits (the judge's model calls)."""
    try:
        return await check()
    except Exception as error:
        return crash_score(name, error, basis)
