"""A throwaway PostgreSQL cluster for the database tests: initdb in a temp dir, a free loopback port, stopped after.

The server binaries come from Debian's postgresql package (on PATH, or under /usr/lib/postgresql/*/bin). As root
(CI), the cluster runs as the `postgres` user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (.ci/run does), or run the SQLite tests"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_cluster(base: Path) -> Iterator[str]:
    """Yields an admin URL (postgresql+asyncpg://…/postgres) for a fresh cluster on 127.0.0.1."""
    data, run = base / "data", base / "run"
    data.mkdir(parents=True)
    run.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(run, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*as_user, _binary("initdb"), "-D", str(data), "-U", "viva", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-k {run} -h 127.0.0.1 -p {port} -F -c fsync=off -c full_page_writes=off -c max_connections=200"
    subprocess.run(
        [*as_user, _binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"postgresql+asyncpg://viva@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, check=False
        )
