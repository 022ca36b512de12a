"""Rubric loading: built-ins validate; an invalid rubric gets every problem with field path and line, no traceback."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import jsonschema
import msgspec
import pytest
import yaml

from rubrics.catalogue import CATALOGUE, LatencyParams
from rubrics.errors import RubricInvalid, RubricNotFound, RubricSyntaxError
from rubrics.loader import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING,
    MAX_NODES,
    MAX_NUMBER_DIGITS,
    leaf_paths,
    load_rubric_file,
    load_rubric_text,
)
from rubrics.registry import builtin_rubrics, catalogue_table, resolve_rubric
from rubrics.schema import rubric_json_schema, tidy_descriptions
from rubrics.validate import MAX_DEPTH

HEAD = "id: demo\nversion: 1\ntitle: Demo\ncriteria:\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(RubricInvalid) as caught:
        load_rubric_text(text, source="t.yaml")
    return [str(problem) for problem in caught.value.problems]


def leaf_yaml(check: str, extra: str = "") -> str:
    return HEAD + f"  - id: a\n    title: A\n    weight: 1\n    check: {check}\n{extra}"


def test_builtin_capstone_has_exactly_the_required_top_level_criteria() -> None:
    capstone = resolve_rubric("ai-engineer-capstone")
    ids = [node.id for node in capstone.rubric.criteria]
    assert ids == ["evals", "injection", "citations", "cost", "latency", "engineering"]
    assert capstone.params["latency.p95"] == LatencyParams(p95_seconds=3.0, min_requests=50)
    kinds = {node.check.kind for _, node in leaf_paths(capstone.rubric) if node.check}
    assert kinds == {"static", "dynamic", "judge"}


def test_builtin_interview_weights_tradeoffs_and_failures_at_least_half() -> None:
    interview = resolve_rubric("ai-engineer-interview").rubric
    weights = {node.id: node.weight for node in interview.criteria}
    assert weights["tradeoffs"] + weights["failure_analysis"] >= sum(weights.values()) / 2
    assert all(node.check and node.check.kind == "interview" for node in interview.criteria)
    assert all([level.name for level in node.levels] == ["low", "medium", "high"] for node in interview.criteria)


def test_every_builtin_leaf_names_a_catalogue_check() -> None:
    for loaded in builtin_rubrics():
        for path, node in leaf_paths(loaded.rubric):
            assert node.check is not None and node.check.name in CATALOGUE, path
            assert path in loaded.params


def test_negative_weight_names_path_and_line() -> None:
    text = HEAD + "  - id: a\n    title: A\n    weight: 1\n    check: {kind: static, name: dockerfile}\n"
    text += "  - id: b\n    title: B\n    weight: 1\n    check: {kind: static, name: dockerfile}\n"
    text += "  - id: c\n    title: C\n    weight: -2\n    check: {kind: static, name: dockerfile}\n"
    assert problems_of(text) == ["criteria[2].weight: must be > 0.0 (line 15)"]


def test_unknown_check_suggests_the_closest_name() -> None:
    assert problems_of(leaf_yaml("{kind: dynamic, name: latency_p59}")) == [
        "criteria[0].check.name: unknown check 'latency_p59' (did you mean 'latency_p95'?) (line 8)"
    ]


def test_check_of_the_wrong_kind() -> None:
    assert problems_of(leaf_yaml("{kind: static, name: latency_p95}")) == [
        "criteria[0].check.kind: check 'latency_p95' is a dynamic check, not static (line 8)"
    ]


def test_bad_param_type_and_unknown_param() -> None:
    bad_type = leaf_yaml("\n      kind: dynamic\n      name: latency_p95\n      params:\n        p95_seconds: fast")
    assert problems_of(bad_type) == ["criteria[0].check.params.p95_seconds: must be a number, got a string (line 12)"]
    typo = leaf_yaml("\n      kind: dynamic\n      name: latency_p95\n      params:\n        p95_secnds: 2")
    assert problems_of(typo) == [
        "criteria[0].check.params.p95_secnds: unknown field 'p95_secnds' (did you mean 'p95_seconds'?) (line 12)"
    ]


def test_tuning_a_check_without_code() -> None:
    text = leaf_yaml("{kind: dynamic, name: latency_p95, params: {p95_seconds: 2}}")
    loaded = load_rubric_text(text)
    assert loaded.params["a"] == LatencyParams(p95_seconds=2.0)


def test_leaf_without_check_and_parent_with_check() -> None:
    text = (
        HEAD
        + textwrap.dedent("""\
      - id: a
        title: A
        weight: 1
      - id: b
        title: B
        weight: 1
        check: {kind: static, name: dockerfile}
        children:
          - {id: c, title: C, weight: 1, check: {kind: static, name: dockerfile}}
    """)
        .replace("\n", "\n  ")
        .rstrip()
        + "\n"
    )
    text = HEAD + "  " + text[len(HEAD) :]
    found = problems_of(text)
    assert "criteria[0]: a leaf criterion needs a `check` (or `children`) (line 5)" in found
    assert "criteria[1].check: a criterion with children is scored from them and cannot have a check (line 11)" in found


def test_duplicate_ids_and_bad_levels_and_mixed_kinds() -> None:
    text = HEAD + textwrap.indent(
        textwrap.dedent("""\
        - {id: a, title: A, weight: 1, check: {kind: static, name: dockerfile}}
        - id: a
          title: B
          weight: 1
          check: {kind: static, name: dockerfile}
          levels: [{name: low, description: x}]
        - {id: c, title: C, weight: 1, check: {kind: interview, name: interview_dimension}}
    """),
        "  ",
    )
    found = problems_of(text)
    assert "criteria[1].id: duplicate id 'a' (also criteria entry 0 at this level) (line 6)" in found
    assert "criteria[1].levels: levels must be named 0, 1, 2, 3 in that order; got low (line 10)" in found
    assert any("mixes interview dimensions with grading checks" in problem for problem in found)


def test_several_structural_problems_are_reported_together() -> None:
    text = "id: Bad Id\nversion: 0\ntitle: X\ncolour: red\ncriteria:\n  - id: a\n    title: A\n    weight: heavy\n"
    text += "    check: {kind: statik, name: dockerfile}\n  - 7\n"
    found = problems_of(text)
    assert found[:3] == [
        "id: must be lower-case letters, digits, '_' or '-', starting with a letter (line 1)",
        "version: must be >= 1 (line 2)",
        "colour: unknown field 'colour' (line 4)",
    ]
    assert "criteria[0].weight: must be a number, got a string (line 8)" in found
    assert "criteria[1]: must be a mapping (a criterion) (line 10)" in found


def test_malformed_yaml_gives_the_line() -> None:
    with pytest.raises(RubricSyntaxError) as caught:
        load_rubric_text(HEAD + "  - id: a\n    title: [unclosed\n    weight: 1\n")
    assert caught.value.line is not None and caught.value.line >= 6


def test_non_mapping_document() -> None:
    assert problems_of("- 1\n- 2\n") == ["(document): a rubric must be a mapping of fields, got list (line 1)"]


def test_aliases_refused_so_billion_laughs_cannot_expand() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(RubricSyntaxError, match="aliases"):
        load_rubric_text(laughs)


def test_python_tags_refused() -> None:
    with pytest.raises(RubricSyntaxError, match="unsupported YAML"):
        load_rubric_text("id: !!python/object/apply:os.system ['true']\n")


def test_huge_document_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_DOCUMENT_BYTES + "\n")
    with pytest.raises(RubricSyntaxError, match="at most"):
        load_rubric_file(big)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(RubricSyntaxError, match="no such file"):
        load_rubric_file(tmp_path / "nope.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RubricSyntaxError, match="not UTF-8"):
        load_rubric_file(latin)


def test_json_rubrics_load_too(tmp_path: Path) -> None:
    capstone = resolve_rubric("ai-engineer-capstone")
    path = tmp_path / "capstone.json"
    path.write_bytes(msgspec.json.encode(capstone.rubric))
    assert load_rubric_file(path).content_hash == capstone.content_hash


def test_hash_ignores_formatting_but_not_content() -> None:
    one = load_rubric_text(leaf_yaml("{kind: static, name: dockerfile}"))
    reformatted = load_rubric_text("# comment\n" + leaf_yaml("\n      kind: static\n      name: dockerfile"))
    explicit_defaults = load_rubric_text(leaf_yaml("{kind: dynamic, name: latency_p95, params: {p95_seconds: 3.0}}"))
    implicit_defaults = load_rubric_text(leaf_yaml("{kind: dynamic, name: latency_p95}"))
    heavier = load_rubric_text(leaf_yaml("{kind: static, name: dockerfile}").replace("weight: 1", "weight: 2"))
    assert one.content_hash == reformatted.content_hash
    assert explicit_defaults.content_hash == implicit_defaults.content_hash
    assert one.content_hash != heavier.content_hash
    assert one.content_hash.startswith("sha256:") and len(one.content_hash) == 71


def test_resolve_unknown_id_lists_builtins() -> None:
    with pytest.raises(RubricNotFound, match="ai-engineer-capstone"):
        resolve_rubric("no-such-rubric")


def test_json_schema_describes_params_per_check() -> None:
    schema = rubric_json_schema()
    assert schema["$ref"] == "#/$defs/Rubric"
    check = schema["$defs"]["Check"]
    assert set(check["properties"]["name"]["enum"]) == set(CATALOGUE)
    branch = next(rule for rule in check["allOf"] if rule["if"]["properties"]["name"]["const"] == "latency_p95")
    params_ref = branch["then"]["properties"]["params"]["$ref"].split("/")[-1]
    assert "p95_seconds" in schema["$defs"][params_ref]["properties"]
    json.dumps(schema)


def test_builtins_validate_against_the_json_schema() -> None:
    schema = rubric_json_schema()
    for loaded in builtin_rubrics():
        jsonschema.validate(msgspec.to_builtins(loaded.rubric), schema)
    broken = msgspec.to_builtins(builtin_rubrics()[0].rubric)
    broken["criteria"][0]["children"][0]["check"]["params"] = {"minimum": "many"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_catalogue_table_lists_defaults() -> None:
    rows = {row["name"]: row for row in catalogue_table()}
    assert rows["latency_p95"]["params"] == {"p95_seconds": 3.0, "min_requests": 50, "concurrency": 4}
    assert rows["eval_case_count"]["kind"] == "static"


def test_schema_descriptions_are_dedented_whichever_msgspec_is_installed() -> None:
    # msgspec before 0.23 kept a docstring's indentation, 0.23 dedents it: the committed schemas must not depend on it
    before_023 = {"$defs": {"A": {"description": "First line;\n    second line.", "properties": {}}}}
    from_023 = {"$defs": {"A": {"description": "First line;\nsecond line.", "properties": {}}}}
    assert tidy_descriptions(before_023) == tidy_descriptions(from_023) == from_023


# --- red-team findings: input that crashed the parser or was saved silently --------------------------------------


def syntax_error_of(text: str) -> RubricSyntaxError:
    """The RubricSyntaxError `text` raises, in well under a second of CPU (no other exception, no slow parse)."""
    started = time.process_time()
    with pytest.raises(RubricSyntaxError) as caught:
        load_rubric_text(text, source="t.yaml")
    assert time.process_time() - started < 0.5, f"took {time.process_time() - started:.2f}s of CPU"
    return caught.value


@pytest.mark.parametrize("opener", ["[", '{"a": ['], ids=["yaml", "json"])
def test_finding_20000_nested_brackets_refused_before_parsing(opener: str) -> None:
    error = syntax_error_of(opener * 20_000)
    assert error.reason == f"brackets are nested more than {MAX_NESTING} deep" and error.line == 1


@pytest.mark.parametrize("opener", ["{a: ", '{"a": '], ids=["yaml", "json"])
def test_finding_5000_nested_mappings_refused_before_parsing(opener: str) -> None:
    error = syntax_error_of("{\n" + opener * 5_000)
    assert "nested more than" in error.reason and error.line == 2


@pytest.mark.parametrize("opener", ["- ", "? "])
def test_finding_deep_block_nesting_refused_by_the_composer(opener: str) -> None:
    error = syntax_error_of(opener * 5_000 + "x")
    assert error.reason == f"lists and mappings are nested more than {MAX_NESTING} deep" and error.line == 1


def test_finding_deep_indentation_refused_with_its_line() -> None:
    text = "".join(" " * level + f"k{level}:\n" for level in range(400))
    error = syntax_error_of(text)
    assert error.reason.endswith(f"nested more than {MAX_NESTING} deep") and error.line == MAX_NESTING


@pytest.mark.parametrize("digits", ["1" * 5_001, "-" + "1" * 5_001, "1_" * 3_000 + "1", "1" + ":59" * 3_000])
def test_finding_5001_digit_weight_refused_with_its_line(digits: str) -> None:
    error = syntax_error_of(leaf_yaml("{kind: static, name: dockerfile}").replace("weight: 1", f"weight: {digits}"))
    assert error.reason == f"a number has more than {MAX_NUMBER_DIGITS} digits" and error.line == 7


def test_finding_longest_number_allowed_is_a_problem_not_a_crash() -> None:
    huge = "9" * MAX_NUMBER_DIGITS
    assert problems_of(leaf_yaml("{kind: static, name: dockerfile}").replace("weight: 1", f"weight: {huge}")) == [
        "criteria[0].weight: must be <= 1000.0 (line 7)"
    ]


def test_finding_duplicate_yaml_key_refused_with_its_line() -> None:
    text = leaf_yaml("{kind: static, name: dockerfile}").replace("    weight: 1\n", "    weight: 1\n    weight: 5\n")
    error = syntax_error_of(text)
    assert str(error) == "t.yaml: duplicate key 'weight' (first on line 7) (line 8)"


def test_finding_duplicate_key_in_a_flow_mapping_refused() -> None:
    error = syntax_error_of(leaf_yaml("{kind: static, name: dockerfile, kind: judge}"))
    assert error.reason == "duplicate key 'kind' (first on line 8)" and error.line == 8


def test_finding_duplicate_json_key_refused_with_its_line() -> None:
    capstone = msgspec.to_builtins(resolve_rubric("ai-engineer-capstone").rubric)
    text = json.dumps(capstone, indent=2).replace('  "version": 1,', '  "version": 1,\n  "version": 2,', 1)
    error = syntax_error_of(text)
    assert error.reason == "duplicate key 'version' (first on line 3)" and error.line == 4


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-02-30", "cannot read '2024-02-30' as a date: day is out of range for month"),
        ("0x_", "cannot read '0x_' as an integer: invalid literal for int() with base 16: ''"),
        ("!!bool maybe", "unsupported YAML: tag 'tag:yaml.org,2002:bool' (a rubric is plain data, without tags)"),
        ("!!timestamp x", "unsupported YAML: tag 'tag:yaml.org,2002:timestamp' (a rubric is plain data, without tags)"),
        ('"\\ud800"', "text holds half a surrogate pair (a lone \\ud800-\\udfff escape)"),
        ("\x00", "not valid YAML/JSON: character U+0000 is not allowed"),
    ],
)
def test_finding_values_the_yaml_constructor_crashed_on_are_refused_with_their_line(value: str, reason: str) -> None:
    error = syntax_error_of(HEAD.replace("title: Demo", f"title: {value}"))
    assert (error.reason, error.line) == (reason, 3)


@pytest.mark.parametrize(("key", "kind"), [("on", "true/false"), ("1", "an integer"), ("null", "null")])
def test_finding_keys_yaml_reads_as_non_text_are_refused(key: str, kind: str) -> None:
    error = syntax_error_of(HEAD + f"{key}: x\n")
    assert (error.reason, error.line) == (f"key {key!r} is read as {kind}, not text; quote it", 5)


def test_finding_alias_refused_where_it_is_met() -> None:
    error = syntax_error_of("id: &name demo\nversion: 1\ntitle: *name\n")
    assert error.reason == "YAML aliases (*name) are not allowed in a rubric" and error.line == 3


def test_finding_many_values_refused_before_all_are_parsed() -> None:
    started = time.process_time()
    with pytest.raises(RubricSyntaxError, match=f"more than {MAX_NODES:,} values"):
        load_rubric_text("[" + "1," * 120_000 + "1]")  # 240 KB: parsing it all took 4.5 s of CPU
    assert time.process_time() - started < 2.0


def test_finding_oversized_text_refused_before_parsing() -> None:
    error = syntax_error_of("# " + "x" * MAX_DOCUMENT_BYTES)
    assert error.reason.endswith(f"a rubric may be at most {MAX_DOCUMENT_BYTES:,}")


def test_json_surrogate_pair_escapes_are_joined_into_one_character() -> None:
    capstone = msgspec.to_builtins(resolve_rubric("ai-engineer-capstone").rubric)
    capstone["title"] = "Capstone \U0001f680"
    assert load_rubric_text(json.dumps(capstone)).rubric.title == "Capstone \U0001f680"  # "\ud83d\ude80" in the JSON


def test_limits_leave_the_deepest_allowed_rubric_alone() -> None:
    leaf = {"id": "leaf", "title": "L", "weight": 1, "check": {"kind": "dynamic", "name": "latency_p95"}}
    for depth in range(MAX_DEPTH - 1):
        leaf = {"id": f"n{depth}", "title": "N", "weight": 1, "children": [leaf]}
    rubric = {"id": "deep", "version": 1, "title": "Deep", "criteria": [leaf]}
    for text in (json.dumps(rubric), json.dumps(rubric, indent=2), yaml.safe_dump(rubric)):
        loaded = load_rubric_text(text)
        assert [path for path, _ in leaf_paths(loaded.rubric)] == ["n4.n3.n2.n1.n0.leaf"]


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_a_line_is_numbered_as_an_editor_shows_it_when_yaml_breaks_lines_elsewhere(separator: str) -> None:
    # YAML counts U+0085 / U+2028 / U+2029 as line breaks; an editor (and the error's reader) does not.
    with pytest.raises(RubricSyntaxError) as caught:
        load_rubric_text('{"' + separator + '": null}')
    assert caught.value.line == 1
    with pytest.raises(RubricSyntaxError) as duplicate:
        load_rubric_text(f"id: a{separator}b\nid: c\n")
    assert duplicate.value.line == 2
