"""`viva judge-eval` as the person measuring Viva uses it: labels old and new, splits kept apart, disagreements with
both sides' evidence, a second labeller on the overlap only, cached full reports beside static grading."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from grader.judge_eval import (
    Graded,
    LabelEvidence,
    LabelledRepo,
    LabelSet,
    MissingReport,
    Split,
    load_labels,
    load_reports,
    measure_humans,
    measure_mode,
)
from grader.model import Evidence, Score
from grader.report.model import GradingReport, RepoRef, Reproduction, RubricRef
from grader.scoring import score_rubric
from rubrics.loader import LoadedRubric
from rubrics.registry import resolve_rubric
from server.cli import main
from tests.fixtures.labelled_set import CRITERIA, build

CAPSTONE = "ai-engineer-capstone"
TOP = ["evals", "injection", "citations", "cost", "latency", "engineering"]


@pytest.fixture(scope="module")
def rubric() -> LoadedRubric:
    return resolve_rubric(CAPSTONE)


def _report(rubric: LoadedRubric, levels: dict[str, int], *, rubric_id: str = CAPSTONE) -> GradingReport:
    """A report whose every leaf under each top-level criterion scores that criterion's level (level / 3)."""
    scores = {}
    for leaf_path in rubric.params:
        level = levels.get(leaf_path.split(".")[0], 0)
        evidence = [Evidence(path=f"{leaf_path}.py", line=level + 1)]
        scores[leaf_path] = Score.scored(level / 3, f"{leaf_path} looked like level {level}", evidence)
    scored = score_rubric(rubric.rubric, scores)
    return GradingReport(
        schema_version=1,
        viva_version="test",
        generated_at="2026-12-07T00:00:00+00:00",
        score=scored.score,
        coverage=scored.coverage,
        rubric=RubricRef(id=rubric_id, version=1, hash=rubric.content_hash),
        repo=RepoRef(target="x", source_kind="path"),
        criteria=scored.criteria,
        reproduction=Reproduction(viva_version="test", rubric_hash=rubric.content_hash),
    )


def _labelled(name: str, levels: dict[str, int], why: str = "") -> LabelledRepo:
    evidence = (
        {criterion: LabelEvidence(refs=[f"{name}/{criterion}:1"], why=why) for criterion in levels} if why else {}
    )
    return LabelledRepo(name=name, path=name, labels=levels, evidence=evidence)


def _everywhere(level: int) -> dict[str, int]:
    return dict.fromkeys(TOP, level)


# --- the labels file ----------------------------------------------------------------------------------------------


def test_the_old_labels_format_still_loads(tmp_path: Path) -> None:
    labels = load_labels(build(tmp_path / "set"))  # tests/fixtures/labelled_set.py writes the first format
    assert len(labels.repos) == 6 and labels.guide == labels.labeller == ""
    assert all(repo.evidence == {} and set(repo.labels) == set(CRITERIA) for repo in labels.repos)


