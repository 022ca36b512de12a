"""JSON Schema of the rubric document format, so editors can validate and autocomplete rubric files.

msgspec describes the Structs; on top of that, the schema of each check's `params` is attached by check
name (if name == X then params follow X's schema), and `name` is limited to the catalogue.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from rubrics.catalogue import CATALOGUE
from rubrics.model import Rubric


def rubric_json_schema() -> dict[str, Any]:
    param_types = sorted({spec.params for spec in CATALOGUE.values()}, key=lambda t: t.__name__)
    (rubric_ref, *param_refs), components = msgspec.json.schema_components([Rubric, *param_types])
    ref_by_type = dict(zip(param_types, param_refs, strict=True))
    check = components["Check"]
    check["properties"]["name"] = {"enum": sorted(CATALOGUE), "description": "a check from the catalogue"}
    check["allOf"] = [
        {
            "if": {"properties": {"name": {"const": name}}, "required": ["name"]},
            "then": {"properties": {"kind": {"const": spec.kind}, "params": ref_by_type[spec.params]}},
        }
        for name, spec in sorted(CATALOGUE.items())
    ]
    return tidy_descriptions(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Viva rubric",
            **rubric_ref,
            "$defs": components,
        }
    )


def tidy_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    """Dedent every `description` taken from a docstring, in place, and return the schema.

    msgspec 0.23 started dedenting docstrings itself and older releases did not; cleaning them here makes the
    committed schemas the same whichever release is installed.
    """
    _tidy(schema)
    return schema


def _tidy(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = inspect.cleandoc(value)
            else:
                _tidy(value)
    elif isinstance(node, list):
        for item in node:
            _tidy(item)
