"""The baseline for the server benchmark: a bare Litestar app with one JSON endpoint and one WebSocket echo, served
by the same uvicorn the same way (`uvicorn bench.bare_app:app`)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, WebSocket, get, websocket

PAYLOAD = {"items": [{"id": n, "status": "done", "score": 0.5, "target": "https://github.com/o/n"} for n in range(50)]}


@get("/items", sync_to_thread=False)
def items() -> dict[str, Any]:
    return PAYLOAD


@websocket("/echo")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_json({"type": "hello"})
    while True:
        message = await socket.receive_json()
        await socket.send_json({"type": "reply", "id": message.get("id"), "text": message.get("text", "")})


app = Litestar(route_handlers=[items, echo])
