"""`viva grade` end to end on fixture repositories made with `git init`: real git, real files, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader.report.render_json import parse_report
from server.cli import main
from tests.fixtures import repos


def grade(target: Path | str, out: Path, *extra: str) -> int:
    return main(["grade", str(target), "--out", str(out), *extra])


def load(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """The three quality levels, each built once and graded statically."""
    results = {}
    for name, build in (
        ("excellent", repos.make_excellent_repo),
        ("middling", repos.make_middling_repo),
        ("tutorial", repos.make_tutorial_repo),
    ):
        base = tmp_path_factory.mktemp(name)
        repo = base / "repo"
        repo.mkdir()
        build(repo)
        out = base / "out"
        assert grade(repo, out, "--static-only") == 0
        results[name] = (repo, load(out))
    return results


def test_scores_order_excellent_middling_tutorial(graded: dict[str, tuple[Path, dict]]) -> None:
    scores = {name: report["score"] for name, (_, report) in graded.items()}
    assert scores["excellent"] > scores["middling"] > scores["tutorial"], scores
    assert scores["excellent"] >= 0.8, scores
    assert scores["tutorial"] <= 0.25, scores


def test_static_only_report_is_partial_and_says_why(graded: dict[str, tuple[Path, dict]]) -> None:
    _, report = graded["excellent"]
    assert 0 < report["coverage"] < 1
    reasons = {item["path"]: item["reason"] for item in report["not_run"]}
    assert "latency.p95" in reasons and "--static-only" in reasons["latency.p95"]
    assert "engineering.clarity" not in reasons, "judge leaves run on the offline judge, even with --static-only"
    assert report["repo"]["commit"] and len(report["repo"]["commit"]) == 40
    assert report["rubric"]["id"] == "ai-engineer-capstone" and report["rubric"]["hash"].startswith("sha256:")


def test_every_evidence_item_points_at_a_real_line(graded: dict[str, tuple[Path, dict]]) -> None:
    checked = 0
    for repo, report in graded.values():
        for item in _evidence(report["criteria"]):
            target = repo / item["path"]
            assert target.is_file(), item
            if item.get("line"):
                lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
                assert item["line"] <= len(lines), item
                assert item.get("excerpt", "") in lines[item["line"] - 1], item
                checked += 1
    assert checked >= 20


def test_report_json_parses_against_the_model(graded: dict[str, tuple[Path, dict]]) -> None:
    _, report = graded["middling"]
    parsed = parse_report(json.dumps(report))
    assert parsed.score == report["score"]


def test_all_three_formats_written(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_tutorial_repo(repo)
    assert grade(repo, tmp_path / "out", "--static-only") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json", "report.md"]


def test_planted_instructions_are_flagged_and_change_nothing(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    repos.make_planted_instructions_repo(planted)
    assert grade(planted, tmp_path / "out", "--static-only") == 0
    report = load(tmp_path / "out")
    flags = [flag for flag in report["flags"] if flag["kind"] == "grader_addressed_text"]
    assert flags and len(flags[0]["evidence"]) >= 3
    assert report["score"] <= 0.25
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Text addressed to the grader was found" in html


def test_script_excerpts_render_inert(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_script_excerpt_repo(repo)
    assert grade(repo, tmp_path / "out", "--static-only") == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>alert" not in html
    assert 'href="javascript:' not in html
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "<script>" not in markdown


def test_malformed_repo_completes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_malformed_repo(repo)
    assert grade(repo, tmp_path / "out", "--static-only") == 0
    assert load(tmp_path / "out")["score"] is not None


def test_grading_reads_nothing_outside_the_scratch_dir(
    tmp_path: Path, host_secret: Path, opened_paths: list[str]
) -> None:
    """Every file Python opens while grading is in the scratch directory, the output directory, or Viva's and
    Python's own installation; the candidate's repository is read only through git, into the scratch copy."""
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_middling_repo(repo)
    (repo / "leak.txt").symlink_to(host_secret)
    (repo / "config").mkdir()
    (repo / "config" / "prod.env").symlink_to(host_secret)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "links"], check=True)
    out = tmp_path / "out"
    opened_paths.clear()  # building the fixture repository above opened its files; grading starts here
    assert grade(repo, out, "--static-only") == 0
    allowed = (
        str(Path(tempfile.gettempdir()) / "viva-grade-"),
        str(out),
        sys.prefix,
        sys.base_prefix,
        str(Path(__file__).parents[2]),  # Viva's own package files (templates, metadata)
        os.devnull,
    )
    absolute = [path for path in opened_paths if path.startswith("/")]
    assert absolute, "the audit hook saw nothing: the test would prove nothing"
    outside = [path for path in absolute if not path.startswith(allowed) or path.startswith(str(repo))]
    assert outside == []
    assert str(host_secret) not in opened_paths
    text = (out / "report.json").read_text()
    assert "HOST-SECRET" not in text


def test_unfetchable_target_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert grade(tmp_path / "does-not-exist", tmp_path / "out") == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars above it show how far grading got
    assert last.startswith("viva: ") and "neither an existing local path" in last
    assert not (tmp_path / "out").exists()


def test_refused_transport_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert grade("ext::sh -c touch% /tmp/pwned", tmp_path / "out") == 1
    assert "viva: " in capsys.readouterr().err


def test_bad_rubric_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rubric = tmp_path / "bad.yaml"
    rubric.write_text("id: x\nversion: 1\ntitle: X\ncriteria:\n  - id: a\n    title: A\n    weight: -1\n")
    assert main(["rubric", "validate", str(rubric)]) == 1
    err = capsys.readouterr().err
    assert "weight" in err and "line 7" in err


def test_console_script_prints_summary_and_progress(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_tutorial_repo(repo)
    viva = Path(sys.executable).with_name("viva")
    result = subprocess.run(
        [str(viva), "grade", str(repo), "--static-only", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Score" in result.stdout and "coverage" in result.stdout
    assert "profile" in result.stderr and "checks" in result.stderr  # the per-stage progress bars


def _evidence(nodes: list[dict]) -> list[dict]:
    found = []
    for node in nodes:
        found.extend(node.get("evidence", []))
        found.extend(_evidence(node.get("children", [])))
    return found


def test_rubric_list_show_and_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rubric", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ai-engineer-capstone\tv1" in listing and "ai-engineer-interview\tv1" in listing
    assert main(["rubric", "show", "ai-engineer-capstone"]) == 0
    shown = capsys.readouterr().out
    assert "latency.p95" in shown and "dynamic:latency_p95" in shown and "p95_seconds=3.0" in shown
    for command in (["rubric", "schema"], ["report", "schema"], ["manifest", "schema"]):
        assert main(command) == 0
        assert json.loads(capsys.readouterr().out)["$schema"].startswith("https://json-schema.org/")


def test_valid_rubric_file_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rubric = tmp_path / "mine.yaml"
    rubric.write_text(
        "id: mine\nversion: 3\ntitle: Mine\ncriteria:\n  - id: docker\n    title: Docker\n    weight: 1\n"
        "    check: {kind: static, name: dockerfile}\n"
    )
    assert main(["rubric", "validate", str(rubric)]) == 0
    assert "valid rubric 'mine' version 3, 1 leaves, sha256:" in capsys.readouterr().out
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_excellent_repo(repo)
    assert grade(repo, tmp_path / "out", "--rubric", str(rubric), "--format", "json") == 0
    report = load(tmp_path / "out")
    assert (report["rubric"]["id"], report["rubric"]["version"], report["score"], report["coverage"]) == (
        "mine",
        3,
        1.0,
        1.0,
    )


def test_judge_models_voters_and_a_misconfigured_judge(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_excellent_repo(repo)
    assert (
        grade(
            repo,
            tmp_path / "a",
            "--static-only",
            "--format",
            "json",
            "--judge-model",
            "offline",
            "--judge-model",
            "offline",
        )
        == 0
    )
    clarity = _node(load(tmp_path / "a")["criteria"], "engineering.clarity")
    assert (clarity["status"], clarity["score"], clarity["basis"]) == ("scored", 1.0, ["judge"])
    assert (
        grade(
            repo,
            tmp_path / "b",
            "--static-only",
            "--format",
            "json",
            "--judge-model",
            "anthropic:claude-3-5-haiku-latest",
        )
        == 0
    )
    broken = _node(load(tmp_path / "b")["criteria"], "engineering.clarity")
    assert broken["status"] == "not_run" and "VIVA_LLM_ANTHROPIC_API_KEY" in broken["explanation"]


def _node(nodes: list[dict], path: str) -> dict:
    for node in nodes:
        if node["path"] == path:
            return node
        found = _node(node.get("children", []), path) if node.get("children") else None
        if found:
            return found
    return {}
