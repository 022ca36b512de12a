"""A private repository submitted to a web-only process (`viva serve --no-worker`): the web process clones it with the
token at once, into the shared directory; a worker elsewhere grades that snapshot; the report names the repository,
the clone is removed once graded, and the token is written nowhere."""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from server.app import create_app
from server.db.models import Submission
from tests.server.conftest import database, make_identity
from tests.server.fleet import Fleet, engine_settings, finished

TOKEN = "ghp_PRIVATE0123456789abcdefABCDEF"


async def test_a_worker_elsewhere_grades_what_the_web_process_cloned(database_url: str, tmp_path: Path) -> None:
    settings = engine_settings(
        database_url, tmp_path / "web-data", VIVA_SHARED_DIR=str(tmp_path / "shared"), VIVA_SERVER_WORKER="0"
    )
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        candidate = await make_identity(settings, "candidate")
        submitted = await client.post(
            "/api/submissions", json={"target": "fixture:naive", "token": TOKEN}, headers=candidate.headers
        )
        assert submitted.status_code == 202, submitted.text
        submission_id = submitted.json()["id"]
        # The worker has a data directory of its own; only the database and the shared directory are common.
        worker_settings = msgspec.structs.replace(
            settings, general=msgspec.structs.replace(settings.general, data_dir=str(tmp_path / "worker-data"))
        )
        fleet = Fleet(worker_settings)
        try:
            fleet.worker("elsewhere:1")
            statuses = await fleet.until([submission_id], finished)
        finally:
            await fleet.stop()
        assert statuses[submission_id] == "done"
        report = (await client.get(f"/api/submissions/{submission_id}/report", headers=candidate.headers)).json()
        assert report["repo"]["target"] == "fixture:naive" and report["repo"]["source_kind"] == "remote"
        async with database(settings) as db:
            row = await db.get(Submission, submission_id)
            values: list[str] = []
            for table in ("submission", "job"):
                for result in (await db.exec(text(f"SELECT * FROM {table}"))).all():
                    values += [str(value) for value in result]
            dumped = " ".join(values)
        assert row is not None and row.prefetched
        assert TOKEN not in dumped  # the token is in no column of any submission or job
        assert not (tmp_path / "shared" / "clones" / row.prefetched).exists()  # removed once graded
        assert (tmp_path / "shared" / "snapshots" / str(submission_id)).is_dir()  # the graded snapshot is kept


async def test_a_refused_submission_leaves_no_clone(database_url: str, tmp_path: Path) -> None:
    settings = engine_settings(
        database_url,
        tmp_path / "data",
        VIVA_SHARED_DIR=str(tmp_path / "shared"),
        VIVA_SERVER_WORKER="0",
        VIVA_SUBMISSIONS_PER_CANDIDATE="1",
    )
    async with AsyncTestClient(create_app(settings, run_worker=False)) as client:
        candidate = await make_identity(settings, "candidate")
        body = {"target": "fixture:naive", "token": TOKEN}
        assert (await client.post("/api/submissions", json=body, headers=candidate.headers)).status_code == 202
        refused = await client.post("/api/submissions", json=body, headers=candidate.headers)
        assert refused.status_code == 429
        assert len(list((tmp_path / "shared" / "clones").iterdir())) == 1  # the accepted one's, not the refused one's
