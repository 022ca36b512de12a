"""A manager picks the interview rubric, and its version, per position: the position's candidates are interviewed
with it, and the interview report names it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server.conftest import make_identity, make_organisation
from tests.server.test_interviews import _until

BUILTIN_INTERVIEW = (Path(__file__).parents[2] / "rubrics" / "builtin" / "ai-engineer-interview.yaml").read_text()


def test_a_positions_candidates_are_interviewed_with_the_rubric_version_its_manager_chose(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        organisation = asyncio.run(make_organisation(settings))
        manager = asyncio.run(make_identity(settings, "manager", organisation_id=organisation))
        rubrics = client.get("/api/rubrics", headers=manager.headers).json()["items"]
        capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
        # the manager's own interview rubric: the built-in one, retitled and with security weighed more
        edited = BUILTIN_INTERVIEW.replace("title: Security\n    weight: 1.5", "title: Security\n    weight: 4")
        assert edited != BUILTIN_INTERVIEW
        saved = client.post("/api/rubrics", json={"source": edited}, headers=manager.headers)
        assert saved.status_code == 201, saved.text
        interview_rubric = saved.json()

        wrong = client.post(
            "/api/positions",
            json={
                "title": "AI engineer",
                "rubric_version_id": capstone["id"],
                "interview_rubric_version_id": capstone["id"],
            },
            headers=manager.headers,
        )
        assert wrong.status_code == 400 and "interview rubric" in wrong.text

        created = client.post(
            "/api/positions",
            json={
                "title": "AI engineer",
                "rubric_version_id": capstone["id"],
                "interview_rubric_version_id": interview_rubric["id"],
            },
            headers=manager.headers,
        )
        assert created.status_code == 201, created.text
        position = created.json()
        assert position["interview_rubric_version_id"] == interview_rubric["id"]

        candidate = asyncio.run(make_identity(settings, "candidate", email="ada@example.org"))
        joined = client.post(
            "/api/positions/join", json={"invite_code": position["invite_code"]}, headers=candidate.headers
        )
        assert joined.status_code < 300
        submitted = client.post(
            "/api/submissions",
            json={"target": "fixture:middling", "position_id": position["id"]},
            headers=candidate.headers,
        ).json()
        deadline = time.monotonic() + 60
        while client.get(f"/api/submissions/{submitted['id']}", headers=candidate.headers).json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        interview_id = client.post(
            "/api/interviews", json={"submission_id": submitted["id"]}, headers=candidate.headers
        ).json()["id"]
        with client.websocket_connect(f"/api/interviews/{interview_id}/ws", headers=candidate.headers) as socket:
            _until(socket, "question")
            for number, silence in enumerate(["", "..."]):  # two silences end it: the report is written
                socket.send_json({"type": "answer", "id": f"a{number}", "text": silence})
                _until(socket, "reply")
        report = client.get(f"/api/interviews/{interview_id}/report", headers=manager.headers).json()
        assert report["rubric"]["hash"] == interview_rubric["content_hash"]
        assert report["rubric"]["version"] == interview_rubric["version"]
        security = next(d for d in report["dimensions"] if d["id"] == "security")
        assert security["weight"] == 4

        # back to the default, and a rubric of another organisation is not the manager's to choose
        reset = client.put(
            f"/api/positions/{position['id']}/interview-rubric",
            json={"interview_rubric_version_id": None},
            headers=manager.headers,
        )
        assert reset.status_code == 200 and reset.json()["interview_rubric_version_id"] is None
        other = asyncio.run(
            make_identity(settings, "manager", organisation_id=asyncio.run(make_organisation(settings, "Other")))
        )
        theirs = client.put(
            f"/api/positions/{position['id']}/interview-rubric",
            json={"interview_rubric_version_id": interview_rubric["id"]},
            headers=other.headers,
        )
        assert theirs.status_code == 404
