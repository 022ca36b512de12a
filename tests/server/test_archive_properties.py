"""Whatever archive arrives, `store_archive` stores exactly its safe regular files or raises InvalidInput; it never
writes outside the upload directory and leaves nothing behind after a refusal.

Property-based (hypothesis) companions to the red-team regressions in test_archives.py: random trees of tar, tar.gz
and zip members with name clashes, `.` and `..`, long names, absolute paths, sym and hard links, fifos and devices,
and members whose declared size (tar header, zip central directory) or CRC lies about their data."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from grader.fetch import FetchLimits
from server.errors import InvalidInput
from server.services.archives import store_archive

Kind = Literal["file", "dir", "symlink", "hardlink", "fifo", "chardev"]

PROPERTY = settings(max_examples=80, deadline=None, database=None)
LIMITS = FetchLimits()
ESCAPE = Path(tempfile.gettempdir()) / f"viva-archive-escape-{os.getpid()}"
"""Where an absolute member name points: it must never come to exist."""

SAFE_COMPONENTS = st.sampled_from(["a", "a", "b", "src", "app.py", "é", ".", "n" * 255])
"""Few names, so that files and directories clash often; 255 bytes is the longest a file system allows."""
RISKY_COMPONENTS = st.sampled_from(["..", "back\\slash", "N" * 256])
TAR_RISKY_KINDS: list[Kind] = ["symlink", "hardlink", "fifo", "chardev"]
ZIP_RISKY_KINDS: list[Kind] = ["symlink", "fifo"]
SIZE_LIES = [0] * 30 + [-1, 1, 600]
"""Bytes added to a file's declared size; 600 crosses a tar block, so the next header is read from the wrong place."""


@dataclass(frozen=True)
class Entry:
    name: str
    kind: Kind
    content: bytes = b""
    declared: int = 0
    """The size the archive states; it differs from len(content) when the member lies."""
    bad_crc: bool = False

    @property
    def lies(self) -> bool:
        return self.kind == "file" and (self.declared != len(self.content) or self.bad_crc)


@st.composite
def entries(draw: st.DrawFn, risky_kinds: list[Kind], crc_lies: bool) -> Entry:
    """Mostly safe members (so that clashes and successes are common), one in ten made unsafe in one way."""
    parts = draw(st.lists(SAFE_COMPONENTS, min_size=1, max_size=3))
    kind: Kind = draw(st.sampled_from(["file", "file", "dir"]))
    lead = draw(st.sampled_from(["", "", "./"]))
    damage = draw(st.sampled_from([None] * 9 + ["component", "absolute", "kind"]))
    if damage == "component":
        parts.insert(draw(st.integers(0, len(parts))), draw(RISKY_COMPONENTS))
    elif damage == "absolute":
        lead = f"{ESCAPE}/"
    elif damage == "kind":
        kind = draw(st.sampled_from(risky_kinds))
    name = lead + "/".join(parts)
    if kind != "file":
        return Entry(name, kind)
    content = draw(st.binary(max_size=64))
    declared = max(0, len(content) + draw(st.sampled_from(SIZE_LIES)))
    return Entry(name, kind, content, declared, crc_lies and draw(st.sampled_from([False] * 30 + [True])))


def tar_trees() -> st.SearchStrategy[list[Entry]]:
    return st.lists(entries(TAR_RISKY_KINDS, crc_lies=False), min_size=1, max_size=8)


def zip_trees() -> st.SearchStrategy[list[Entry]]:
    return st.lists(entries(ZIP_RISKY_KINDS, crc_lies=True), min_size=1, max_size=8)


# --- Making the archives ----------------------------------------------------------------------------------------

TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
}
ZIP_MODES = {
    "file": stat.S_IFREG | 0o644,
    "dir": stat.S_IFDIR | 0o755,
    "symlink": stat.S_IFLNK | 0o777,
    "fifo": stat.S_IFIFO | 0o644,
}


def tar_bytes(tree: list[Entry], compressed: bool) -> bytes:
    """Headers written by hand, not by `addfile`: it refuses a member whose data does not match its size."""
    out = io.BytesIO()
    for entry in tree:
        info = tarfile.TarInfo(entry.name)
        info.type, info.size = TAR_TYPES[entry.kind], entry.declared
        info.linkname = {"symlink": "../../../../etc/passwd", "hardlink": "a"}.get(entry.kind, "")
        info.devmajor, info.devminor = (1, 3) if entry.kind == "chardev" else (0, 0)
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        out.write(entry.content + bytes(-len(entry.content) % tarfile.BLOCKSIZE))
    out.write(bytes(2 * tarfile.BLOCKSIZE))
    return gzip.compress(out.getvalue(), mtime=0) if compressed else out.getvalue()


def zip_bytes(tree: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # a name given twice is one of the cases
        for entry in tree:
            info = zipfile.ZipInfo(entry.name + ("/" if entry.kind == "dir" else ""))
            info.external_attr = ZIP_MODES[entry.kind] << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, b"a" if entry.kind == "symlink" else entry.content)
    return _with_central_directory_lies(bytearray(buffer.getvalue()), tree)


def _with_central_directory_lies(data: bytearray, tree: list[Entry]) -> bytes:
    """zipfile trusts the central directory for a member's size and CRC: write the lies there."""
    end = data.rindex(b"PK\x05\x06")
    position = int.from_bytes(data[end + 16 : end + 20], "little")
    for entry in tree:
        assert data[position : position + 4] == b"PK\x01\x02", "a central directory entry per member, in order"
        if entry.kind == "file":
            crc = int.from_bytes(data[position + 16 : position + 20], "little") ^ (0xDEADBEEF if entry.bad_crc else 0)
            data[position + 16 : position + 20] = crc.to_bytes(4, "little")
            data[position + 24 : position + 28] = entry.declared.to_bytes(4, "little")
        lengths = [int.from_bytes(data[position + at : position + at + 2], "little") for at in (28, 30, 32)]
        position += 46 + sum(lengths)
    return bytes(data)


