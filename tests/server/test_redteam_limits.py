"""Red-team findings about limits: a re-grade is admitted like a new submission (in-flight limits per candidate and per
organisation, the per-minute rate), and review requests cannot be used to flood the managers' mail — on SQLite and
PostgreSQL, one at a time and all at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from server.app import create_app
from server.db.models import Candidacy, Job, OutboxMail, Position, Submission
from server.settings import Settings
from tests.server.conftest import Identity, database, make_identity, make_organisation, server_settings

GENEROUS_RATE = {"VIVA_LIMITS_SUBMISSIONS_PER_MINUTE": "1000"}


@dataclass
class Scene:
    client: httpx.AsyncClient
    settings: Settings
    managers: list[Identity]
    candidate: Identity
    position_id: int
    organisation_id: int
    rubric_version_id: int

    async def graded(self) -> int:
        """A finished grading of the candidate's, made in the database."""
        async with database(self.settings) as db:
            row = Submission(
                candidate_id=self.candidate.user.id or 0,
                position_id=self.position_id,
                organisation_id=self.organisation_id,
                target="fixture:naive",
                rubric_version_id=self.rubric_version_id,
                status="done",
            )
            db.add(row)
            await db.commit()
            return row.id or 0


@asynccontextmanager
async def staged(database_url: str, tmp_path: Path, **environ: str) -> AsyncIterator[Scene]:
    """An organisation with two managers and a position a candidate joined, on an app with no worker (every job stays
    queued, so what is in flight is exactly what the test admitted)."""
    settings = server_settings(database_url, tmp_path / "data", **environ)
    app = create_app(settings, run_worker=False)
    # The app on this test's own loop, called straight through ASGI: requests sent together really run together
    # (Litestar's test client hands them to its app one at a time).
    async with app.lifespan(), httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://viva") as client:
        organisation = await make_organisation(settings)
        managers = [await make_identity(settings, "manager", organisation_id=organisation) for _ in range(2)]
        candidate = await make_identity(settings, "candidate")
        rubrics = (await client.get("/api/rubrics", headers=managers[0].headers)).json()["items"]
        rubric_id = next(item["id"] for item in rubrics if item["key"] == "ai-engineer-capstone")
        async with database(settings) as db:
            position = Position(organisation_id=organisation, title="P", rubric_version_id=rubric_id, invite_code="x1")
            db.add(position)
            await db.flush()
            db.add(Candidacy(position_id=position.id or 0, candidate_id=candidate.user.id or 0))
            await db.commit()
            position_id = position.id or 0
        yield Scene(client, settings, managers, candidate, position_id, organisation, rubric_id)


async def _regrade(scene: Scene, submission_id: int) -> int:
    answer = await scene.client.post(
        f"/api/submissions/{submission_id}/regrade",
        json={"rubric_version_id": scene.rubric_version_id},
        headers=scene.managers[0].headers,
    )
    assert answer.status_code in (202, 429), answer.text
    return answer.status_code


async def _in_flight(settings: Settings) -> int:
    async with database(settings) as db:
        query = select(func.count()).select_from(Submission).where(col(Submission.status).in_(("queued", "running")))
        return int((await db.exec(query)).one())


async def _outbox(settings: Settings) -> int:
    async with database(settings) as db:
        return int((await db.exec(select(func.count()).select_from(OutboxMail))).one())


async def test_regrade_applies_the_per_candidate_limit(database_url: str, tmp_path: Path) -> None:
    """12 re-grades of one submission against VIVA_SUBMISSIONS_PER_CANDIDATE=1: one is admitted."""
    async with staged(database_url, tmp_path, **GENEROUS_RATE) as scene:
        submission_id = await scene.graded()
        answers = Counter([await _regrade(scene, submission_id) for _ in range(12)])
        assert answers == {202: 1, 429: 11}, answers
        assert await _in_flight(scene.settings) == 1
        async with database(scene.settings) as db:
            assert len((await db.exec(select(Job))).all()) == 1, "a refused re-grade must not leave a job behind"
        # The candidate's own submission counts against the same limit as the manager's re-grade.
        own = await scene.client.post(
            "/api/submissions",
            json={"target": "fixture:naive", "position_id": scene.position_id},
            headers=scene.candidate.headers,
        )
        assert own.status_code == 429, own.text


