"""Uploaded archives (.tar.gz, .tgz, .tar, .zip), unpacked safely into a directory the grader then copies like a
local repository: no absolute paths, no `..`, no links, no devices; the number of files, each file's size and the
total unpacked size capped before anything is written (a small archive that unpacks to gigabytes is refused)."""

from __future__ import annotations

import hashlib
import io
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from grader.fetch import FetchLimits
from server.errors import InvalidInput

MAX_RATIO = 200
"""A member that unpacks to more than this many times its compressed size is a bomb, not source code."""


def store_archive(data: bytes, uploads: Path, limits: FetchLimits) -> str:
    """Unpack `data` under uploads/<sha256>/ (once per content) and return the submission target `archive:<sha256>`."""
    digest = hashlib.sha256(data).hexdigest()
    destination = uploads / digest
    if destination.is_dir():
        return f"archive:{digest}"
    staging = uploads / f".{digest}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            _unzip(data, staging, limits)
        else:
            _untar(data, staging, limits)
    except InvalidInput:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(destination)
    return f"archive:{digest}"


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name or "\0" in name:
        raise InvalidInput(f"the archive holds an unsafe path: {name[:200]!r}")
    return path


def _check_totals(count: int, total: int, limits: FetchLimits) -> None:
    if count > limits.max_files:
        raise InvalidInput(f"the archive holds more than {limits.max_files} files")
    if total > limits.max_total_bytes:
        raise InvalidInput(f"the archive unpacks to more than {limits.max_total_bytes:,} bytes")


def _unzip(data: bytes, staging: Path, limits: FetchLimits) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        _check_totals(len(members), sum(member.file_size for member in members), limits)
        for member in members:
            path = _safe_name(member.filename)
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InvalidInput(f"the archive holds a link: {member.filename[:200]!r}")
            if member.is_dir():
                (staging / path).mkdir(parents=True, exist_ok=True)
                continue
            if member.file_size > limits.max_file_bytes:
                continue  # too large to read, as with a repository: left out
            if member.compress_size and member.file_size / member.compress_size > MAX_RATIO:
                raise InvalidInput(f"{member.filename[:200]!r} expands {MAX_RATIO}x or more: refused as a bomb")
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("wb") as sink:
                _copy_capped(source, sink, member.file_size)


def _untar(data: bytes, staging: Path, limits: FetchLimits) -> None:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed below
    except tarfile.TarError:
        raise InvalidInput("upload a .tar.gz, .tgz, .tar or .zip archive") from None
    with archive:
        members = archive.getmembers()
        _check_totals(len(members), sum(member.size for member in members), limits)
        for member in members:
            path = _safe_name(member.name)
            if member.issym() or member.islnk():
                raise InvalidInput(f"the archive holds a link: {member.name[:200]!r}")
            if member.isdir():
                (staging / path).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise InvalidInput(f"the archive holds a special file: {member.name[:200]!r}")
            if member.size > limits.max_file_bytes:
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, target.open("wb") as sink:
                _copy_capped(source, sink, member.size)


def _copy_capped(source: IO[bytes], sink: IO[bytes], declared: int) -> None:
    """Copy at most the declared size: a member that lies about its size cannot write more."""
    remaining = declared
    while remaining > 0:
        chunk = source.read(min(65536, remaining))
        if not chunk:
            break
        sink.write(chunk)
        remaining -= len(chunk)