# --- What a correct unpacker does ------------------------------------------------------------------------------


def expected_files(tree: list[Entry], *, is_zip: bool) -> dict[str, bytes] | None:
    """The files an honest archive must be stored as (the last of a name given twice wins), or None where it must
    be refused: a link or special file, an unsafe or too long name, a name both a file and a directory. A zip's
    mode bits never make a special file: a "fifo" member's bytes land as a regular file."""
    files: dict[str, bytes] = {}
    directories: set[str] = set()
    for entry in tree:
        kind = "file" if is_zip and entry.kind == "fifo" else entry.kind
        path = PurePosixPath(entry.name)
        unsafe = path.is_absolute() or ".." in path.parts or "\\" in entry.name
        if kind not in ("file", "dir") or unsafe or any(len(part.encode()) > 255 for part in path.parts):
            return None
        if not path.parts:  # the root, as `tar -C dir .` stores it: fine as a directory, never as a file
            if kind == "file":
                return None
            continue
        parents = {str(parent) for parent in path.parents if parent.parts}
        if parents & files.keys() or str(path) in (files if kind == "dir" else directories):
            return None
        directories |= parents
        if kind == "dir":
            directories.add(str(path))
        else:
            files[str(path)] = entry.content
    return files


def stored_files(root: Path) -> dict[str, bytes]:
    """The stored tree's files; anything but a directory or a regular file fails the test."""
    files = {}
    for path in root.rglob("*"):
        mode = path.lstat().st_mode
        assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), f"{path} is neither a directory nor a regular file"
        if stat.S_ISREG(mode):
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def assert_nothing_outside(scratch: Path, uploads: Path) -> None:
    """Every path in the scratch tree is the upload directory, one of its parents, or inside it."""
    allowed_parents = {scratch, *uploads.parents}
    for directory, names, files in os.walk(scratch):
        for name in names + files:
            path = Path(directory) / name
            assert path in allowed_parents or path == uploads or uploads in path.parents, f"{path} is outside uploads/"
    assert not ESCAPE.exists(), f"an absolute member name wrote {ESCAPE}"


def stored_or_refused(data: bytes, uploads: Path) -> str | InvalidInput:
    """The target, or the refusal; any other exception fails the test."""
    try:
        return store_archive(data, uploads, LIMITS)
    except InvalidInput as refusal:
        return refusal


def check_store(data: bytes, tree: list[Entry], *, is_zip: bool, honest: bool) -> None:
    """Store `data` (made from `tree`, or damaged if not `honest`) in a fresh scratch tree and check the outcome."""
    with tempfile.TemporaryDirectory(prefix="viva-archive-") as scratch_name:
        scratch = Path(scratch_name)
        uploads = scratch / "data" / "uploads"  # deep enough that `..` x3 from the staging dir stays in scratch
        outcome = stored_or_refused(data, uploads)
        assert not isinstance(outcome, InvalidInput) or outcome.message, "a refusal says why"
        target = None if isinstance(outcome, InvalidInput) else outcome
        assert_nothing_outside(scratch, uploads)
        left = sorted(path.name for path in uploads.iterdir()) if uploads.exists() else []
        expected = expected_files(tree, is_zip=is_zip)
        if target is None:
            assert left == [], f"a refusal left {left}"
            assert expected is None or not honest, f"a safe archive was refused: {tree}"
            return
        digest = hashlib.sha256(data).hexdigest()
        assert target == f"archive:{digest}" and left == [digest], left
        stored = stored_files(uploads / digest)
        if honest:
            assert stored == expected, f"{tree} stored as {stored}"
        else:
            _assert_within_lies(stored, tree)


def _assert_within_lies(stored: dict[str, bytes], tree: list[Entry]) -> None:
    """A lying archive that is not refused stores only files it names, none longer than the size it declared."""
    declared: dict[str, int] = {}
    for entry in tree:
        if entry.kind == "file":
            key = str(PurePosixPath(entry.name))
            declared[key] = max(declared.get(key, 0), entry.declared, len(entry.content))
    for name, content in stored.items():
        assert name in declared and len(content) <= declared[name], f"{name!r} ({len(content)} bytes) from {tree}"


# --- The properties ----------------------------------------------------------------------------------------------


def honest(tree: list[Entry]) -> bool:
    return not any(entry.lies for entry in tree)


@PROPERTY
@given(tree=tar_trees(), compressed=st.booleans())
def test_any_tar_is_stored_exactly_or_refused_cleanly(tree: list[Entry], compressed: bool) -> None:
    check_store(tar_bytes(tree, compressed), tree, is_zip=False, honest=honest(tree))


@PROPERTY
@given(tree=zip_trees())
def test_any_zip_is_stored_exactly_or_refused_cleanly(tree: list[Entry]) -> None:
    check_store(zip_bytes(tree), tree, is_zip=True, honest=honest(tree))


@PROPERTY
@given(data=st.data(), packing=st.sampled_from(["tar", "tar.gz", "zip"]), cut=st.floats(0.05, 0.95))
def test_a_cut_archive_is_refused_cleanly_or_stored_safely(data: st.DataObject, packing: str, cut: float) -> None:
    tree = data.draw(zip_trees() if packing == "zip" else tar_trees())
    whole = zip_bytes(tree) if packing == "zip" else tar_bytes(tree, compressed=packing == "tar.gz")
    check_store(whole[: int(len(whole) * cut)], tree, is_zip=packing == "zip", honest=False)
