"""Built-in rubrics (rubrics/builtin/*.yaml) and resolving "an id or a file" to a loaded rubric."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import msgspec

from rubrics.catalogue import CATALOGUE
from rubrics.errors import RubricNotFound
from rubrics.loader import LoadedRubric, load_rubric_file

BUILTIN_DIR = Path(__file__).parent / "builtin"


@cache
def builtin_rubrics() -> list[LoadedRubric]:
    """Every built-in rubric, loaded and validated (a broken built-in is a bug: it raises)."""
    return [load_rubric_file(path) for path in sorted(BUILTIN_DIR.glob("*.yaml"))]


def resolve_rubric(id_or_path: str) -> LoadedRubric:
    """A built-in rubric by id, else a rubric file by path."""
    for loaded in builtin_rubrics():
        if loaded.rubric.id == id_or_path:
            return loaded
    path = Path(id_or_path)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        return load_rubric_file(path)
    known = ", ".join(loaded.rubric.id for loaded in builtin_rubrics())
    raise RubricNotFound(f"no built-in rubric {id_or_path!r} and no such file; built-in rubrics: {known}")


def catalogue_table() -> list[dict[str, object]]:
    """The check catalogue as rows (name, kind, summary, parameter defaults), for `viva rubric show` and editors."""
    return [
        {"name": spec.name, "kind": spec.kind, "summary": spec.summary, "params": msgspec.to_builtins(spec.params())}
        for spec in CATALOGUE.values()
    ]
