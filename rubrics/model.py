"""The rubric schema: one tree of weighted criteria for grading rubrics and interview rubrics alike.

A leaf carries a `check` (what scores it); an inner node carries `children` and scores as the
weighted mean of the children that were scored. `levels` say in words what each level looks like:
"0".."3" for grading criteria, "low"/"medium"/"high" for interview dimensions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

CheckKind = Literal["static", "dynamic", "judge", "interview"]

Identifier = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_\-]*$",
        max_length=64,
        description="lower-case letters, digits, '_' and '-', starting with a letter",
    ),
]


class Level(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What one level of a criterion looks like, in words a grader or interviewer can apply."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Check(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What scores a leaf: a check from the catalogue (rubrics.catalogue), by kind and name, with parameters."""

    kind: CheckKind
    name: Identifier
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class Criterion(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A node of the rubric tree: either a leaf with a `check` or a parent with `children`."""

    id: Identifier
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    weight: Annotated[float, msgspec.Meta(gt=0, le=1000)]
    description: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    levels: list[Level] = msgspec.field(default_factory=list)
    children: list[Criterion] = msgspec.field(default_factory=list)
    check: Check | None = None

    @property
    def is_leaf(self) -> bool:
        return not self.children


class Rubric(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A versioned rubric. `id` + `version` name it; the content hash tells two edits of one version apart."""

    id: Identifier
    version: Annotated[int, msgspec.Meta(ge=1)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    criteria: Annotated[list[Criterion], msgspec.Meta(min_length=1)]
    description: Annotated[str, msgspec.Meta(max_length=8000)] = ""

    def leaves(self) -> list[Criterion]:
        """Every leaf of the tree, depth first, in document order."""
        found: list[Criterion] = []
        stack = list(reversed(self.criteria))
        while stack:
            node = stack.pop()
            if node.is_leaf:
                found.append(node)
            else:
                stack.extend(reversed(node.children))
        return found
