"""`viva judge-eval` on the labelled fixture set: the grader agrees with the human labels, measured by QWK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.cli import main
from tests.fixtures.labelled_set import build


def test_judge_eval_reports_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = build(tmp_path / "set")
    out = tmp_path / "agreement.json"
    assert main(["judge-eval", str(labels), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "quadratic weighted kappa" in printed and "Spearman of totals" in printed
    result = json.loads(out.read_text())
    agreement = result["agreement"]
    assert agreement["pairs"] == 6 * 16
    assert agreement["qwk"] >= 0.8, agreement
    assert agreement["spearman_totals"] >= 0.8
    assert set(agreement["confusion"]) == {row[1] for row in result["rows"]}


def test_bad_labels_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text(
        json.dumps(
            {"rubric": "ai-engineer-capstone", "repos": [{"name": "x", "path": ".", "labels": {"evals.cases": 7}}]}
        )
    )
    assert main(["judge-eval", str(bad)]) == 1
    assert "levels 0..3" in capsys.readouterr().out
