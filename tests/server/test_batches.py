"""Batch grading, from the manager's side: a CSV or a pasted list of repositories for a position, the attestation
that the candidates agreed, one submission each behind candidates' own gradings, progress on the position page,
and admission counted per batch rather than against the organisation's limit for candidates' own submissions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from server.app import create_app
from server.db.models import Batch, Candidacy, Job, Submission, User
from server.services.batches import ATTESTATION
from server.settings import Settings
from tests.server.conftest import database, make_identity, make_organisation, server_settings

CSV = """\
Name,Email,Repository
Ada Lovelace,ada@example.org,fixture:naive
Grace Hopper,GRACE@example.org,fixture:middling
"""


async def position_for(client: AsyncTestClient[Litestar], manager_headers: dict[str, str]) -> int:
    rubrics = (await client.get("/api/rubrics", headers=manager_headers)).json()["items"]
    capstone = next(item for item in rubrics if item["key"] == "ai-engineer-capstone")
    made = await client.post(
        "/api/positions", json={"title": "AI engineer", "rubric_version_id": capstone["id"]}, headers=manager_headers
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def test_a_csv_becomes_a_graded_submission_per_line(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    position = await position_for(client, manager.headers)
    pasted = "fixture:brittle   lin@example.org  Lin Wei\n# a comment line\n\nfixture:starts Ada Byron\n"
    made = await client.post(
        f"/api/positions/{position}/batches", json={"text": CSV, "attest": True}, headers=manager.headers
    )
    assert made.status_code == 202, made.text
    second = await client.post(
        f"/api/positions/{position}/batches", json={"text": pasted, "attest": True}, headers=manager.headers
    )
    assert second.status_code == 202, second.text
    assert made.json()["total"] == 2 and second.json()["total"] == 2
    assert manager.user.email in made.json()["attestation"] and ATTESTATION in made.json()["attestation"]

    async with database(settings) as db:
        rows = (await db.exec(select(Submission).where(col(Submission.batch_id).is_not(None)))).all()
        assert len(rows) == 4 and {row.position_id for row in rows} == {position}
        emails = {(await db.get(User, row.candidate_id)).email for row in rows}  # type: ignore[union-attr]
        assert {"ada@example.org", "grace@example.org", "lin@example.org"} <= emails
        assert any(email.endswith(".invalid") for email in emails)  # the line with no email
        names = {(await db.get(User, row.candidate_id)).name for row in rows}  # type: ignore[union-attr]
        assert {"Ada Lovelace", "Lin Wei", "Ada Byron"} <= names
        joined = (await db.exec(select(Candidacy).where(Candidacy.position_id == position))).all()
        assert len(joined) == 4  # every batch candidate is on the side-by-side table
        jobs = (await db.exec(select(Job).where(col(Job.submission_id).in_([row.id for row in rows])))).all()
        assert {job.priority for job in jobs} == {0}  # behind a candidate's own grading (10)

    # Progress on the API and on the position page, until every grading has finished.
    for _ in range(300):
        listed = (await client.get(f"/api/positions/{position}/batches", headers=manager.headers)).json()["items"]
        if all(batch["finished"] == batch["total"] for batch in listed):
            break
        await asyncio.sleep(0.2)
    assert [batch["finished"] for batch in listed] == [2, 2], listed
    page = (await client.get(f"/positions/{position}", headers=manager.headers)).text
    assert "2 of 2 finished" in page and "<progress" in page and "Ada Lovelace" in page


async def test_one_bad_line_refuses_the_batch_and_says_which(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    position = await position_for(client, manager.headers)
    text = "fixture:naive ada@example.org\nhttp://github.com/plain/http\nfixture:naive not-an-email@\nfile:///etc\n"
    broken = await client.post(
        f"/api/positions/{position}/batches",
        json={"text": 'repository,email\n"fixture:naive\x00,a@example.org\n', "attest": True},
        headers=manager.headers,
    )
    assert broken.status_code == 400, broken.text
    refused = await client.post(
        f"/api/positions/{position}/batches", json={"text": text, "attest": True}, headers=manager.headers
    )
    assert refused.status_code == 400, refused.text
    problems = refused.json()["error"]["details"]["problems"]
    assert [problem["line"] for problem in problems] == [2, 3, 4]
    unattested = await client.post(
        f"/api/positions/{position}/batches", json={"text": "fixture:naive", "attest": False}, headers=manager.headers
    )
    assert unattested.status_code == 400 and "agreed" in unattested.json()["error"]["message"]
    async with database(settings) as db:
        assert not (await db.exec(select(Batch))).all() and not (await db.exec(select(Submission))).all()


async def test_admission_is_per_batch_not_the_organisations_limit(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(
        database_url,
        tmp_path / "data",
        VIVA_SUBMISSIONS_PER_ORGANISATION="2",
        VIVA_SUBMISSIONS_BATCH_MAX="5",
        VIVA_SERVER_WORKER="0",
    )
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        organisation = await make_organisation(settings)
        manager = await make_identity(settings, "manager", organisation_id=organisation)
        position = await position_for(client, manager.headers)
        five = "\n".join(f"fixture:naive candidate{n}@example.org" for n in range(5))
        accepted = await client.post(
            f"/api/positions/{position}/batches", json={"text": five, "attest": True}, headers=manager.headers
        )
        assert accepted.status_code == 202, accepted.text  # five in flight, over the organisation's 2: a batch
        six = "\n".join(f"fixture:naive other{n}@example.org" for n in range(6))
        too_big = await client.post(
            f"/api/positions/{position}/batches", json={"text": six, "attest": True}, headers=manager.headers
        )
        assert too_big.status_code == 400 and "at most 5" in str(too_big.json()["error"]["details"]["problems"])
        # A candidate's own submission to the position is not refused because a batch is in flight.
        candidate = await make_identity(settings, "candidate")
        invite = (await client.get(f"/api/positions/{position}", headers=manager.headers)).json()["invite_code"]
        assert (
            await client.post("/api/positions/join", json={"invite_code": invite}, headers=candidate.headers)
        ).status_code in (200, 201)
        own = await client.post(
            "/api/submissions", json={"target": "fixture:naive", "position_id": position}, headers=candidate.headers
        )
        assert own.status_code == 202, own.text


async def test_another_organisations_manager_cannot_batch_into_a_position(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    ours = await make_identity(settings, "manager", organisation_id=await make_organisation(settings, "Ours"))
    theirs = await make_identity(settings, "manager", organisation_id=await make_organisation(settings, "Theirs"))
    position = await position_for(client, ours.headers)
    refused = await client.post(
        f"/api/positions/{position}/batches", json={"text": "fixture:naive", "attest": True}, headers=theirs.headers
    )
    assert refused.status_code == 404
    candidate = await make_identity(settings, "candidate")
    assert (
        await client.post(
            f"/api/positions/{position}/batches",
            json={"text": "fixture:naive", "attest": True},
            headers=candidate.headers,
        )
    ).status_code == 403
