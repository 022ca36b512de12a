"""Uploaded archives (.tar.gz, .tgz, .tar, .zip), unpacked safely into a directory the grader then copies like a
local repository: no absolute paths, no `..`, no links, no devices, no name that is both a file and a directory, no
name the file system cannot hold; the number of entries, each file's size, the total unpacked size and the
compression ratio checked before anything is written (a small archive that unpacks to gigabytes is refused).

Every attempt unpacks into a staging directory of its own, removed in `finally` whatever goes wrong, and is published
by one atomic rename: a refusal leaves nothing behind, and identical uploads racing each other store one copy."""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import lzma
import os
import secrets
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from grader.fetch import FetchLimits
from server.errors import InvalidInput

MAX_RATIO = 200
"""A zip member, or a whole tar, that unpacks to more than this many times its compressed size is a bomb, not source
code (a tar.gz of source compresses 3-10x, a plain tar about 1x). A tar.gz has no per-member compressed size, so the
whole archive is measured."""

NAME_MAX = 255
"""Bytes in one path component on Linux file systems: a longer name cannot be written."""

PATH_MAX = 4096
"""Bytes in a whole path on Linux: a longer member name could never be opened, so it is refused before it is parsed."""

MAX_TAR_HEADER_BYTES = 64 * 1024
"""A GNU long-name or pax header's payload: tarfile reads it whole into memory before Viva sees the member, so a tiny
tar.gz declaring a gigabyte-long name would make one request allocate a gigabyte. A real one holds a path (at most
PATH_MAX) and a few attributes."""

_HEADER_TYPES = frozenset(
    {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar member whose extended header is refused, unread, when it is larger than any real one."""

    # tarfile's private hook for one member (Python 3.8-3.13 alike); typeshed does not declare it.
    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES and self.size > MAX_TAR_HEADER_BYTES:
            raise InvalidInput(f"the archive holds an extended header of {self.size:,} bytes: refused as a bomb")
        processed: tarfile.TarInfo = super()._proc_member(archive)  # type: ignore[misc]
        return processed


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""How a zip (or an empty one) begins. Not `zipfile.is_zipfile`, which looks for a zip's end record anywhere in the
last 64 KB: a plain .tar ending with a .docx or .whl would be taken for that file."""

_NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY, errno.EILSEQ})
"""File-system errors an archive's own names cause. Any other (a full disk, a permission) is our outage, not the
candidate's, and is not reported as a refusal."""

_DAMAGED = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    UnicodeError,
    NotImplementedError,
)
"""What zipfile, tarfile and the decompressors raise on damaged or lying data (a wrong CRC or size, a cut stream, an
unknown compression method)."""


def store_archive(data: bytes, uploads: Path, limits: FetchLimits) -> str:
    """Unpack `data` under uploads/<sha256>/ (once per content) and return the submission target `archive:<sha256>`.

    Raises InvalidInput with the reason for anything that is not a safe archive; nothing is left behind."""
    digest = hashlib.sha256(data).hexdigest()
    destination = uploads / digest
    if not destination.is_dir():
        _store_new(data, destination, limits)
    return f"archive:{digest}"


def _store_new(data: bytes, destination: Path, limits: FetchLimits) -> None:
    # A staging directory per attempt: identical uploads at once each unpack their own copy, never into each other's.
    staging = destination.with_name(f".{destination.name}.{secrets.token_hex(8)}.partial")
    staging.mkdir(parents=True)
    try:
        _unpack(data, staging, limits)
        _publish(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, destination: Path) -> None:
    """Move the unpacked tree into place in one rename, so a reader sees all of it or none of it."""
    try:
        staging.rename(destination)
    except OSError as error:
        # An identical upload got there first: its tree came from the same bytes, so ours is simply discarded.
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not destination.is_dir():
            raise


def _unpack(data: bytes, staging: Path, limits: FetchLimits) -> None:
    """Unpack into `staging`, turning every way a hostile or damaged archive can fail into InvalidInput."""
    try:
        if data.startswith(ZIP_MAGIC):
            _unzip(data, staging, limits)
        else:
            _untar(data, staging, limits)
    except OSError as error:
        # errno None is a decompressor's complaint (gzip, bz2); a file-system errno is ours unless a name caused it.
        if error.errno is not None and error.errno not in _NAME_ERRNOS:
            raise
        raise InvalidInput(f"the archive cannot be unpacked: {_os_reason(error, staging)}") from error
    except _DAMAGED as error:
        raise InvalidInput(f"the archive is damaged or lies about its contents: {error}") from error


def _os_reason(error: OSError, staging: Path) -> str:
    if not error.filename or error.strerror is None:
        return str(error)
    name = os.fsdecode(error.filename).removeprefix(f"{staging}{os.sep}")
    return f"{error.strerror}: {name[:200]!r}"


def _unzip(data: bytes, staging: Path, limits: FetchLimits) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        _check_totals(len(members), sum(member.file_size for member in members), limits)
        planned = [(member, path) for member in members if (path := _zip_member_path(member, limits)) is not None]
        _check_layout(((path, member.is_dir()) for member, path in planned), limits)
        for member, path in planned:
            if member.is_dir():
                (staging / path).mkdir(parents=True, exist_ok=True)
            elif member.file_size <= limits.max_file_bytes:  # a larger one is left out, as with a repository
                with archive.open(member) as source:
                    _write(source, staging / path, member.file_size)


