"""The bridges between a network-less sandbox and the host's Unix sockets (see sandboxes/service.py).

    python3 bridge.py forward PORT SOCK        listen on 127.0.0.1:PORT and forward each connection to SOCK
                                               (PORT 0 picks a free port; the line printed names the one bound)
    python3 bridge.py tunnel SOCK PORT IDLE    keep IDLE connections open to SOCK; each one the host writes down
                                               is piped to 127.0.0.1:PORT, then a fresh idle one is opened
    python3 bridge.py forward 18080 A + forward 443 B + tunnel C 8000 12
                                               several at once, joined by `+`, in one process: every process
                                               started in a sandbox costs the engine an exec and the sandbox a
                                               Python start, which three sandboxes on two cores feel

Run inside the sandbox by the image's own python3: standard library only, Python 3.8's syntax. How 127.0.0.1 is
reached is a parameter (`listen`, `connect`): the sandbox's loopback when this runs as a program; the fake backend
(sandboxes/fake_backend.py) runs the same functions in-process on its stand-in loopback.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Protocol

    class Output(Protocol):
        def write(self, text: str, /) -> object: ...
        def flush(self) -> object: ...

    Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
    Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    Listen = Callable[[Handler, int], Awaitable[asyncio.AbstractServer]]
    Connect = Callable[[int], Awaitable[Streams]]


async def loopback_listen(handle: Handler, port: int) -> asyncio.AbstractServer:
    return await asyncio.start_server(handle, "127.0.0.1", port)


async def loopback_connect(port: int) -> Streams:
    return await asyncio.open_connection("127.0.0.1", port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def forward(port: int, sock: str, listen: Listen = loopback_listen, out: Output | None = None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(sock)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    server = await listen(handle, port)
    names = [sock.getsockname() for sock in getattr(server, "sockets", None) or ()]
    bound = names[0][1] if names and isinstance(names[0], tuple) else port  # a stand-in loopback has no port
    print("forwarding", bound, "to", sock, flush=True, file=out)
    async with server:
        await server.serve_forever()


async def tunnel(
    sock: str, port: int, idle: int, connect: Connect = loopback_connect, out: Output | None = None
) -> None:
    # The loop keeps only weak references to tasks: without this set, a request in flight is collected.
    running: set[asyncio.Future[None]] = set()

    async def one() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(sock)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            first = await reader.read(65536)
            if not first:
                writer.close()
                continue
            task = asyncio.ensure_future(serve(first, reader, writer))
            running.add(task)
            task.add_done_callback(running.discard)

    async def serve(first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            app_reader, app_writer = await connect(port)
        except OSError:
            writer.close()
            return
        app_writer.write(first)
        await app_writer.drain()
        await asyncio.gather(pipe(reader, app_writer), pipe(app_reader, writer), return_exceptions=True)

    print("tunnelling", sock, "to", port, flush=True, file=out)
    await asyncio.gather(*(one() for _ in range(idle)))


async def run(
    args: list[str],
    listen: Listen = loopback_listen,
    connect: Connect = loopback_connect,
    out: Output | None = None,
) -> None:
    """`args` as on the command line (after the program's name): one command, or several joined by `+`, all run
    until the process is stopped (one that fails, a port already taken, say, ends them all with its error)."""
    commands: list[list[str]] = [[]]
    for arg in args:
        if arg == "+":
            commands.append([])
        else:
            commands[-1].append(arg)
    await asyncio.gather(*(_one(command, listen, connect, out) for command in commands if command))


async def _one(command: list[str], listen: Listen, connect: Connect, out: Output | None) -> None:
    if command[0] == "forward" and len(command) == 3:
        await forward(int(command[1]), command[2], listen, out)
    elif command[0] == "tunnel" and len(command) == 4:
        await tunnel(command[1], int(command[2]), int(command[3]), connect, out)
    else:
        raise SystemExit("usage: bridge.py forward PORT SOCK | tunnel SOCK PORT IDLE [+ ...]: " + " ".join(command))


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1:]))
