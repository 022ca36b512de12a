"""`viva serve --processes N`: N server processes on one port, watched by the parent.

Each process opens its own listening socket with SO_REUSEPORT, so the kernel spreads new connections evenly over
them by a hash of the connection. (With one shared socket, as `uvicorn --workers` does it, whichever process wakes
first accepts a burst of connections: 500 interviews connecting at once landed mostly on one process and the other
sat idle.) The parent prepares the database before any process starts, restarts a process that dies, and stops all
of them on SIGTERM or SIGINT. Interviews and jobs live in the database, so a restarted process — or any other —
carries on whatever the dead one was doing.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger("viva.server")

QUICK_DEATH_S = 5.0
"""A process that dies sooner than this after starting counts towards giving up (a port in use, a bad setting)."""
MAX_QUICK_DEATHS = 5


def serve_processes(count: int, host: str, port: int, log_config: dict[str, Any] | None) -> int:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop or engine inherited

    def spawn() -> tuple[BaseProcess, float]:
        child = context.Process(target=_serve_one, args=(host, port, log_config), daemon=False)
        child.start()
        return child, time.monotonic()

    children = [spawn() for _ in range(count)]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    quick_deaths = 0
    try:
        while not stopping:
            for slot, (child, started) in enumerate(children):
                if child.is_alive() or stopping:
                    continue
                quick_deaths += time.monotonic() - started < QUICK_DEATH_S
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("server processes keep dying at start (last exit code %s); stopping", child.exitcode)
                    return 1
                log.warning("server process %s exited with %s; starting another", child.pid, child.exitcode)
                children[slot] = spawn()
            time.sleep(0.2)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child, _ in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for child, _ in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()


def _serve_one(host: str, port: int, log_config: dict[str, Any] | None) -> None:
    import uvicorn  # noqa: PLC0415 - imported in the child process, which is a fresh interpreter

    from server.web import uvicorn_options  # noqa: PLC0415 - as above

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    config = uvicorn.Config(
        "server.app:process_app",
        factory=True,
        log_config=log_config,
        lifespan="on",
        host=host,
        port=port,
        **uvicorn_options(),
    )
    uvicorn.Server(config).run(sockets=[listener])
