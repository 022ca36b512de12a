"""What to monitor when gradings run on many machines: queue depth, the oldest waiting job's age, running gradings
and every worker's heartbeat, exported by any process from the database (docs/SCALING.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.db.models import Job, Submission, WorkerHost, utcnow
from tests.server.conftest import database, make_identity, make_organisation, server_settings


async def test_the_fleet_is_in_the_metrics(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_METRICS_PUBLIC="1", VIVA_SERVER_WORKER="0")
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        candidate = await make_identity(settings, "candidate")
        async with database(settings) as db:
            for priority, age_minutes in ((10, 1), (0, 30), (0, 5)):
                submission = Submission(
                    candidate_id=candidate.user.id or 0, target="fixture:naive", rubric_version_id=1
                )
                db.add(submission)
                await db.flush()
                created = utcnow() - timedelta(minutes=age_minutes)
                db.add(Job(submission_id=submission.id or 0, priority=priority, created_at=created, engine_ref=-1))
            db.add(WorkerHost(name="gpu-box:41", host="gpu-box", slots=4, busy=1, heartbeat_at=utcnow()))
            db.add(WorkerHost(name="old-box:7", host="old-box", slots=2, heartbeat_at=utcnow() - timedelta(hours=1)))
            db.add(WorkerHost(name="leaving:3", host="leaving", slots=2, busy=1, draining=True, heartbeat_at=utcnow()))
            await db.commit()
        text = (await client.get("/metrics")).text
    assert 'viva_jobs_queued{priority="0"} 2' in text and 'viva_jobs_queued{priority="10"} 1' in text
    oldest = float(
        next(line for line in text.splitlines() if line.startswith("viva_job_oldest_queued_seconds ")).split()[1]
    )
    assert 29 * 60 < oldest < 31 * 60
    assert (
        'viva_worker_alive{worker="gpu-box:41"} 1' in text and 'viva_worker_free_slots{worker="gpu-box:41"} 3' in text
    )
    assert 'viva_worker_alive{worker="old-box:7"} 0' in text and 'viva_worker_free_slots{worker="old-box:7"} 0' in text
    assert 'viva_worker_draining{worker="gpu-box:41"} 0' in text
    # A draining worker is alive but has no slot to offer: it takes no more gradings.
    assert (
        'viva_worker_draining{worker="leaving:3"} 1' in text and 'viva_worker_free_slots{worker="leaving:3"} 0' in text
    )


async def test_an_admin_sees_the_workers_and_a_manager_does_not(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_SERVER_WORKER="0")
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        admin = await make_identity(settings, "admin")
        organisation = await make_organisation(settings)
        manager = await make_identity(settings, "manager", organisation_id=organisation)
        async with database(settings) as db:
            db.add(WorkerHost(name="gpu-box:41", host="gpu-box", engine="gpu-box 4Q2B (Docker 27)", slots=4, busy=3))
            db.add(WorkerHost(name="old-box:7", host="old-box", slots=2, heartbeat_at=utcnow() - timedelta(hours=1)))
            db.add(WorkerHost(name="leaving:3", host="leaving", slots=2, busy=1, draining=True))
            await db.commit()
        page = await client.get("/admin/workers", headers=admin.headers)
        assert page.status_code == 200, page.text
        assert "gpu-box:41" in page.text and "gpu-box 4Q2B (Docker 27)" in page.text and "3 / 4" in page.text
        assert "old-box:7" in page.text and "<strong>gone</strong>" in page.text and "0 / 2" in page.text
        assert "leaving:3" in page.text and "<strong>draining</strong>" in page.text
        assert (await client.get("/admin/workers", headers=manager.headers)).status_code == 403
