"""Rubric text that used to crash the parser (red-team findings) is a 400 with the problem and its line, never a 500;
on SQLite and PostgreSQL."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings
from tests.server.conftest import make_identity, make_organisation

LEAF = "id: lean\nversion: 1\ntitle: Lean\ncriteria:\n  - id: docker\n    title: Docker\n    weight: {weight}\n"
LEAF += "    check: {{kind: static, name: dockerfile}}\n"

CASES = {  # name: (source, the problem's message, its line)
    "20,000 nested [": ("[" * 20_000, "brackets are nested more than 50 deep", 1),
    "5,000 nested {a:": ("{a: " * 5_000, "brackets are nested more than 50 deep", 1),
    "5,000 nested block lists": ("- " * 5_000 + "x", "lists and mappings are nested more than 50 deep", 1),
    "5,001-digit weight": (LEAF.format(weight="1" * 5_001), "a number has more than 100 digits", 7),
    "duplicate YAML key": (
        LEAF.format(weight="1").replace("title: Lean\n", "title: Lean\ntitle: Leaner\n"),
        "duplicate key 'title' (first on line 3)",
        4,
    ),
    "duplicate JSON key": ('{\n  "id": "lean",\n  "id": "leaner"\n}', "duplicate key 'id' (first on line 2)", 3),
    "alias": ("id: &x lean\nversion: 1\ntitle: *x\n", "YAML aliases (*name) are not allowed in a rubric", 3),
    "impossible date": (
        LEAF.format(weight="1").replace("title: Lean", "title: 2024-02-30"),
        "cannot read '2024-02-30' as a date: day is out of range for month",
        3,
    ),
}


async def test_rubric_input_that_crashed_the_parser_is_a_400_with_its_line(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    organisation = await make_organisation(settings)
    manager = await make_identity(settings, "manager", organisation_id=organisation)
    for name, (source, message, line) in CASES.items():
        saved = await client.post("/api/rubrics", json={"source": source}, headers=manager.headers)
        assert saved.status_code == 400, f"{name}: {saved.status_code} {saved.text[:300]}"
        problems = saved.json()["error"]["details"]["problems"]
        assert problems == [{"path": "", "message": message, "line": line}], f"{name}: {problems}"
        checked = await client.post("/api/rubrics/validate", json={"source": source}, headers=manager.headers)
        assert checked.status_code == 200 and checked.json() == {"valid": False, "problems": problems}, name
    listed = (await client.get("/api/rubrics", headers=manager.headers)).json()["items"]
    assert all(item["key"] != "lean" for item in listed), "a refused rubric was saved"
