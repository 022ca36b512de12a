"""The text interview over a WebSocket, with the offline model: streamed questions, answers acknowledged by id, a
connection dropped mid-answer and resumed without losing or repeating an answer, the Origin and owner checks,
and the report at the end — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from llm.budget import CallRecord
from server.app import create_app
from server.metrics import METRICS
from server.settings import Settings
from tests.server.conftest import PASSWORD, Identity, make_identity

ORIGIN = {"origin": "http://127.0.0.1:8000"}


def _graded_submission(client: TestClient[Litestar], candidate: Identity) -> int:
    submitted = client.post("/api/submissions", json={"target": "fixture:middling"}, headers=candidate.headers)
    assert submitted.status_code == 202, submitted.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/api/submissions/{submitted.json()['id']}", headers=candidate.headers).json()
        if body["status"] == "done":
            return int(body["id"])
        time.sleep(0.2)
    raise AssertionError(f"grading did not finish: {body}")


def _until(socket: Any, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen = []
    while True:
        message = socket.receive_json()
        seen.append(message)
        if message["type"] == kind:
            return message, seen


def test_an_interview_survives_a_dropped_connection(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        stranger = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(client, candidate)
        started = client.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
        assert started.status_code == 201
        interview_id = started.json()["id"]
        assert (
            client.post("/api/interviews", json={"submission_id": submission_id}, headers=stranger.headers).status_code
            == 404
        )
        path = f"/api/interviews/{interview_id}/ws"

        with client.websocket_connect(path, headers=candidate.headers) as socket:
            hello = socket.receive_json()
            assert hello["type"] == "hello" and hello["acknowledged"] == [] and not hello["finished"]
            question, streamed = _until(socket, "question")
            assert question["text"] and any(message["type"] == "token" for message in streamed)
            first = str(uuid.uuid4())
            socket.send_json({"type": "answer", "id": first, "text": "We retry the model call twice, then answer 503."})
            assert socket.receive_json() == {"type": "ack", "id": first}
            reply, _ = _until(socket, "reply")
            assert reply["id"] == first and reply["text"]

            # The second answer is sent and the connection drops before its reply arrives.
            second = str(uuid.uuid4())
            socket.send_json({"type": "answer", "id": second, "text": "The budget is counted per request in USD."})
            assert socket.receive_json()["type"] == "ack"

        time.sleep(0.5)  # the server finishes and saves the reply although nobody is listening
        with client.websocket_connect(path, headers=candidate.headers) as socket:
            hello = socket.receive_json()
            assert hello["acknowledged"] == [first, second]
            socket.send_json({"type": "answer", "id": second, "text": "The budget is counted per request in USD."})
            assert socket.receive_json() == {"type": "ack", "id": second}
            again = socket.receive_json()
            assert again["type"] == "reply" and again["id"] == second and again["text"]

        transcript = client.get(f"/api/interviews/{interview_id}", headers=candidate.headers).json()["transcript"]
        answers = [turn["answer_id"] for turn in transcript if turn["role"] == "candidate"]
        assert answers == [first, second]  # nothing lost, nothing recorded twice


def test_the_socket_checks_origin_owner_and_sign_in(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        stranger = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(client, candidate)
        started = client.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
        path = f"/api/interviews/{started.json()['id']}/ws"
        with (
            pytest.raises(WebSocketDisconnect) as other,
            client.websocket_connect(path, headers=stranger.headers) as socket,
        ):
            socket.receive_json()
        assert other.value.code == 4404
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(path) as socket:  # nobody signed in
            socket.receive_json()

        # A browser session from another site: refused by Origin, though the cookie is valid.
        signed = client.post("/api/auth/login", json={"email": candidate.user.email, "password": PASSWORD})
        assert signed.status_code == 200
        with (
            pytest.raises(WebSocketDisconnect) as foreign,
            client.websocket_connect(path, headers={"origin": "https://evil.example"}) as socket,
        ):
            socket.receive_json()
        assert foreign.value.code == 4403
        with client.websocket_connect(path, headers=ORIGIN) as socket:
            assert socket.receive_json()["type"] == "hello"


def test_interview_spend_reaches_the_metrics(settings: Settings) -> None:
    """What an interview's model calls cost is added to viva_model_spend_usd_total (once, as it grows)."""
    with TestClient(create_app(settings)) as client:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(client, candidate)
        interview_id = client.post(
            "/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers
        ).json()["id"]
        with client.websocket_connect(f"/api/interviews/{interview_id}/ws", headers=candidate.headers) as socket:
            _until(socket, "question")
            live = client.app.state["viva"].interviews.running(interview_id)
            account = f"interview:{interview_id}"
            before = METRICS.spend_usd["interview"]
            reservation = live.book.reserve([account], 0.002)
            live.book.settle(
                reservation, CallRecord("priced", "interview_turn", [account], 100, 50, 0.00125, 0.1, True)
            )
            socket.send_json({"type": "answer", "id": "a1", "text": "We cap spend per request and alert at 80%."})
            _until(socket, "reply")
        assert METRICS.spend_usd["interview"] - before == pytest.approx(0.00125)
        assert "viva_model_spend_usd_total" in client.get("/metrics").text