def _zip_member_path(member: zipfile.ZipInfo, limits: FetchLimits) -> PurePosixPath | None:
    if stat.S_ISLNK(member.external_attr >> 16):
        raise InvalidInput(f"the archive holds a link: {member.filename[:200]!r}")
    if member.flag_bits & 0x1:
        raise InvalidInput(f"the archive holds an encrypted file: {member.filename[:200]!r}")
    written = not member.is_dir() and member.file_size <= limits.max_file_bytes
    if written and member.compress_size and member.file_size > MAX_RATIO * member.compress_size:
        raise InvalidInput(f"{member.filename[:200]!r} expands {MAX_RATIO}x or more: refused as a bomb")
    return _member_path(member.filename, is_dir=member.is_dir())


def _untar(data: bytes, staging: Path, limits: FetchLimits) -> None:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*", tarinfo=_BoundedTarInfo)  # noqa: SIM115 - closed below
    except tarfile.TarError:
        raise InvalidInput("upload a .tar.gz, .tgz, .tar or .zip archive") from None
    with archive:
        # One member past the cap, not the whole list: a small tar.gz can declare millions of members.
        members = list(itertools.islice(archive, limits.max_files + 1))
        _check_totals(len(members), sum(member.size for member in members), limits)
        planned = [(member, path) for member in members if (path := _tar_member_path(member)) is not None]
        _check_layout(((path, member.isdir()) for member, path in planned), limits)
        _check_ratio(sum(member.size for member, _ in planned if member.size <= limits.max_file_bytes), len(data))
        for member, path in planned:
            if member.isdir():
                (staging / path).mkdir(parents=True, exist_ok=True)
            elif member.size <= limits.max_file_bytes:  # a larger one is left out, as with a repository
                source = archive.extractfile(member)
                assert source is not None, "extractfile gives a reader for every regular file"
                with source:
                    _write(source, staging / path, member.size)


def _tar_member_path(member: tarfile.TarInfo) -> PurePosixPath | None:
    if member.issym() or member.islnk():
        raise InvalidInput(f"the archive holds a link: {member.name[:200]!r}")
    if not (member.isdir() or member.isfile()):
        raise InvalidInput(f"the archive holds a special file: {member.name[:200]!r}")
    return _member_path(member.name, is_dir=member.isdir())


def _member_path(name: str, *, is_dir: bool) -> PurePosixPath | None:
    """Where a member goes under the archive's root, or None for the root itself: `tar -C dir .` stores `.` and
    `./src/app.py`, a zip tool `./` (PurePosixPath turns `./x` into `x`)."""
    if len(os.fsencode(name)) > PATH_MAX:
        raise InvalidInput(f"the archive holds a path longer than {PATH_MAX} bytes: {name[:100]!r}…")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or "\0" in name or not (path.parts or is_dir):
        raise InvalidInput(f"the archive holds an unsafe path: {name[:200]!r}")
    long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long is not None:
        raise InvalidInput(f"the archive holds a name longer than {NAME_MAX} bytes: {long[:100]!r}…")
    return path if path.parts else None


def _check_totals(count: int, total: int, limits: FetchLimits) -> None:
    if count > limits.max_files:
        raise InvalidInput(f"the archive holds more than {limits.max_files} files")
    if total > limits.max_total_bytes:
        raise InvalidInput(f"the archive unpacks to more than {limits.max_total_bytes:,} bytes")


def _check_layout(entries: Iterable[tuple[PurePosixPath, bool]], limits: FetchLimits) -> None:
    """Refuse a name that is both a file and a directory (`a` and `a/`, or `a` and `a/b`, in either order): unpacking
    would fail half-way, and which one won would depend on the order. Directories a path implies count towards the
    file cap, as they take an inode each. A file given twice is allowed, the last one wins, as with `tar -x`."""
    files: set[PurePosixPath] = set()
    directories: set[PurePosixPath] = set()
    for path, is_dir in entries:
        for parent in path.parents:  # nearest first; a known one's own parents were checked when it was added
            if parent in directories or not parent.parts:
                break
            if parent in files:
                raise _clash(parent)
            directories.add(parent)
        if path in (files if is_dir else directories):
            raise _clash(path)
        (directories if is_dir else files).add(path)
        if len(files) + len(directories) > limits.max_files:
            raise InvalidInput(f"the archive holds more than {limits.max_files} files and directories")


def _clash(path: PurePosixPath) -> InvalidInput:
    return InvalidInput(f"the archive holds {str(path)[:200]!r} both as a file and as a directory")


def _check_ratio(unpacked: int, packed: int) -> None:
    if unpacked > MAX_RATIO * packed:
        raise InvalidInput(
            f"the archive unpacks to {unpacked:,} bytes from {packed:,}, over {MAX_RATIO}x: refused as a bomb"
        )


def _write(source: IO[bytes], target: Path, declared: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as sink:
        _copy_capped(source, sink, declared)


def _copy_capped(source: IO[bytes], sink: IO[bytes], declared: int) -> None:
    """Copy at most the declared size: a member that lies about its size cannot write more."""
    remaining = declared
    while remaining > 0:
        chunk = source.read(min(65536, remaining))
        if not chunk:
            break
        sink.write(chunk)
        remaining -= len(chunk)
