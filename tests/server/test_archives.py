"""Uploaded archives: graded like a repository; unsafe paths, links, special files, bombs and oversize uploads are
refused with the reason and leave nothing behind — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import errno
import gzip
import io
import shutil
import subprocess
import tarfile
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grader.fetch import FetchLimits
from server.app import create_app
from server.errors import InvalidInput
from server.services import archives
from server.services.archives import store_archive
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


# --- Red-team regressions: every refusal is a 400 with the reason and leaves nothing on disk ---------------------

LIMITS = FetchLimits()
SOURCE_CODE = Path(email.__file__).parent
"""Ordinary source code to pack, which nobody edits while the tests run: the standard library's email package."""


def _tar_in_order(entries: list[tuple[str, bytes | None]], mode: str = "w:gz") -> bytes:
    """A tar of (name, content) entries in this order; None content is a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(content)
            archive.addfile(info, None if content is None else io.BytesIO(content))
    return buffer.getvalue()


def _zip_in_order(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A zip of (name, content) entries in this order; None content is a directory (its name gets a `/`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name if content is not None else name.rstrip("/") + "/", content or b"")
    return buffer.getvalue()


def _leftovers(uploads: Path) -> list[str]:
    return sorted(path.name for path in uploads.iterdir()) if uploads.exists() else []


def _refusal(data: bytes, uploads: Path) -> str:
    with pytest.raises(InvalidInput) as refused:
        store_archive(data, uploads, LIMITS)
    assert _leftovers(uploads) == [], f"a refusal ({refused.value.message}) left {_leftovers(uploads)} behind"
    return refused.value.message


def _stored_files(uploads: Path, target: str) -> dict[str, bytes]:
    root = uploads / target.removeprefix("archive:")
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


CLASHES: dict[str, list[tuple[str, bytes | None]]] = {
    "file then directory": [("a", b"x"), ("a", None)],
    "directory then file": [("a", None), ("a", b"x")],
    "file then child": [("a", b"x"), ("a/b.py", b"y")],
    "child then file": [("a/b.py", b"y"), ("a", b"x")],
}


@pytest.mark.parametrize("pack", [_tar_in_order, _zip_in_order], ids=["tar", "zip"])
@pytest.mark.parametrize("entries", CLASHES.values(), ids=CLASHES.keys())
def test_a_file_and_a_directory_of_the_same_name_are_refused_and_leave_nothing(
    tmp_path: Path, pack: Callable[[list[tuple[str, bytes | None]]], bytes], entries: list[tuple[str, bytes | None]]
) -> None:
    assert "both as a file and as a directory" in _refusal(pack(entries), tmp_path / "uploads")


LONG_NAMES = {
    "file name": ("a" * 256, "longer than 255 bytes"),
    "directory name in bytes": ("src/" + "é" * 128 + "/app.py", "longer than 255 bytes"),
    "whole path": ("/".join(["d" * 250] * 17), "longer than 4096 bytes"),
    "whole path under uploads/": ("/".join(["d" * 250] * 16), "File name too long"),  # the OS says so: still a 400
}


@pytest.mark.parametrize("pack", [_tar_in_order, _zip_in_order], ids=["tar", "zip"])
@pytest.mark.parametrize(("name", "reason"), LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_a_name_longer_than_the_file_system_allows_is_refused_and_leaves_nothing(
    tmp_path: Path, pack: Callable[[list[tuple[str, bytes | None]]], bytes], name: str, reason: str
) -> None:
    assert reason in _refusal(pack([("ok.py", b"x"), (name, b"y")]), tmp_path / "uploads")


def test_a_name_of_255_bytes_is_accepted(tmp_path: Path) -> None:
    target = store_archive(_tar_in_order([("a" * 255, b"x")]), tmp_path, LIMITS)
    assert _stored_files(tmp_path, target) == {"a" * 255: b"x"}


def _zip_with_lie(offset: int, delta: int) -> bytes:
    """A zip whose central directory says one thing about the first member (offset 16 CRC, 24 size) and its data
    another: zipfile finds out only while reading it."""
    data = bytearray(_zip_in_order([("app.py", b"print('hello')\n" * 100), ("b.py", b"x = 1\n")]))
    entry = data.index(b"PK\x01\x02")
    value = int.from_bytes(data[entry + offset : entry + offset + 4], "little")
    data[entry + offset : entry + offset + 4] = (value + delta).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(("offset", "delta"), [(16, 1), (24, -1)], ids=["wrong crc", "size too small"])
def test_a_zip_with_a_wrong_size_or_crc_is_refused_and_leaves_nothing(tmp_path: Path, offset: int, delta: int) -> None:
    assert "Bad CRC-32" in _refusal(_zip_with_lie(offset, delta), tmp_path / "uploads")


def test_a_cut_tar_gz_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    whole = _tar_in_order([(f"m{index}.py", bytes(range(256)) * 40) for index in range(20)])
    assert "damaged" in _refusal(whole[: len(whole) // 2], tmp_path / "uploads")


def _many_files_tar() -> bytes:
    """New bytes every call, big enough that unpacking takes a while: racing uploads overlap."""
    salt = uuid.uuid4().hex.encode()
    return _tar_in_order([(f"src/pkg{index % 20}/m{index}.py", salt + b"x = 1\n" * 200) for index in range(200)])


def test_identical_uploads_at_once_store_one_archive(tmp_path: Path) -> None:
    data = _many_files_tar()
    with ThreadPoolExecutor(max_workers=3) as pool:
        targets = list(pool.map(lambda _: store_archive(data, tmp_path, LIMITS), range(3)))
    digest = targets[0].removeprefix("archive:")
    assert targets == [targets[0]] * 3 and _leftovers(tmp_path) == [digest], _leftovers(tmp_path)
    assert len(_stored_files(tmp_path, targets[0])) == 200


def test_an_upload_that_loses_the_race_keeps_the_winners_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unpack = archives._unpack
    rivals: list[str] = []
    raced = False

    def rival_finishes_first(data: bytes, staging: Path, limits: FetchLimits) -> None:
        nonlocal raced
        unpack(data, staging, limits)
        if not raced:  # the identical upload that renames its copy into place between our unpack and our rename
            raced = True
            rivals.append(store_archive(data, tmp_path, limits))

    monkeypatch.setattr(archives, "_unpack", rival_finishes_first)
    target = store_archive(_tar_in_order([("app.py", b"x")]), tmp_path, LIMITS)
    assert rivals == [target] and _leftovers(tmp_path) == [target.removeprefix("archive:")]
    assert _stored_files(tmp_path, target) == {"app.py": b"x"}


def test_a_tar_bomb_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = _tar_in_order([("zeros.bin", bytes(20_000_000))])  # under every size cap, ~1000x compressed
    assert len(bomb) < 100_000
    assert "refused as a bomb" in _refusal(bomb, tmp_path / "uploads")


@pytest.mark.parametrize("mode", ["w:gz", "w", "w:bz2", "w:xz"])
def test_an_ordinary_source_tarball_passes_the_bomb_check(tmp_path: Path, mode: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.add(SOURCE_CODE, arcname="email", filter=lambda info: None if "__pycache__" in info.name else info)
    target = store_archive(buffer.getvalue(), tmp_path, LIMITS)
    assert _stored_files(tmp_path, target)["email/message.py"] == (SOURCE_CODE / "message.py").read_bytes()


def test_an_unexpected_error_still_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(archives, "_copy_capped", broken)
    with pytest.raises(RuntimeError):
        store_archive(_tar_in_order([("app.py", b"x")]), tmp_path, LIMITS)
    assert _leftovers(tmp_path) == []


def test_a_full_disk_is_our_outage_not_a_refusal_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives, "_copy_capped", disk_full)
    with pytest.raises(OSError, match="No space left") as raised:  # a 500 for us to fix, not a 400 to the candidate
        store_archive(_tar_in_order([("app.py", b"x")]), tmp_path, LIMITS)
    assert raised.value.errno == errno.ENOSPC and _leftovers(tmp_path) == []


def test_a_tar_made_with_dot_as_its_root_is_accepted(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    (source / "src").mkdir(parents=True)
    (source / "src" / "app.py").write_bytes(b"print('hi')\n")
    (source / "README.md").write_bytes(b"# hi\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(source, arcname=".")  # members `.`, `./README.md`, `./src`, `./src/app.py`, as `tar -C repo .`
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as made:
        assert made.getnames()[0] == "."
    packed = [buffer.getvalue()]
    if shutil.which("tar"):
        packed.append(
            subprocess.run(["tar", "-C", str(source), "-czf", "-", "."], capture_output=True, check=True).stdout
        )
    for data in packed:
        target = store_archive(data, tmp_path / "uploads", LIMITS)
        assert _stored_files(tmp_path / "uploads", target) == {"README.md": b"# hi\n", "src/app.py": b"print('hi')\n"}


def test_a_zip_with_dot_slash_entries_is_accepted(tmp_path: Path) -> None:
    data = _zip_in_order([("./", None), ("./src/", None), ("./src/app.py", b"x")])
    assert _stored_files(tmp_path, store_archive(data, tmp_path, LIMITS)) == {"src/app.py": b"x"}


def test_a_file_named_dot_is_refused(tmp_path: Path) -> None:
    assert "unsafe path" in _refusal(_tar_in_order([(".", b"x")]), tmp_path / "uploads")


def test_a_plain_tar_ending_with_a_docx_is_unpacked_as_the_tar(tmp_path: Path) -> None:
    # zipfile.is_zipfile finds the .docx's end record in the tar's last 64 KB and took the whole upload for the docx.
    docx = _zip_in_order([("word/document.xml", b"<doc/>")])
    data = _tar_in_order([("app.py", b"print(1)\n"), ("docs/spec.docx", docx)], mode="w")
    assert zipfile.is_zipfile(io.BytesIO(data))
    assert _stored_files(tmp_path, store_archive(data, tmp_path, LIMITS)) == {
        "app.py": b"print(1)\n",
        "docs/spec.docx": docx,
    }


# --- The same, through the HTTP API, on SQLite and PostgreSQL ----------------------------------------------------


@asynccontextmanager
async def _served(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app served on the test's own event loop: Litestar's test client runs one request at a time, so requests
    sent through it never overlap."""
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://viva") as http,
    ):
        yield http


