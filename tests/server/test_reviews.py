"""Managers compare candidates, override with a reason (history kept, original visible), export CSV with formula
injection neutralised; candidates ask for a human review and delete their data — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.db.models import Interview, Submission, User, utcnow
from server.services import retention
from server.settings import Settings
from tests.server.conftest import Identity, database, make_identity, make_organisation, wait_for


async def _graded_candidate(
    settings: Settings, client: AsyncTestClient[Litestar], name: str
) -> tuple[Identity, Identity, dict, int]:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    capstone = next(
        item
        for item in (await client.get("/api/rubrics", headers=manager.headers)).json()["items"]
        if item["key"] == "ai-engineer-capstone"
    )
    position = (
        await client.post(
            "/api/positions", json={"title": "P", "rubric_version_id": capstone["id"]}, headers=manager.headers
        )
    ).json()
    candidate = await make_identity(settings, "candidate", email=f"c-{uuid.uuid4().hex[:6]}@example.org")
    async with database(settings) as db:
        row = await db.get(User, candidate.user.id)
        assert row is not None
        row.name = name
        await db.commit()
    await client.post("/api/positions/join", json={"invite_code": position["invite_code"]}, headers=candidate.headers)
    submitted = await client.post(
        "/api/submissions", json={"target": "fixture:naive", "position_id": position["id"]}, headers=candidate.headers
    )
    await wait_for(client, candidate, submitted.json()["id"])
    return manager, candidate, position, submitted.json()["id"]


async def test_an_override_keeps_the_original_and_its_history(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    manager, candidate, _, submission_id = await _graded_candidate(settings, client, "Ada")
    before = (await client.get(f"/api/submissions/{submission_id}", headers=candidate.headers)).json()["score"]
    report = (await client.get(f"/api/submissions/{submission_id}/report", headers=manager.headers)).json()
    readme = next(node for node in report["criteria"] if node["id"] == "engineering")["children"][0]
    assert (
        await client.post(
            f"/api/submissions/{submission_id}/overrides",
            json={"path": "engineering", "score": 1, "reason": "a parent is not a leaf"},
            headers=manager.headers,
        )
    ).status_code == 400
    assert (
        await client.post(
            f"/api/submissions/{submission_id}/overrides",
            json={"path": readme["path"], "score": 1, "reason": ""},
            headers=manager.headers,
        )
    ).status_code == 400
    assert (
        await client.post(
            f"/api/submissions/{submission_id}/overrides",
            json={"path": readme["path"], "score": 1, "reason": "checked by hand"},
            headers=candidate.headers,
        )
    ).status_code == 403
    stranger = await make_identity(settings, "manager", organisation_id=await make_organisation(settings, "Other"))
    assert (
        await client.post(
            f"/api/submissions/{submission_id}/overrides",
            json={"path": readme["path"], "score": 1, "reason": "checked by hand"},
            headers=stranger.headers,
        )
    ).status_code == 404

    for score, reason in ((1.0, "The README covers setup in its wiki link."), (0.5, "On reflection only half of it.")):
        made = await client.post(
            f"/api/submissions/{submission_id}/overrides",
            json={"path": readme["path"], "score": score, "reason": reason},
            headers=manager.headers,
        )
        assert made.status_code == 201 and made.json()["original"] == readme["score"]
    history = (await client.get(f"/api/submissions/{submission_id}/overrides", headers=candidate.headers)).json()[
        "items"
    ]
    assert [item["score"] for item in history] == [1.0, 0.5] and all(
        item["original"] == readme["score"] for item in history
    )
    scores = (await client.get(f"/api/submissions/{submission_id}/scores", headers=candidate.headers)).json()
    leaf = next(
        child
        for node in scores["criteria"]
        if node["id"] == "engineering"
        for child in node["children"]
        if child["path"] == readme["path"]
    )
    assert leaf["score"] == 0.5 and "Set by a manager: On reflection" in leaf["explanation"]
    after = (await client.get(f"/api/submissions/{submission_id}", headers=candidate.headers)).json()["score"]
    assert after != before and after == scores["score"]
    original = (await client.get(f"/api/submissions/{submission_id}/report", headers=candidate.headers)).json()
    assert original["score"] == before  # the report as graded is kept


async def test_candidates_side_by_side_and_a_csv_a_spreadsheet_cannot_run(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    manager, _, position, submission_id = await _graded_candidate(settings, client, '=HYPERLINK("http://evil","click")')
    listed = (await client.get(f"/api/positions/{position['id']}/candidates", headers=manager.headers)).json()["items"]
    assert len(listed) == 1 and listed[0]["submission_id"] == submission_id and listed[0]["criteria"]
    assert set(listed[0]["criteria"]) == {"evals", "injection", "citations", "cost", "latency", "engineering"}
    exported = await client.get(f"/api/positions/{position['id']}/candidates.csv", headers=manager.headers)
    assert (
        exported.headers["content-type"].startswith("text/csv")
        and "attachment" in exported.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:4] == ["name", "email", "rubric", "status"] and rows[1][0].startswith("'=HYPERLINK")
    assert rows[1][2] == "ai-engineer-capstone v1" and len(listed[0]["results"]) == 1
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row)


async def test_a_review_request_reaches_the_managers_and_a_candidate_can_delete_their_data(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    manager, candidate, _, submission_id = await _graded_candidate(settings, client, "Grace")
    admin = await make_identity(settings, "admin")
    asked = await client.post(
        f"/api/submissions/{submission_id}/review-request",
        json={"message": "The latency score looks wrong."},
        headers=candidate.headers,
    )
    assert asked.status_code == 201
    outbox = (await client.get("/api/admin/outbox", headers=admin.headers)).json()["items"]
    assert any(
        mail["recipient"] == manager.user.email and "latency score looks wrong" in mail["body"] for mail in outbox
    )
    assert (await client.delete("/api/me/data", headers=candidate.headers)).status_code == 204
    assert (await client.get("/api/submissions", headers=candidate.headers)).json()["total"] == 0
    assert (await client.get(f"/api/submissions/{submission_id}", headers=manager.headers)).status_code == 404
    assert not (settings.data_path / "snapshots" / str(submission_id)).exists()


async def test_retention_removes_old_reports_and_transcripts(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    _, candidate, _, submission_id = await _graded_candidate(settings, client, "Old")
    started = await client.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
    interview_id = started.json()["id"]
    async with database(settings) as db:
        submission = await db.get(Submission, submission_id)
        interview = await db.get(Interview, interview_id)
        assert submission is not None and interview is not None
        long_ago = utcnow() - timedelta(days=400)
        submission.finished_at, interview.created_at = long_ago, long_ago
        interview.transcript = '[{"role": "interviewer", "text": "hello", "at": 0}]'
        await db.commit()
        removed = await retention.sweep(db, settings)
        await db.commit()
    assert removed == {"reports": 1, "transcripts": 1, "recordings": 0, "staged": 0}
    assert (await client.get(f"/api/submissions/{submission_id}/report", headers=candidate.headers)).status_code == 404
    body = (await client.get(f"/api/submissions/{submission_id}", headers=candidate.headers)).json()
    assert "retention" in body["error"] and body["score"] is not None  # the fact of the grading stays
    assert (await client.get(f"/api/interviews/{interview_id}", headers=candidate.headers)).json()["transcript"] == []
    assert not (settings.data_path / "snapshots" / str(submission_id)).exists()