async def test_regrade_applies_the_per_organisation_limit(database_url: str, tmp_path: Path) -> None:
    async with staged(
        database_url,
        tmp_path,
        **GENEROUS_RATE,
        VIVA_SUBMISSIONS_PER_CANDIDATE="100",
        VIVA_SUBMISSIONS_PER_ORGANISATION="10",
    ) as scene:
        submission_id = await scene.graded()
        answers = Counter([await _regrade(scene, submission_id) for _ in range(12)])
        assert answers == {202: 10, 429: 2}, answers
        assert await _in_flight(scene.settings) == 10


async def test_regrades_at_once_are_admitted_one_at_a_time(database_url: str, tmp_path: Path) -> None:
    """Sent together, the re-grades must not all count the same empty queue and all pass."""
    async with staged(database_url, tmp_path, **GENEROUS_RATE) as scene:
        submission_id = await scene.graded()
        answers = Counter(await asyncio.gather(*(_regrade(scene, submission_id) for _ in range(12))))
        assert answers == {202: 1, 429: 11}, answers
        assert await _in_flight(scene.settings) == 1


async def test_regrade_applies_the_per_minute_submission_rate(database_url: str, tmp_path: Path) -> None:
    async with staged(
        database_url, tmp_path, VIVA_SUBMISSIONS_PER_CANDIDATE="100", VIVA_LIMITS_SUBMISSIONS_PER_MINUTE="6"
    ) as scene:
        submission_id = await scene.graded()
        answers = [await _regrade(scene, submission_id) for _ in range(8)]
        assert answers == [202] * 6 + [429] * 2, answers
        assert await _in_flight(scene.settings) == 6


async def _ask(scene: Scene, submission_id: int, message: str = "Please look at the latency score.") -> int:
    answer = await scene.client.post(
        f"/api/submissions/{submission_id}/review-request", json={"message": message}, headers=scene.candidate.headers
    )
    assert answer.status_code in (201, 409, 429), answer.text
    return answer.status_code


async def test_review_requests_one_open_request_per_submission(database_url: str, tmp_path: Path) -> None:
    """30 requests for one result: the first mails each manager once, the rest are 409 and mail nobody."""
    async with staged(database_url, tmp_path) as scene:
        submission_id = await scene.graded()
        answers = Counter([await _ask(scene, submission_id) for _ in range(30)])
        assert answers == {201: 1, 409: 29}, answers
        assert await _outbox(scene.settings) == len(scene.managers)
        again = await scene.client.post(
            f"/api/submissions/{submission_id}/review-request",
            json={"message": "again"},
            headers=scene.candidate.headers,
        )
        assert again.json()["error"]["details"]["review_request_id"], again.text


async def test_review_requests_at_once_mail_the_managers_once(database_url: str, tmp_path: Path) -> None:
    async with staged(database_url, tmp_path) as scene:
        submission_id = await scene.graded()
        answers = Counter(await asyncio.gather(*(_ask(scene, submission_id) for _ in range(10))))
        assert answers == {201: 1, 409: 9}, answers
        assert await _outbox(scene.settings) == len(scene.managers)


async def test_review_requests_per_candidate_per_hour(database_url: str, tmp_path: Path) -> None:
    """One request on each of five results against a cap of three an hour: two are refused, without mail."""
    async with staged(database_url, tmp_path, VIVA_REVIEWS_PER_CANDIDATE_PER_HOUR="3") as scene:
        results = [await scene.graded() for _ in range(5)]
        answers = [await _ask(scene, submission_id) for submission_id in results]
        assert answers == [201, 201, 201, 429, 429], answers
        assert await _outbox(scene.settings) == 3 * len(scene.managers)