def test_the_new_fields_load_with_per_label_evidence(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    evidence = {"evals": {"refs": ["tests/test_rag.py:12", "data/golden.jsonl:1"], "why": "30 cases, run by hand"}}
    repo = {"name": "owner/repo", "path": "x", "labels": {"evals": 2, "cost": 0}, "evidence": {**evidence, "cost": {}}}
    path.write_text(json.dumps({"rubric": CAPSTONE, "guide": "docs/LABELLING.md", "labeller": "A", "repos": [repo]}))
    labels = load_labels(path)
    assert (labels.guide, labels.labeller) == ("docs/LABELLING.md", "A")
    assert labels.repos[0].evidence["evals"] == LabelEvidence(
        ["tests/test_rag.py:12", "data/golden.jsonl:1"], "30 cases, run by hand"
    )
    assert labels.repos[0].evidence["cost"] == LabelEvidence()


def test_evidence_for_a_criterion_with_no_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    repo = {"name": "r", "path": "r", "labels": {"evals": 1}, "evidence": {"cost": {"why": "no usage read"}}}
    path.write_text(json.dumps({"rubric": CAPSTONE, "repos": [repo]}))
    with pytest.raises(ValueError, match="evidence for criteria with no label: cost"):
        load_labels(path)


# --- splits, disagreements, two labellers -------------------------------------------------------------------------


def test_development_and_test_never_mix(rubric: LoadedRubric) -> None:
    # Viva agrees exactly on development repositories and is three levels off on every test one.
    development = [_labelled(f"dev/{i}", _everywhere(i % 4)) for i in range(5)]
    test = [_labelled(f"test/{i}", _everywhere(3)) for i in range(3)]
    labels = LabelSet(rubric=CAPSTONE, repos=[*development, *test])
    reports = {repo.name: _report(rubric, _everywhere(i % 4)) for i, repo in enumerate(development)}
    reports |= {repo.name: _report(rubric, _everywhere(0)) for repo in test}
    split = Split(test=[repo.name for repo in test])
    result = measure_mode("static", labels, Graded(reports, []), rubric, split, resamples=200)
    by_name = {entry.split: entry for entry in result.splits}
    assert list(by_name) == ["all", "development", "test"]
    assert set(by_name["development"].repositories) == {repo.name for repo in development}
    assert set(by_name["test"].repositories) == {repo.name for repo in test}
    dev, held_out, everything = (by_name[name].agreement for name in ("development", "test", "all"))
    assert (dev.repositories, held_out.repositories, everything.repositories) == (5, 3, 8)
    assert dev.pooled.exact == 1.0 and dev.pooled.qwk == 1.0, "a test repository leaked into development"
    assert held_out.pooled.exact == 0.0 and held_out.pooled.n == 3 * 6, "a development repository leaked into test"
    assert 0.0 < everything.pooled.exact < 1.0


def test_disagreements_come_from_development_with_both_sides_evidence(rubric: LoadedRubric) -> None:
    dev = _labelled("dev/a", {"evals": 3, "cost": 1}, why="the workflow runs the suite")
    test = _labelled("test/a", _everywhere(3), why="held out")
    labels = LabelSet(rubric=CAPSTONE, repos=[dev, test])
    reports = {"dev/a": _report(rubric, {"evals": 1, "cost": 0}), "test/a": _report(rubric, _everywhere(0))}
    result = measure_mode("static", labels, Graded(reports, []), rubric, Split(test=["test/a"]), resamples=50)
    assert result.disagreements_from == "development"
    assert [(item.repo, item.criterion, item.human, item.grader) for item in result.disagreements] == [
        ("dev/a", "evals", 3, 1),  # gap 2 first
        ("dev/a", "cost", 1, 0),
    ], "the frozen test split must not feed the list read while changing rules"
    worst = result.disagreements[0]
    assert worst.label == LabelEvidence(refs=["dev/a/evals:1"], why="the workflow runs the suite")
    assert [leaf.path for leaf in worst.viva] == ["evals.cases", "evals.ci", "evals.runs"]
    assert worst.viva[0].explanation == "evals.cases looked like level 1"
    assert worst.viva[0].evidence == ["evals.cases.py:2"]
    assert worst.share == pytest.approx(0.25)


def test_without_a_split_disagreements_are_drawn_from_everything(rubric: LoadedRubric) -> None:
    labels = LabelSet(rubric=CAPSTONE, repos=[_labelled(f"r{i}", _everywhere(3)) for i in range(12)])
    reports = {f"r{i}": _report(rubric, _everywhere(0 if i < 2 else 3)) for i in range(12)}
    result = measure_mode("full", labels, Graded(reports, []), rubric, None, resamples=50)
    assert [entry.split for entry in result.splits] == ["all"]
    assert len(result.disagreements) == 10 and {item.repo for item in result.disagreements} == {"r0", "r1"}
    shares = [item.share for item in result.disagreements]
    assert shares == sorted(shares, reverse=True), "equal gaps are ordered by the criterion's weight"


def test_the_second_labeller_is_measured_on_the_overlap_only(rubric: LoadedRubric) -> None:
    first = LabelSet(rubric=CAPSTONE, labeller="A", repos=[_labelled(f"r{i}", _everywhere(i % 4)) for i in range(6)])
    # B labels r3..r5 (only evals and cost on r5) and a repository A never saw.
    second_repos = [_labelled(f"r{i}", _everywhere((i + 1) % 4)) for i in (3, 4)]
    second_repos += [_labelled("r5", {"evals": 1, "cost": 1}), _labelled("elsewhere", _everywhere(2))]
    second = LabelSet(rubric=CAPSTONE, labeller="B", repos=second_repos)
    reports = {f"r{i}": _report(rubric, _everywhere(i % 4)) for i in range(6)}
    viva = measure_mode("static", first, Graded(reports, []), rubric, None, resamples=50)
    human = measure_humans(first, second, [viva], resamples=50)
    assert (human.labeller, human.second_labeller) == ("A", "B")
    assert human.repositories == ["r3", "r4", "r5"]
    assert human.humans.pairs == 6 + 6 + 2 and human.humans.repositories == 3
    assert human.viva["static"].pairs == human.humans.pairs, "Viva is measured on exactly the same rows"
    assert human.viva["static"].pooled.exact == 1.0 and human.humans.pooled.exact < 1.0


def test_a_second_labels_file_for_another_rubric_is_refused(rubric: LoadedRubric) -> None:
    first = LabelSet(rubric=CAPSTONE, repos=[_labelled("r", _everywhere(1))])
    with pytest.raises(ValueError, match="rubric"):
        measure_humans(first, LabelSet(rubric="other", repos=[]), [], resamples=10)


# --- cached full reports ------------------------------------------------------------------------------------------


def test_cached_reports_are_read_and_a_repository_without_one_is_missing(tmp_path: Path, rubric: LoadedRubric) -> None:
    names = ["owner/graded", "owner/flat", "owner/failed", "owner/never", "owner/other-rubric"]
    labels = LabelSet(rubric=CAPSTONE, repos=[_labelled(name, {"evals": 1}) for name in names])
    encode = msgspec.json.encode
    (tmp_path / "owner+graded").mkdir()
    (tmp_path / "owner+graded" / "report.json").write_bytes(encode(_report(rubric, {"evals": 1})))
    (tmp_path / "owner+flat.json").write_bytes(encode(_report(rubric, {"evals": 2})))
    (tmp_path / "owner+failed").mkdir()
    (tmp_path / "owner+failed" / "bench.json").write_text(json.dumps({"error": "timed out after 900 s"}))
    (tmp_path / "owner+other-rubric").mkdir()
    other = _report(rubric, {}, rubric_id="another-rubric")
    (tmp_path / "owner+other-rubric" / "report.json").write_bytes(encode(other))
    graded = load_reports(labels, tmp_path, rubric)
    assert set(graded.reports) == {"owner/graded", "owner/flat"}
    assert graded.missing == [
        MissingReport("owner/failed", "no cached report (the grading failed: timed out after 900 s)"),
        MissingReport("owner/never", "no cached report"),
        MissingReport("owner/other-rubric", "graded with rubric 'another-rubric'"),
    ]


# --- the command, end to end on the fixture labelled set ----------------------------------------------------------


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("labelled") / "set")


