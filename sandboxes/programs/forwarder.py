"""The gateway forwarder: 127.0.0.1:PORT inside the network-less sandbox → the host's gateway socket SOCK.

    python3 forwarder.py PORT SOCK

Run inside the sandbox by the image's own python3: standard library only, Python 3.8's syntax. `listen` says how
127.0.0.1 is reached: the sandbox's loopback as a program; the fake backend's stand-in loopback in-process.
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

    Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    Listen = Callable[[Handler, int], Awaitable[asyncio.AbstractServer]]


async def loopback_listen(handle: Handler, port: int) -> asyncio.AbstractServer:
    return await asyncio.start_server(handle, "127.0.0.1", port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def main(port: int, sock: str, listen: Listen = loopback_listen, out: Output | None = None) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(sock)
        await asyncio.gather(
            pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer), return_exceptions=True
        )

    server = await listen(handle, port)
    print("forwarding", flush=True, file=out)
    async with server:
        await server.serve_forever()


async def run(args: list[str], listen: Listen = loopback_listen, out: Output | None = None) -> None:
    """`args` as on the command line (after the program's name)."""
    await main(int(args[0]), args[1], listen, out)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1:]))
