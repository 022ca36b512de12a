"""The fake backend's filesystem (sandboxes/fake_backend.py): a sandbox's files in memory, with the Docker
sandbox's shape. /work and /tmp are writable up to the limits' `disk_mb` and `tmp_mb`; everything else is
read-only; the spec's host paths (/repo, /sock, mounts, file mounts) are read through, never written, and never
past a symlink that leaves them. Errors are the kernel's (OSError with its errno), so callers word them as a
shell would. Safe to use from several threads (a fake sandbox's processes run in threads of their own).
"""

from __future__ import annotations

import errno
import os
import posixpath
import threading
from pathlib import Path

from sandboxes.base import SandboxLimits

MB = 1024 * 1024


def _refuse(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class FakeFiles:
    def __init__(self, limits: SandboxLimits, mounts: dict[str, Path]) -> None:
        """`mounts`: path inside → host path (a directory or a single file), read-only."""
        self._files: dict[str, bytes] = {}
        self._links: dict[str, str] = {}
        self._dirs: set[str] = {"/", "/work", "/tmp"}  # noqa: S108 - paths inside the sandbox
        self._quota = {"/work": limits.disk_mb * MB, "/tmp": limits.tmp_mb * MB}  # noqa: S108 - as above
        self._mounts = {posixpath.normpath(inside): host for inside, host in mounts.items()}
        self._lock = threading.RLock()

    # --- reading -----------------------------------------------------------------------------------------------

    def read(self, path: str) -> bytes:
        path = self._absolute(path)
        with self._lock:
            path = self._links.get(path, path)
            if path in self._files:
                return self._files[path]
            if path in self._dirs:
                raise _refuse(errno.EISDIR, path)
        host = self._host(path)
        if host is None or not host.is_file():
            raise _refuse(errno.EISDIR if host is not None and host.is_dir() else errno.ENOENT, path)
        return host.read_bytes()

    def exists(self, path: str) -> bool:
        return self.is_dir(path) or self.is_file(path)

    def is_file(self, path: str) -> bool:
        path = self._absolute(path)
        with self._lock:
            if path in self._files or path in self._links:
                return True
        host = self._host(path)
        return host is not None and host.is_file()

    def is_dir(self, path: str) -> bool:
        path = self._absolute(path)
        with self._lock:
            if path in self._dirs:
                return True
        host = self._host(path)
        return host is not None and host.is_dir()

    def paths(self, under: str = "/") -> list[str]:
        """The files written in the sandbox under `under` (not those read through from the host), sorted."""
        prefix = self._absolute(under).rstrip("/") + "/"
        with self._lock:
            return sorted(path for path in [*self._files, *self._links] if path.startswith(prefix))

    # --- writing -----------------------------------------------------------------------------------------------

    def write(self, path: str, data: bytes, *, append: bool = False) -> None:
        path = self._absolute(path)
        with self._lock:
            area = self._writable(path)
            if path in self._dirs:
                raise _refuse(errno.EISDIR, path)
            if posixpath.dirname(path) not in self._dirs:
                raise _refuse(errno.ENOENT, path)
            old = self._files.get(path, b"")
            new = old + data if append else data
            if self._used(area) - len(old) + len(new) > self._quota[area]:
                raise _refuse(errno.ENOSPC, path)
            self._files[path] = new

    def mkdir(self, path: str) -> None:
        """`mkdir -p`: the directory and its parents; nothing to do when it exists."""
        path = self._absolute(path)
        with self._lock:
            if self.is_dir(path):
                return
            if path in self._files:
                raise _refuse(errno.EEXIST, path)
            self._writable(path)
            parent = posixpath.dirname(path)
            if parent not in self._dirs:
                self.mkdir(parent)
            self._dirs.add(path)

    def remove(self, path: str, *, recursive: bool) -> None:
        """`rm -f` (`rm -rf` with `recursive`): a missing path is no error."""
        path = self._absolute(path)
        with self._lock:
            if not self.exists(path):
                return
            self._writable(path)
            if path in self._dirs:
                if not recursive:
                    raise _refuse(errno.EISDIR, path)
                inside = path + "/"
                for table in (self._files, self._links):
                    for name in [name for name in table if name.startswith(inside)]:
                        del table[name]
                self._dirs -= {name for name in self._dirs if name == path or name.startswith(inside)}
            self._files.pop(path, None)
            self._links.pop(path, None)

    def symlink(self, target: str, link: str) -> None:
        """`ln -sf`: a link to another path inside the sandbox."""
        link = self._absolute(link)
        with self._lock:
            self._writable(link)
            if posixpath.dirname(link) not in self._dirs:
                raise _refuse(errno.ENOENT, link)
            self._links[link] = self._absolute(target)

    def copy(self, source: str, destination: str) -> None:
        """`cp -a SOURCE/. DESTINATION/` (a tree's contents into an existing directory) or `cp -a FILE DEST`.
        Symlinks read through from the host are not copied: they would lead out of the mount."""
        tree = source.endswith("/.")
        source, destination = self._absolute(source), self._absolute(destination)
        if not tree:
            self.write(destination, self.read(source))
            return
        if not self.is_dir(destination):
            raise _refuse(errno.ENOENT, destination)
        for relative, is_dir in self._walk(source):
            target = posixpath.join(destination, relative)
            if is_dir:
                self.mkdir(target)
            else:
                self.write(target, self.read(posixpath.join(source, relative)))

    # --- internals ---------------------------------------------------------------------------------------------

    def _walk(self, root: str) -> list[tuple[str, bool]]:
        """(path relative to `root`, is a directory) for everything under `root`, parents first."""
        host = self._host(root)
        if host is not None:
            found: list[tuple[str, bool]] = []
            for directory, subdirs, files in os.walk(host, followlinks=False):
                base = Path(directory).relative_to(host)
                subdirs[:] = [name for name in subdirs if not (Path(directory) / name).is_symlink()]
                found += [(str(base / name), True) for name in sorted(subdirs)]
                found += [(str(base / name), False) for name in files if not (Path(directory) / name).is_symlink()]
            return sorted(found, key=lambda item: item[0].count("/"))
        if not self.is_dir(root):
            raise _refuse(errno.ENOENT, root)
        inside = root.rstrip("/") + "/"
        with self._lock:
            entries = [(name[len(inside) :], True) for name in self._dirs if name.startswith(inside)]
            files = [*self._files, *self._links]
            entries += [(name[len(inside) :], False) for name in files if name.startswith(inside)]
        return sorted(entries, key=lambda item: item[0].count("/"))

    def _host(self, path: str) -> Path | None:
        """The host path `path` reads through to, or None when it is not under a mount (or leaves it by a link)."""
        for inside, host in self._mounts.items():
            if path == inside:
                return host
            if path.startswith(inside.rstrip("/") + "/") and host.is_dir():
                candidate = host / path[len(inside) :].lstrip("/")
                real, root = os.path.realpath(candidate), os.path.realpath(host)
                return candidate if os.path.commonpath([real, root]) == root else None
        return None

    def _writable(self, path: str) -> str:
        """The writable area `path` is in (/work or /tmp), else EROFS: the root is read-only, as are the mounts."""
        for area in self._quota:
            if (path == area or path.startswith(area + "/")) and self._host(path) is None:
                return area
        raise _refuse(errno.EROFS, path)

    def _used(self, area: str) -> int:
        return sum(len(data) for path, data in self._files.items() if path.startswith(area + "/"))

    @staticmethod
    def _absolute(path: str) -> str:
        if not path.startswith("/"):
            raise _refuse(errno.EINVAL, path)
        return posixpath.normpath(path)
