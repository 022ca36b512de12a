"""Red-team finding: a NUL byte in the source viewer's path (`/submissions/<id>/source/README.md%00.txt`) was a 500.
Control characters, undecodable bytes and over-long paths or names are refused with a 404 page; the file itself
still opens — on SQLite and PostgreSQL."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.db.models import Submission
from server.jobs.worker import snapshot_path
from server.settings import Settings
from tests.server.conftest import Identity, database, make_identity

REFUSED = [
    "README.md%00.txt",
    "%00",
    "README.md%00",
    "docs/%00/x",
    "README.md%0A",
    "README%0D.md",
    "a%01b",
    "a%1Fb",
    "a%7Fb",
    "a%C2%85b",  # NEL, a C1 control character
    "%FF",  # not UTF-8
    "%ED%A0%80",  # an encoded surrogate
    "x" * 2000,
    "a/" * 600 + "b",
    "b" * 300 + ".txt",  # one name longer than the filesystem allows
    "docs/" + "c" * 256,
]


async def _kept_submission(settings: Settings) -> tuple[Identity, int]:
    candidate = await make_identity(settings, "candidate")
    async with database(settings) as db:
        row = Submission(
            candidate_id=candidate.user.id or 0, target="fixture:naive", rubric_version_id=1, status="done"
        )
        db.add(row)
        await db.commit()
        submission_id = row.id or 0
    kept = snapshot_path(settings, submission_id)
    (kept / "docs").mkdir(parents=True)
    (kept / "README.md").write_text("# Hello\nline two\n")
    return candidate, submission_id


async def test_a_nul_byte_or_control_character_in_the_source_path_is_refused(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    candidate, submission_id = await _kept_submission(settings)
    for path in REFUSED:
        answer = await client.get(f"/submissions/{submission_id}/source/{path}", headers=candidate.headers)
        assert answer.status_code in (400, 404), f"{path[:60]!r}: {answer.status_code} {answer.text[:300]}"
        assert "Traceback" not in answer.text


async def test_the_source_viewer_still_shows_a_kept_file(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    candidate, submission_id = await _kept_submission(settings)
    answer = await client.get(f"/submissions/{submission_id}/source/README.md", headers=candidate.headers)
    assert answer.status_code == 200 and "line two" in answer.text, answer.text[:300]
