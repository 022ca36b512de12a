"""`viva interview` from the command line: scripted answers on stdin, transcript and report written; a budget
alert reaches a webhook on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from llm.budget import BudgetBook
from llm.errors import BudgetExceeded
from server.alerts import webhook_hook
from tests.fixtures import repos
from tests.fixtures.personas import STRONG


def test_scripted_interview_from_stdin(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_excellent_repo(repo)
    viva = Path(sys.executable).with_name("viva")
    answers = "\n".join(STRONG[:4]) + "\n"
    result = subprocess.run(
        [str(viva), "interview", str(repo), "--out", str(tmp_path / "out")],
        input=answers,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "VIVA_INTERVIEW_MODEL": "offline"},
    )
    assert result.returncode == 0, result.stderr
    assert "interviewer: In a minute: who uses this" in result.stdout
    assert result.stdout.count("you: ") == 4
    report = json.loads((tmp_path / "out" / "interview.json").read_text())
    assert {"dimensions", "contradictions", "transcript", "cost"} <= set(report)
    assert report["ended"] == "candidate_left"
    assert all({"id", "rating", "score", "quotes"} <= set(d) for d in report["dimensions"])
    assert any(d["rating"] == "high" for d in report["dimensions"])
    assert (tmp_path / "out" / "interview.md").read_text().startswith("# Viva interview")
    assert len(json.loads((tmp_path / "out" / "transcript.json").read_text())) == 9


def test_budget_alert_is_posted_to_a_webhook() -> None:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        book = BudgetBook()
        book.alert_hooks.append(webhook_hook(f"http://127.0.0.1:{server.server_port}/alerts"))
        book.open_account("org:acme", 0.01)
        with pytest.raises(BudgetExceeded):
            book.reserve(["org:acme"], 0.02)
    finally:
        server.shutdown()
    assert received and received[0]["account"] == "org:acme" and received[0]["ceiling_usd"] == 0.01


def test_interview_uses_the_grading_report_left_by_viva_grade(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repos.make_middling_repo(repo)
    viva = Path(sys.executable).with_name("viva")
    env = {**os.environ, "VIVA_INTERVIEW_MODEL": "offline"}
    graded = subprocess.run(
        [str(viva), "grade", str(repo), "--static-only"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert graded.returncode == 0, graded.stderr
    result = subprocess.run(
        [str(viva), "interview", str(repo)],
        cwd=tmp_path,
        input=STRONG[0] + "\n",
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"using the grading findings of {repo}" in result.stdout
