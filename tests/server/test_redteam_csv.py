"""Red-team finding: the CSV export left `a;=1+1` unquoted, and a spreadsheet that splits on `;` (or tabs) ran the
`=1+1`. Every cell is quoted, and a cell that starts like a formula, or holds a separator followed by one, is made
plain text: a `'` in front of it and of each such piece — through the service and the route, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.db.models import Candidacy, Position, User
from server.services.reviews import candidates_csv
from server.settings import Settings
from tests.server.conftest import database, make_identity, make_organisation

NEUTRALISED = {
    "a;=1+1": "'a;'=1+1",
    "x\t=cmd": "'x\t'=cmd",
    '=HYPERLINK("http://evil","click")': '\'=HYPERLINK("http://evil","click")',
    "-2+3": "'-2+3",
    "@SUM(1)": "'@SUM(1)",
    "+1": "'+1",
    " =1": "' =1",
    "b, -1": "'b,' -1",
    "c\r=1": "'c\r'=1",
    "d\n@x": "'d\n'@x",
}
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _export(text: str) -> list[list[str]]:
    """A one-candidate export with `text` as the name, the email and a criterion's path (a manager's rubric)."""
    row: dict[str, Any] = {
        "name": text,
        "email": text,
        "rubric": "ai-engineer-capstone v1",
        "status": "done",
        "score": 0.5,
        "coverage": 0.75,
        "criteria": {text: 0.25},
        "interview_score": None,
        "overridden": False,
    }
    return list(csv.reader(io.StringIO(candidates_csv([{**row, "results": [row]}]))))


def _reads_as_formula(cell: str) -> bool:
    """Whether a spreadsheet splitting on any separator, quotes or not, would start a formula in this cell."""
    return any(piece.lstrip(" ").startswith(FORMULA) for piece in re.split(r"[,;\t\r\n]", cell))


def test_csv_export_neutralises_formulas_after_any_separator() -> None:
    for hostile, plain in NEUTRALISED.items():
        header, line = _export(hostile)
        assert (line[0], line[1], header[6]) == (plain, plain, plain), f"{hostile!r}: {line[:2]} {header[6]!r}"
        assert not any(_reads_as_formula(cell) for cell in [*header, *line]), f"{hostile!r}: {header} {line}"


def test_csv_export_quotes_every_cell() -> None:
    text = candidates_csv([{"name": "a;=1+1", "email": "a@example.org", **_NOT_GRADED}])
    for line in text.splitlines():
        fields = re.findall(r'(?:^|,)("(?:[^"]|"")*"|[^,"]*)', line)
        assert fields and all(field.startswith('"') and field.endswith('"') for field in fields), line


def test_csv_export_leaves_ordinary_text_alone() -> None:
    _, line = _export("Mary-Jane O'Neil, PhD")
    assert line[0] == "Mary-Jane O'Neil, PhD"


_NOT_GRADED: dict[str, Any] = {
    "rubric": "",
    "status": "not submitted",
    "score": None,
    "coverage": None,
    "criteria": {},
    "interview_score": None,
    "overridden": False,
}


async def test_the_csv_route_exports_hostile_names_as_plain_text(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    async with database(settings) as db:
        position = Position(organisation_id=organisation, title="P", rubric_version_id=1, invite_code="csv1")
        db.add(position)
        await db.flush()
        for hostile in NEUTRALISED:
            candidate = User(
                email=f"{uuid.uuid4().hex[:8]}@example.org", name=hostile, role="candidate", password_hash=""
            )
            db.add(candidate)
            await db.flush()
            db.add(Candidacy(position_id=position.id or 0, candidate_id=candidate.id or 0))
        await db.commit()
        position_id = position.id
    exported = await client.get(f"/api/positions/{position_id}/candidates.csv", headers=manager.headers)
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert [row[0] for row in rows[1:]] == list(NEUTRALISED.values())
    assert not any(_reads_as_formula(cell) for row in rows for cell in row), rows