async def _post_archive(http: httpx.AsyncClient, headers: dict[str, str], content: bytes) -> httpx.Response:
    files = {"file": ("repo.tar.gz", content, "application/gzip")}
    return await http.post("/api/submissions/archive", files=files, headers=headers)


async def test_identical_uploads_at_once_give_one_stored_archive_and_no_500(settings: Settings, app: Litestar) -> None:
    content = _many_files_tar()
    async with _served(app) as http:  # started first: it makes the tables
        candidates = [await make_identity(settings, "candidate") for _ in range(3)]
        answers = await asyncio.gather(*(_post_archive(http, candidate.headers, content) for candidate in candidates))
    assert [answer.status_code for answer in answers] == [202, 202, 202], [answer.text for answer in answers]
    targets = {answer.json()["target"] for answer in answers}
    assert len(targets) == 1
    assert _leftovers(settings.data_path / "uploads") == [targets.pop().removeprefix("archive:")]


async def test_a_clash_archive_answers_400_with_the_reason_and_leaves_nothing(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    candidate = await make_identity(settings, "candidate")
    refused = await _upload(client, candidate.headers, _tar_in_order(CLASHES["file then child"]))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"] == "the archive holds 'a' both as a file and as a directory"
    assert _leftovers(settings.data_path / "uploads") == []


@pytest.mark.parametrize("header", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-long-name", "pax"])
def test_a_tiny_tar_declaring_a_huge_extended_header_is_refused_unread(tmp_path: Path, header: bytes) -> None:
    """tarfile reads a long-name or pax header whole before Viva sees the member: 200 MB declared in a 200 KB
    upload would be allocated by the request. It is refused from the header's declared size, before reading."""
    declared = tarfile.TarInfo("././@LongLink")
    declared.type, declared.size = header, 200_000_000
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb") as stream:
        stream.write(declared.tobuf(format=tarfile.GNU_FORMAT))
        for _ in range(200):
            stream.write(b"a" * 1_000_000)
    tracemalloc.start()
    try:
        message = _refusal(packed.getvalue(), tmp_path / "uploads")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "extended header of 200,000,000 bytes" in message
    assert peak < 20_000_000, f"the refusal allocated {peak:,} bytes"
