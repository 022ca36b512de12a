"""Uploaded archives: graded like a repository; unsafe paths, links, special files, bombs and oversize uploads are
refused with the reason and leave nothing behind — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings
from tests.server.conftest import APPS, make_identity, server_settings, wait_for


def _tar(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for info in extra or []:
            archive.addfile(info)
    return buffer.getvalue()


def _directory_tar(root: Path) -> bytes:
    return _tar(
        {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}
    )


async def _upload(
    client: AsyncTestClient[Litestar], headers: dict[str, str], content: bytes, name: str = "repo.tar.gz"
):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/submissions/archive", files={"file": (name, content, "application/gzip")}, headers=headers
    )


async def test_an_uploaded_archive_is_graded(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    candidate = await make_identity(settings, "candidate")
    accepted = await _upload(client, candidate.headers, _directory_tar(APPS / "naive"))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["target"].startswith("archive:")
    done = await wait_for(client, candidate, accepted.json()["id"])
    assert done["status"] == "done"
    report = (await client.get(f"/api/submissions/{accepted.json()['id']}/report", headers=candidate.headers)).json()
    assert report["profile"]["file_count"] >= 5
    # The archive target cannot be typed in to reach someone else's upload.
    typed = await client.post("/api/submissions", json={"target": accepted.json()["target"]}, headers=candidate.headers)
    assert typed.status_code == 400


async def test_hostile_archives_are_refused(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    candidate = await make_identity(settings, "candidate")
    link = tarfile.TarInfo("evil-link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", b"0" * 20_000_000)
    cases = {
        "parent path": _tar({"../outside.txt": b"x"}),
        "absolute path": _tar({"/tmp/absolute.txt": b"x"}),
        "link": _tar({"a.py": b"x"}, [link]),
        "device": _tar({"a.py": b"x"}, [device]),
        "bomb": zipped.getvalue(),
        "not an archive": b"just some bytes",
    }
    for label, content in cases.items():
        refused = await _upload(client, candidate.headers, content)
        assert refused.status_code == 400, (label, refused.status_code, refused.text)
    uploads = settings.data_path / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), "a refused archive leaves nothing behind"
    assert not Path("/tmp/absolute.txt").exists()
    assert (await client.get("/api/submissions", headers=candidate.headers)).json()["total"] == 0


async def test_an_oversize_upload_is_refused(database_url: str, tmp_path: Path) -> None:
    small = server_settings(database_url, tmp_path / "data", VIVA_SUBMISSIONS_MAX_ARCHIVE_MB="1")
    async with AsyncTestClient(create_app(small)) as client:
        candidate = await make_identity(small, "candidate")
        refused = await _upload(client, candidate.headers, b"x" * (3 * 1024 * 1024))
        assert refused.status_code in (400, 413) and refused.json()["error"]["status"] == refused.status_code
