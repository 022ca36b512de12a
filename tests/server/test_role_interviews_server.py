"""Role interviews in the server: started without a submission, on a topic and a level (or with the position's
chosen role rubric), talked over the same WebSocket, reported the same way, and visible to the position's
managers only."""

from __future__ import annotations

import asyncio

from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server.conftest import make_identity, make_organisation
from tests.server.test_interviews import _until

STRONG = (
    "I would bound the tool call with a 10 s timeout and 2 retries with backoff, because the API fails about 1% of "
    "the time; the cost is up to 30 s of waiting, so after that the agent tells the user the weather is unavailable "
    "instead of guessing, and we alert when the failure rate passes 5%."
)


def test_a_role_interview_runs_without_a_repository_and_its_managers_see_it(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        organisation = asyncio.run(make_organisation(settings))
        manager = asyncio.run(make_identity(settings, "manager", organisation_id=organisation))
        other = asyncio.run(
            make_identity(settings, "manager", organisation_id=asyncio.run(make_organisation(settings, "B")))
        )
        rubrics = client.get("/api/rubrics", headers=manager.headers).json()["items"]
        capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
        senior = next(item for item in rubrics if item["key"] == "ai-engineer-role-senior")
        position = client.post(
            "/api/positions",
            json={
                "title": "Senior AI engineer",
                "rubric_version_id": capstone["id"],
                "interview_rubric_version_id": senior["id"],
            },
            headers=manager.headers,
        ).json()
        candidate = asyncio.run(make_identity(settings, "candidate", email="grace@example.org"))
        client.post("/api/positions/join", json={"invite_code": position["invite_code"]}, headers=candidate.headers)

        refused = [
            client.post("/api/interviews", json=body, headers=candidate.headers)
            for body in (
                {"level": "senior", "topic": "vibes"},
                {"submission_id": 1, "level": "senior"},
                {},
                {"level": "senior", "position_id": position["id"] + 1000},
            )
        ]
        assert [answer.status_code for answer in refused] == [400, 400, 400, 404], [r.text for r in refused]
        assert "not a topic" in refused[0].text

        # for the position, at "junior" asked: the position's chosen senior rubric wins
        started = client.post(
            "/api/interviews",
            json={"level": "junior", "topic": "agents", "position_id": position["id"]},
            headers=candidate.headers,
        )
        assert started.status_code == 201, started.text
        interview = started.json()
        assert interview["submission_id"] is None
        with client.websocket_connect(f"/api/interviews/{interview['id']}/ws", headers=candidate.headers) as socket:
            question, _ = _until(socket, "question")
            assert "refund" in question["text"]  # the senior agents question of the bank
            for number in range(12):
                socket.send_json({"type": "answer", "id": f"a{number}", "text": STRONG})
                reply, seen = _until(socket, "reply")
                if any(message["type"] == "end" for message in seen) or "That is all my questions" in reply["text"]:
                    break
        report = client.get(f"/api/interviews/{interview['id']}/report", headers=manager.headers)
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["rubric"]["id"] == "ai-engineer-role-senior" and body["ended"] == "settled"
        agents = next(d for d in body["dimensions"] if d["id"] == "agents")
        assert agents["rating"] == "high" and agents["settled"] == "confident"
        assert body["repo"].startswith("role interview (AI engineer role interview (senior)): agents")
        assert client.get(f"/api/interviews/{interview['id']}", headers=other.headers).status_code == 404
        listed = client.get("/api/interviews", headers=manager.headers).json()["items"]
        assert interview["id"] in [item["id"] for item in listed]
        assert interview["id"] not in [
            item["id"] for item in client.get("/api/interviews", headers=other.headers).json()["items"]
        ]

        # practice, no position: the level's built-in rubric
        practice = client.post(
            "/api/interviews", json={"level": "junior", "topics": ["models"]}, headers=candidate.headers
        )
        assert practice.status_code == 201
        with client.websocket_connect(
            f"/api/interviews/{practice.json()['id']}/ws", headers=candidate.headers
        ) as socket:
            question, _ = _until(socket, "question")
            assert "open-weight" in question["text"]
        page = client.get("/home", headers=candidate.headers)
        assert (
            page.status_code == 200
            and "Practise a role interview" in page.text
            and "Role interview (models)" in page.text
        )
