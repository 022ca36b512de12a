"""Rubrics, positions and submissions over the API: what is accepted, grading as a job with progress, who sees what,
limits, cancel, delete, re-grade — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlmodel import select

from server.app import create_app
from server.db.models import Job, Submission, utcnow
from server.settings import Settings
from tests.server.conftest import Identity, database, make_identity, make_organisation, wait_for

RUBRIC = """id: lean
version: 1
title: Lean
criteria:
  - id: docker
    title: Ships a Dockerfile
    weight: 1
    check: {kind: static, name: dockerfile}
"""


async def _position(settings: Settings, client: AsyncTestClient[Litestar]) -> tuple[Identity, dict]:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    rubrics = (await client.get("/api/rubrics", headers=manager.headers)).json()["items"]
    capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
    position = await client.post(
        "/api/positions", json={"title": "AI engineer", "rubric_version_id": capstone["id"]}, headers=manager.headers
    )
    assert position.status_code == 201
    return manager, position.json()


@pytest.mark.parametrize(
    "target",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "http://github.com/a/b",
        "ssh://git@github.com/a/b",
        "git@github.com:a/b.git",
        "https://gitlab.com/a/b",
        "https://user:secret@github.com/a/b",
        "https://github.com:8443/a/b",
        "https://github.com/a/b/../../c",
        "ext::sh -c touch% /tmp/pwned",
        "fixture:../../etc",
    ],
)
async def test_only_https_urls_on_the_allow_list_are_accepted(
    settings: Settings, client: AsyncTestClient[Litestar], target: str
) -> None:
    candidate = await make_identity(settings, "candidate")
    refused = await client.post("/api/submissions", json={"target": target}, headers=candidate.headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_input", refused.text
    assert (await client.get("/api/submissions", headers=candidate.headers)).json()["total"] == 0


async def test_a_submission_is_graded_as_a_job_with_progress_and_a_report(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    manager, position = await _position(settings, client)
    candidate = await make_identity(settings, "candidate")
    joined = await client.post(
        "/api/positions/join", json={"invite_code": position["invite_code"]}, headers=candidate.headers
    )
    assert joined.status_code == 200 and joined.json()["invite_code"] is None  # candidates do not get the link
    accepted = await client.post(
        "/api/submissions", json={"target": "fixture:naive", "position_id": position["id"]}, headers=candidate.headers
    )
    assert accepted.status_code == 202 and accepted.json()["status"] == "queued"
    submission_id = accepted.json()["id"]

    events = []
    async with client.stream("GET", f"/api/submissions/{submission_id}/events", headers=candidate.headers) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert events[-1]["status"] == "done" and events[-1]["score"] is not None
    assert any(event.get("stage") == "checks" for event in events[:-1])

    done = await wait_for(client, candidate, submission_id)
    assert done["status"] == "done" and 0 <= done["score"] <= 1 and done["coverage"] < 1  # static only here
    report = (await client.get(f"/api/submissions/{submission_id}/report", headers=candidate.headers)).json()
    assert report["rubric"]["id"] == "ai-engineer-capstone" and report["repo"]["target"].endswith("naive")
    assert "latency.p95" in {item["path"] for item in report["not_run"]}

    # The manager of the position's organisation sees it; another organisation's manager does not know it exists.
    listed = (await client.get(f"/api/submissions?position_id={position['id']}", headers=manager.headers)).json()
    assert [item["id"] for item in listed["items"]] == [submission_id]
    stranger = await make_identity(settings, "manager", organisation_id=await make_organisation(settings, "Other"))
    assert (await client.get(f"/api/submissions/{submission_id}", headers=stranger.headers)).status_code == 404
    other_candidate = await make_identity(settings, "candidate")
    assert (
        await client.get(f"/api/submissions/{submission_id}/report", headers=other_candidate.headers)
    ).status_code == 404


async def test_candidates_must_accept_the_ai_notice_and_join_before_submitting(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    fresh = await make_identity(settings, "candidate", accepted=False)
    refused = await client.post("/api/submissions", json={"target": "fixture:naive"}, headers=fresh.headers)
    assert refused.status_code == 403 and "ai-notice" in refused.json()["error"]["message"]

    candidate = await make_identity(settings, "candidate")
    manager = await make_identity(settings, "manager", organisation_id=await make_organisation(settings))
    assert (
        await client.post("/api/submissions", json={"target": "fixture:naive"}, headers=manager.headers)
    ).status_code == 403
    unjoined = await client.post(
        "/api/submissions", json={"target": "fixture:naive", "position_id": 999}, headers=candidate.headers
    )
    assert unjoined.status_code == 404


async def test_cancel_delete_and_regrade_with_another_rubric_version(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    manager, position = await _position(settings, client)
    candidate = await make_identity(settings, "candidate")
    await client.post("/api/positions/join", json={"invite_code": position["invite_code"]}, headers=candidate.headers)
    submitted = await client.post(
        "/api/submissions",
        json={"target": "fixture:middling", "position_id": position["id"]},
        headers=candidate.headers,
    )
    submission_id = submitted.json()["id"]
    done = await wait_for(client, candidate, submission_id)
    assert done["status"] == "done"
    assert (await client.post(f"/api/submissions/{submission_id}/cancel", headers=candidate.headers)).status_code == 409

    invalid = await client.post(
        "/api/rubrics", json={"source": RUBRIC.replace("weight: 1", "weight: -1")}, headers=manager.headers
    )
    assert invalid.status_code == 400
    [problem] = invalid.json()["error"]["details"]["problems"]
    assert problem["path"] == "criteria[0].weight" and problem["line"] == 7, problem
    checked = await client.post(
        "/api/rubrics/validate", json={"source": RUBRIC.replace("weight: 1", "weight: -1")}, headers=manager.headers
    )
    assert checked.json()["valid"] is False and checked.json()["problems"] == [problem]
    previewed = (await client.post("/api/rubrics/validate", json={"source": RUBRIC}, headers=manager.headers)).json()
    [docker] = previewed["tree"]
    assert (docker["path"], docker["weight"], docker["share"]) == ("docker", 1, 1.0)
    assert docker["check"]["name"] == "dockerfile" and docker["check"]["summary"]
    lean = await client.post("/api/rubrics", json={"source": RUBRIC}, headers=manager.headers)
    again = await client.post(
        "/api/rubrics", json={"source": RUBRIC.replace("Lean", "Leaner")}, headers=manager.headers
    )
    assert (lean.json()["version"], again.json()["version"]) == (1, 2) and lean.json()["key"] == "lean"
    exported = await client.get(f"/api/rubrics/{lean.json()['id']}/export", headers=manager.headers)
    assert exported.text == RUBRIC and "lean-v1.yaml" in exported.headers["content-disposition"]
    changed = (
        await client.get(f"/api/rubrics/diff?old={lean.json()['id']}&new={again.json()['id']}", headers=manager.headers)
    ).json()
    assert changed["changed"] == changed["added"] == changed["removed"] == []
    assert "-title: Lean" in changed["unified"] and "+title: Leaner" in changed["unified"]
    heavier = RUBRIC.replace("weight: 1", "weight: 3")
    reweighted = await client.post("/api/rubrics", json={"source": heavier}, headers=manager.headers)
    diffed = await client.get(
        f"/api/rubrics/diff?old={lean.json()['id']}&new={reweighted.json()['id']}", headers=manager.headers
    )
    assert diffed.json()["changed"] == ["docker"]

    regraded = await client.post(
        f"/api/submissions/{submission_id}/regrade",
        json={"rubric_version_id": lean.json()["id"]},
        headers=manager.headers,
    )
    assert regraded.status_code == 202 and regraded.json()["id"] != submission_id
    second = await wait_for(client, candidate, regraded.json()["id"])
    assert second["status"] == "done" and second["rubric_version_id"] == lean.json()["id"]
    assert (await client.get(f"/api/rubrics/{lean.json()['id']}", headers=manager.headers)).json()["used"]
    assert (
        await client.post(
            f"/api/submissions/{submission_id}/regrade",
            json={"rubric_version_id": lean.json()["id"]},
            headers=candidate.headers,
        )
    ).status_code == 403

    assert (await client.delete(f"/api/submissions/{submission_id}", headers=manager.headers)).status_code == 403
    assert (await client.delete(f"/api/submissions/{submission_id}", headers=candidate.headers)).status_code == 204
    assert (await client.get(f"/api/submissions/{submission_id}", headers=candidate.headers)).status_code == 404


async def test_one_grading_at_a_time_per_candidate_and_a_queued_one_can_be_cancelled(settings: Settings) -> None:
    """With no worker running, jobs stay queued: the per-candidate limit and cancelling are deterministic."""
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        candidate = await make_identity(settings, "candidate")
        first = await client.post("/api/submissions", json={"target": "fixture:naive"}, headers=candidate.headers)
        second = await client.post("/api/submissions", json={"target": "fixture:naive"}, headers=candidate.headers)
        assert first.status_code == 202 and second.status_code == 429
        assert "in progress" in second.json()["error"]["message"]
        cancelled = await client.post(f"/api/submissions/{first.json()['id']}/cancel", headers=candidate.headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = await client.post("/api/submissions", json={"target": "fixture:naive"}, headers=candidate.headers)
        assert again.status_code == 202


async def test_a_private_repository_token_stays_with_the_process_that_holds_it(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    """A token is kept in the memory of the process that took it. With the jobs table dispatching (SQLite, one
    machine) its job is pinned there: another process does not take the job while the pin is alive, takes it once
    the pin lapses (that process died) and fails it with a message saying to submit the token again — it never
    tries the clone without the token. With Procrastinate (PostgreSQL), where any worker may run the job, this
    process clones at once and the job grades that snapshot (tests/server/test_prefetched_clones.py)."""
    state = client.app.state["viva"]
    candidate = await make_identity(settings, "candidate")
    submitted = await client.post(
        "/api/submissions", json={"target": "fixture:naive", "token": "ghp_secret"}, headers=candidate.headers
    )
    assert submitted.status_code == 202, submitted.text
    assert (await wait_for(client, candidate, submitted.json()["id"]))["status"] == "done"
    async with database(settings) as db:
        job = (await db.exec(select(Job).where(Job.submission_id == submitted.json()["id"]))).one()
        row = await db.get(Submission, submitted.json()["id"])
        if state.queue.name == "database":
            assert job.pinned_to == state.worker.name and row is not None and row.prefetched is None
        else:
            assert job.pinned_to is None and row is not None and row.prefetched
    assert state.worker.tokens == {}  # and forgot the token once the clone was done

    # A job pinned to another process, its pin alive: this process leaves it alone.
    async with database(settings) as db:
        orphan = Submission(candidate_id=candidate.user.id or 0, target="fixture:naive", rubric_version_id=1)
        db.add(orphan)
        await db.flush()
        db.add(Job(submission_id=orphan.id or 0, pinned_to="elsewhere:1", lease_until=utcnow() + timedelta(hours=1)))
        await db.commit()
        orphan_id = orphan.id or 0
    await asyncio.sleep(2)
    assert (await client.get(f"/api/submissions/{orphan_id}", headers=candidate.headers)).json()["status"] == "queued"

    # That process died: its pin lapses, this process takes the job and says what happened.
    async with database(settings) as db:
        await db.exec(update(Job).where(Job.submission_id == orphan_id).values(lease_until=utcnow() - timedelta(1)))
        await db.commit()
    failed = await wait_for(client, candidate, orphan_id)
    assert failed["status"] == "failed" and "submit the repository again with its token" in failed["error"]


async def test_a_process_without_a_worker_clones_a_private_repository_at_once(settings: Settings) -> None:
    """A web-only process cannot keep a token for a worker elsewhere: it clones with it now, into the shared
    directory, and queues a job that grades the snapshot. The token is stored nowhere."""
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        candidate = await make_identity(settings, "candidate")
        submitted = await client.post(
            "/api/submissions", json={"target": "fixture:naive", "token": "ghp_secret"}, headers=candidate.headers
        )
        assert submitted.status_code == 202, submitted.text
        async with database(settings) as db:
            row = await db.get(Submission, submitted.json()["id"])
            job = (await db.exec(select(Job).where(Job.submission_id == submitted.json()["id"]))).one()
        assert row is not None and row.prefetched and job.pinned_to is None
        assert (settings.shared_path / "clones" / row.prefetched / "repo" / "main.py").is_file()
        assert "ghp_secret" not in repr(row) + repr(job)
