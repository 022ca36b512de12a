"""Whatever text arrives, the rubric loader returns a loaded rubric or raises RubricError, and does so quickly.

Property-based (hypothesis) companions to the red-team regressions in test_rubrics_loader.py: random nesting,
random numbers, random keys, random text and bytes, and random damage to a real rubric.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rubrics.errors import RubricError, RubricInvalid, RubricSyntaxError
from rubrics.loader import LoadedRubric, leaf_paths, load_rubric_file, load_rubric_text
from rubrics.registry import BUILTIN_DIR

BUDGET_SECONDS = 0.5
"""CPU seconds per example, of this thread alone and with the garbage collector held: neither other work on the
machine, nor other threads of a long test run, nor a collection of garbage the earlier tests left counts. The
slowest input here takes a few milliseconds; a second means a limit is missing."""

PROPERTY = settings(max_examples=150, deadline=None, database=None)
CAPSTONE = (BUILTIN_DIR / "ai-engineer-capstone.yaml").read_text(encoding="utf-8")
HEAD = "id: demo\nversion: 1\ntitle: Demo\ncriteria:\n"


def outcome(text: str) -> LoadedRubric | RubricError:
    """Load `text`; any exception other than RubricError fails the test, and so does a slow load."""
    gc.disable()
    started = time.thread_time()
    try:
        result: LoadedRubric | RubricError = load_rubric_text(text, source="fuzz")
    except RubricError as error:
        result = error
    finally:
        elapsed = time.thread_time() - started
        gc.enable()
    assert elapsed < BUDGET_SECONDS, f"took {elapsed:.2f}s on {text[:80]!r}..."
    assert_well_formed(result, text)
    return result


def assert_well_formed(result: LoadedRubric | RubricError, text: str) -> None:
    """An error says what is wrong and points inside the document; a loaded rubric has usable weights."""
    last_line = text.count("\n") + 1
    if isinstance(result, RubricSyntaxError):
        assert result.reason, "a syntax error with no reason"
        assert result.line is None or 1 <= result.line <= last_line, f"line {result.line} of {last_line}"
    elif isinstance(result, RubricInvalid):
        assert result.problems, "RubricInvalid without problems"
        for problem in result.problems:
            assert problem.line is None or 1 <= problem.line <= last_line, f"{problem} of {last_line} lines"
    elif isinstance(result, LoadedRubric):
        for path, node in leaf_paths(result.rubric):
            assert math.isfinite(node.weight) and 0 < node.weight <= 1000, f"{path}: weight {node.weight}"


def rubric_with(weight: str = "1", params: str = "{}", version: str = "1") -> str:
    return (
        f"id: demo\nversion: {version}\ntitle: Demo\ncriteria:\n  - id: a\n    title: A\n    weight: {weight}\n"
        f"    check: {{kind: dynamic, name: latency_p95, params: {params}}}\n"
    )


# --- nesting -------------------------------------------------------------------------------------------------------

OPENERS = ["[", "{", "{a: ", '{"a": ', "[{a: ", "- ", "? ", "a: [", "- a: "]  # each one opens a level


@PROPERTY
@given(opener=st.sampled_from(OPENERS), depth=st.integers(0, 30_000), close=st.booleans())
def test_any_nesting_depth_is_refused_or_loaded(opener: str, depth: int, close: bool) -> None:
    closer = {"[": "]", "{": "}"}
    tail = "".join(closer.get(char, "") for char in reversed(opener * depth)) if close else ""
    outcome(opener * depth + "x" + tail)


@PROPERTY
@given(depth=st.integers(1, 700), step=st.integers(1, 2))
def test_any_indentation_depth_is_refused_or_loaded(depth: int, step: int) -> None:
    outcome("".join(" " * (level * step) + f"k{level}:\n" for level in range(depth)) + " " * (depth * step) + "x\n")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@PROPERTY
@given(value=json_values, indent=st.sampled_from([None, 2]), ascii_only=st.booleans())
def test_any_json_value_is_refused_or_loaded(value: object, indent: int | None, ascii_only: bool) -> None:
    outcome(json.dumps(value, indent=indent, ensure_ascii=ascii_only))


# --- numbers -------------------------------------------------------------------------------------------------------

SPELLINGS = [
    ".nan", ".NaN", "NaN", "nan", ".inf", "-.inf", "+.inf", ".Inf", "inf", "Infinity", "-Infinity",
    "1e400", "1.0e+400", "-1.0e+400", "1.0e-400", "0x_", "0b_", "0o7", "0x7f", "017", "1:30", "1_000", "+1", "-0",
    "0.", ".5", "1e3", "~", "null", "true", "''",
]  # fmt: skip


def numbers() -> st.SearchStrategy[str]:
    digits = st.text("0123456789", min_size=1, max_size=6_000)
    decimal = st.builds(lambda sign, whole, frac: sign + whole + frac, st.sampled_from(["", "-", "+"]), digits,
                        st.sampled_from(["", ".0", ".5e3", "e-7", ".25"]))  # fmt: skip
    prefixed = st.builds(lambda prefix, body: prefix + body, st.sampled_from(["0x", "0o", "0b", "0", "1:"]), digits)
    return st.sampled_from(SPELLINGS) | decimal | prefixed | st.floats().map(repr) | st.integers().map(str)


@PROPERTY
@given(number=numbers(), where=st.sampled_from(["weight", "version", "p95_seconds", "min_requests"]))
def test_any_number_spelling_is_refused_or_loaded(number: str, where: str) -> None:
    if where == "weight":
        text = rubric_with(weight=number)
    elif where == "version":
        text = rubric_with(version=number)
    else:
        text = rubric_with(params=f"{{{where}: {number}}}")
    outcome(text)


# --- keys ----------------------------------------------------------------------------------------------------------

TEXT_KEYS = {"id": "id", "title": "title", "a": "a", "'id'": "id", '"id"': "id", "'on'": "on"}
OTHER_KEYS = ["1", "1.5", "on", "yes", "null", "~", "true", "[a]", "{a: 1}"]  # YAML 1.1 reads none of them as text


@PROPERTY
@given(keys=st.lists(st.sampled_from([*TEXT_KEYS, *OTHER_KEYS]), min_size=1, max_size=8))
def test_duplicate_or_non_text_keys_are_refused_with_their_line(keys: list[str]) -> None:
    result = outcome("".join(f"{key}: 1\n" for key in keys))
    seen: set[str] = set()
    for line, key in enumerate(keys, start=1):
        if key not in TEXT_KEYS or TEXT_KEYS[key] in seen:
            expected = "duplicate key" if key in TEXT_KEYS else "key"
            assert isinstance(result, RubricSyntaxError), f"{keys}: {result}"
            assert expected in result.reason and result.line == line, f"{keys}: {result}"
            return
        seen.add(TEXT_KEYS[key])
    assert isinstance(result, RubricInvalid), f"{keys}: {result}"  # unique text keys: parsed, then judged


@PROPERTY
@given(pairs=st.lists(st.tuples(st.sampled_from(["id", "title", "a", "b"]), st.integers(0, 9)), max_size=6))
def test_json_duplicate_keys_are_refused_with_their_line(pairs: list[tuple[str, int]]) -> None:
    text = "{\n" + ",\n".join(f'  "{key}": {value}' for key, value in pairs) + "\n}\n"
    result = outcome(text)
    names = [key for key, _ in pairs]
    repeated = next((index for index, key in enumerate(names) if key in names[:index]), None)
    if repeated is not None:
        assert isinstance(result, RubricSyntaxError) and "duplicate key" in result.reason, result
        assert result.line == repeated + 2, result  # line 1 is the `{`


# --- random text and bytes -----------------------------------------------------------------------------------------

YAML_SIGNIFICANT = st.sampled_from([*"[]{}:,-?&*!|>'\"%@`#\n\t 0123456789.eE+_x~\\", "\ud800", "\x00", "\ufeff"])


@PROPERTY
@given(text=st.text(max_size=400) | st.text(YAML_SIGNIFICANT, max_size=400))
def test_any_text_is_refused_or_loaded(text: str) -> None:
    outcome(text)


@settings(PROPERTY, max_examples=80)  # each example loads the whole capstone rubric
@given(
    start=st.integers(0, len(CAPSTONE)),
    length=st.integers(0, 40),
    insert=st.text(YAML_SIGNIFICANT, max_size=12) | st.text(max_size=12),
)
def test_any_damage_to_a_real_rubric_is_refused_or_loaded(start: int, length: int, insert: str) -> None:
    outcome(CAPSTONE[:start] + insert + CAPSTONE[start + length :])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rubric-bytes")  # module-scoped: hypothesis reuses it across examples


@PROPERTY
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_bytes_in_a_file_are_refused_or_loaded(scratch: Path, raw: bytes, suffix: str) -> None:
    path = scratch / f"rubric{suffix}"
    path.write_bytes(raw)
    started = time.process_time()
    with contextlib.suppress(RubricError):
        load_rubric_file(path)
    assert time.process_time() - started < BUDGET_SECONDS