@pytest.mark.slow
def test_static_only_end_to_end(labelled_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, markdown = tmp_path / "result.json", tmp_path / "agreement.md"
    arguments = ["judge-eval", str(labelled_set), "--static-only", "--resamples", "300"]
    assert main([*arguments, "--out", str(out), "--markdown", str(markdown)]) == 0
    printed = capsys.readouterr().out
    assert "static-only: 96 labelled criteria over 6 repositories" in printed
    assert "quadratic weighted kappa" in printed and "Spearman of totals" in printed
    result = json.loads(out.read_text())
    assert [mode["mode"] for mode in result["modes"]] == ["static"]
    everything = result["modes"][0]["splits"][0]["agreement"]
    assert everything["pooled"]["n"] == 96 and everything["repositories"] == 6
    low, high = everything["pooled"]["qwk_interval"]["low"], everything["pooled"]["qwk_interval"]["high"]
    assert low <= everything["pooled"]["qwk"] <= high
    assert result["agreement"]["pairs"] == 96, "the old summary stays for its readers"
    tables = markdown.read_text()
    assert "| criterion | static-only n | static-only QWK [95% CI] |" in tables
    assert "| **pooled** | 96 |" in tables and "Spearman of totals" in tables and "base rate" in tables
    assert "The largest disagreements, static-only (all split)" in tables


@pytest.mark.slow
def test_static_and_cached_full_side_by_side_with_split_and_second_labeller(
    labelled_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rubric: LoadedRubric
) -> None:
    labels = load_labels(labelled_set)
    reports = tmp_path / "reports"
    for repo in labels.repos[1:]:  # the first repository has no cached report: missing, never graded
        (reports / repo.name).mkdir(parents=True)
        levels = {criterion.split(".")[0]: level for criterion, level in repo.labels.items()}
        (reports / repo.name / "report.json").write_bytes(msgspec.json.encode(_report(rubric, levels)))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"seed": 1, "test": ["tutorial", "malformed"]}))
    second = tmp_path / "second.json"
    second_repos = [{"name": repo.name, "labels": repo.labels} for repo in labels.repos if repo.name != "middling"]
    second.write_text(json.dumps({"rubric": CAPSTONE, "labeller": "B", "repos": second_repos}))
    out, markdown = tmp_path / "result.json", tmp_path / "agreement.md"
    arguments = ["judge-eval", str(labelled_set), "--static-only", "--reports", str(reports), "--resamples", "200"]
    arguments += ["--split", str(split), "--second", str(second), "--out", str(out), "--markdown", str(markdown)]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert f"missing: {labels.repos[0].name}: no cached report" in printed
    assert "== Test split, frozen (2 repositories) ==" in printed
    result = json.loads(out.read_text())
    static, full = result["modes"]
    assert (static["mode"], full["mode"]) == ("static", "full")
    assert [entry["split"] for entry in full["splits"]] == ["all", "development", "test"]
    assert full["splits"][0]["agreement"]["repositories"] == 5
    assert {row[0] for row in full["rows"]} == {repo.name for repo in labels.repos[1:]}
    assert {item["repo"] for item in full["disagreements"]} <= {"excellent", "middling", "planted_instructions"}
    human = result["human"]
    assert human["repositories"] == sorted(repo.name for repo in labels.repos if repo.name != "middling")
    assert human["humans"]["pooled"]["qwk"] == 1.0, "B copied A's levels"
    assert set(human["viva"]) == {"static", "full"}
    tables = markdown.read_text()
    assert "static-only QWK [95% CI]" in tables and "full QWK [95% CI]" in tables
    assert "#### Test split, frozen (2 repositories)" in tables
    assert "#### Labeller 1 and labeller B on the 5 repositories both labelled, beside Viva on the same" in tables
