"""The text interview over a WebSocket, with the offline model: streamed questions, answers acknowledged by id, a
connection dropped mid-answer and resumed without losing or repeating an answer, the Origin and owner checks,
and the report at the end — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient, TestClient
from pydantic_ai.models import override_allow_model_requests

from interviewer.voice.audio import from_wav
from llm.budget import CallRecord
from server.api.interviews import _answer_and_save
from server.app import create_app
from server.db.models import Interview
from server.metrics import METRICS
from server.services import retention
from server.services.voice import VoiceChannel
from server.settings import MetricsSettings, Settings
from tests.server.conftest import PASSWORD, Identity, database, make_identity, server_settings
from tests.unit.test_voice import word_error_rate

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


SCRAPER_TOKEN = "scraper-token-for-the-tests-0123"


@contextmanager
def _open_interview(settings: Settings) -> Iterator[tuple[TestClient[Litestar], Any, Any, int]]:
    """A server (metrics scraped with SCRAPER_TOKEN), a candidate's graded submission and an interview open on its
    socket, past the first question: (client, socket, live session, interview id)."""
    with TestClient(
        create_app(msgspec.structs.replace(settings, metrics=MetricsSettings(token=SCRAPER_TOKEN)))
    ) as client:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(client, candidate)
        interview_id = client.post(
            "/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers
        ).json()["id"]
        with client.websocket_connect(f"/api/interviews/{interview_id}/ws", headers=candidate.headers) as socket:
            _until(socket, "question")
            yield client, socket, client.app.state["viva"].interviews.running(interview_id), interview_id


def test_interview_spend_reaches_the_metrics(settings: Settings) -> None:
    """What an interview's model calls cost is added to viva_model_spend_usd_total (once, as it grows)."""
    with _open_interview(settings) as (client, socket, live, interview_id):
        account = f"interview:{interview_id}"
        before = METRICS.spend_usd["interview"]
        reservation = live.book.reserve([account], 0.002)
        live.book.settle(reservation, CallRecord("priced", "interview_turn", [account], 100, 50, 0.00125, 0.1, True))
        socket.send_json({"type": "answer", "id": "a1", "text": "We cap spend per request and alert at 80%."})
        _until(socket, "reply")
        assert METRICS.spend_usd["interview"] - before == pytest.approx(0.00125)
        metrics = client.get("/metrics", headers={"authorization": f"Bearer {SCRAPER_TOKEN}"})
        assert metrics.status_code == 200 and "viva_model_spend_usd_total" in metrics.text


ANSWERS = [
    "Not sure.",
    "We retry the model call twice with backoff, then answer 503 so the client can retry later.",
    "It depends.",
    "The budget is counted per request in USD from the provider's usage, and we refuse once it is spent.",
    "Chunks are 500 tokens with 50 overlap; smaller chunks lost the table headers in our eval.",
]


def _talk(socket: Any, answer_id: str, text: str) -> str:
    socket.send_json({"type": "answer", "id": answer_id, "text": text})
    reply, _ = _until(socket, "reply")
    assert reply["id"] == answer_id
    return str(reply["text"])


def _saved_state(settings: Settings, interview_id: int) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with database(settings) as db:
            row = await db.get(Interview, interview_id)
            assert row is not None
            return {"state": json.loads(row.state), "revision": row.revision, "status": row.status}

    return asyncio.run(read())


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on which process took which answer: what was asked and how each answer was judged."""
    return {
        "asked": [turn["text"] for turn in state["transcript"] if turn["role"] == "interviewer"],
        "answers": [turn["answer_id"] for turn in state["transcript"] if turn["role"] == "candidate"],
        "assessments": [(a["answer_id"], a["dimension"], a["rating"]) for a in state["assessments"]],
        "position": (state["topic_index"], state["follow_ups"], state["ended"]),
    }


def test_two_server_processes_share_an_interview_exactly(settings: Settings) -> None:
    """Two apps on one database stand for two `viva serve` workers. Each answer lands on the other one (a reconnect
    to another process), one answer is resent to the process that did not take it, and two processes race on the
    same answer: the interview ends exactly as if one uninterrupted process had run it — same questions, same
    follow-ups, same assessments — with every answer recorded once."""
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings, run_worker=False)) as second:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(first, candidate)

        def new_interview() -> tuple[int, str]:
            started = first.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
            assert started.status_code == 201
            return started.json()["id"], f"/api/interviews/{started.json()['id']}/ws"

        reference_id, path = new_interview()
        with first.websocket_connect(path, headers=candidate.headers) as socket:
            _until(socket, "question")
            for number, text in enumerate(ANSWERS):
                _talk(socket, f"a{number}", text)
        reference = _saved_state(settings, reference_id)
        asked_topics = [
            turn.get("topic_id") for turn in reference["state"]["transcript"] if turn["role"] == "candidate"
        ]
        assert len(asked_topics) != len(set(asked_topics)), "the answers should draw a follow-up within a topic"

        shared_id, path = new_interview()
        clients = [first, second]
        with first.websocket_connect(path, headers=candidate.headers) as socket:
            _until(socket, "question")
        for number, text in enumerate(ANSWERS):
            with clients[(number + 1) % 2].websocket_connect(path, headers=candidate.headers) as socket:
                hello = socket.receive_json()
                assert hello["acknowledged"] == [f"a{n}" for n in range(number)]
                _talk(socket, f"a{number}", text)
            if number == 1:  # the other process, still holding revision 1, is sent the same answer again
                with clients[number % 2].websocket_connect(path, headers=candidate.headers) as socket:
                    socket.receive_json()
                    _talk(socket, "a1", text)
        shared = _saved_state(settings, shared_id)
        assert _comparable(shared["state"]) == _comparable(reference["state"])
        assert shared["status"] == reference["status"]


def test_two_processes_racing_on_one_answer_record_it_once(settings: Settings) -> None:
    """Both processes hold the interview at the same revision and both get the same answer at once: one save wins,
    the other catches up and returns the winner's reply — the answer is in the transcript once."""
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings, run_worker=False)) as second:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(first, candidate)
        started = first.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
        interview_id = started.json()["id"]
        with first.websocket_connect(f"/api/interviews/{interview_id}/ws", headers=candidate.headers) as socket:
            _until(socket, "question")
        both_open = threading.Barrier(2, timeout=30)

        async def answer_in(client: TestClient[Litestar]) -> tuple[str, int]:
            state = client.app.state["viva"]
            async with state.factory() as db:
                row = await db.get(Interview, interview_id)
                assert row is not None
                live = await state.interviews.open(db, row)
            opened_at = live.revision
            both_open.wait()  # neither has saved: both answer on the same revision
            reply = await _answer_and_save(state, interview_id, live, answer_id="same", text=ANSWERS[1], sink=None)
            return reply, opened_at

        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(client.blocking_portal.call, answer_in, client) for client in (first, second)]
            (reply_one, at_one), (reply_two, at_two) = (run.result(timeout=60) for run in runs)
        assert at_one == at_two == 1
        assert reply_one == reply_two
        saved = _saved_state(settings, interview_id)
        answers = [turn["answer_id"] for turn in saved["state"]["transcript"] if turn["role"] == "candidate"]
        assert answers == ["same"] and saved["revision"] == 2


def _speech(text: str, tmp: Any) -> bytes:
    out = tmp / "say.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(out)], check=True)
    pcm, _ = from_wav(out.read_bytes())
    return pcm


def _stream(socket: Any, pcm: bytes) -> None:
    for start in range(0, len(pcm), 3200):  # 100 ms per message, as the browser's worklet batches them
        socket.send_bytes(pcm[start : start + 3200])


SPOKEN = "we keep a cache of the answers for one hour and we check the cost of every request"


def test_a_spoken_answer_is_heard_confirmed_answered_and_timed(settings: Settings, tmp_path: Any) -> None:
    voiced = msgspec.structs.replace(
        settings,
        interview=msgspec.structs.replace(settings.interview, text_to_speech="flite", max_audio_speed=1000.0),
    )
    with TestClient(create_app(voiced)) as client:
        candidate = asyncio.run(make_identity(voiced, "candidate"))
        submission_id = _graded_submission(client, candidate)
        started = client.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
        interview_id = started.json()["id"]
        speech = _speech(SPOKEN, tmp_path)
        with client.websocket_connect(f"/api/interviews/{interview_id}/ws", headers=candidate.headers) as socket:
            _until(socket, "question")
            socket.send_json({"type": "voice", "on": True, "record": True})  # the candidate opted in to a recording
            ready = socket.receive_json()
            assert ready["type"] == "voice_ready" and ready["speech_to_text"] == "pocketsphinx" and ready["recording"]
            assert ready["text_to_speech"] == "flite" and not ready["browser_speaks"]

            # Half an answer, then the candidate stops mid-sentence and says it all again: only the whole one counts.
            _stream(socket, b"\0\0" * 8000 + speech + b"\0\0" * 24000)
            heard, events = _until(socket, "transcript")
            kinds = {event["type"] for event in events}
            assert {"level", "speech", "partial"} <= kinds
            assert word_error_rate(SPOKEN, heard["text"]) <= 0.3, heard["text"]
            assert 0 < heard["confidence"] <= 1

            # The candidate corrects one word before sending: the confirmed text is what is recorded.
            corrected = heard["text"] + " please"
            socket.send_json({"type": "answer", "id": heard["id"], "text": corrected})
            ack, _ = _until(socket, "ack")  # (the microphone's last level readings may come first)
            assert ack["id"] == heard["id"]
            _, streamed = _until(socket, "audio_end")
            audio = [event for event in streamed if event["type"] == "audio"]
            assert audio and [event["seq"] for event in audio] == list(range(len(audio)))
            assert audio[0]["sample_rate"] == 16000 and len(base64.b64decode(audio[0]["pcm"])) > 16000

            # A typed answer in the same interview (the candidate switched to the keyboard for one).
            socket.send_json({"type": "answer", "id": "typed-1", "text": "We retry twice, then return a 503."})
            _until(socket, "reply")

        row = _saved_state(voiced, interview_id)
        [spoken] = [turn for turn in row["state"]["transcript"] if turn.get("voice")]
        assert spoken["text"] == corrected and spoken["voice"]["heard"] == heard["text"]
        stages = spoken["voice"]["stages_ms"]
        assert {"transcript", "first_token", "first_audio"} <= set(stages) and all(v >= 0 for v in stages.values())
        typed = [turn for turn in row["state"]["transcript"] if turn.get("answer_id") == "typed-1"]
        assert typed and "voice" not in typed[0]  # a typed answer in the same interview stays a typed answer

        # The recording is the spoken answer, kept only because the candidate asked, and goes with their data.
        recording = voiced.data_path / "recordings" / str(interview_id) / f"{heard['id']}.wav"
        pcm, rate = from_wav(recording.read_bytes())
        assert rate == 16000 and len(pcm) >= len(speech) // 2 and recording.stat().st_mode & 0o077 == 0
        assert client.delete("/api/me/data", headers=candidate.headers).status_code == 204
        assert not recording.exists() and not recording.parent.exists()


def test_silence_noise_and_a_dropped_connection_mid_utterance(settings: Settings, tmp_path: Any) -> None:
    settings = msgspec.structs.replace(  # recorded audio, replayed faster than it was spoken
        settings, interview=msgspec.structs.replace(settings.interview, max_audio_speed=1000.0)
    )
    with TestClient(create_app(settings)) as client:
        candidate = asyncio.run(make_identity(settings, "candidate"))
        submission_id = _graded_submission(client, candidate)
        started = client.post("/api/interviews", json={"submission_id": submission_id}, headers=candidate.headers)
        path = f"/api/interviews/{started.json()['id']}/ws"
        speech = _speech(SPOKEN, tmp_path)
        with client.websocket_connect(path, headers=candidate.headers) as socket:
            _until(socket, "question")
            socket.send_json({"type": "voice", "on": True})
            assert socket.receive_json()["browser_speaks"]
            _stream(socket, b"\0\0" * 48000)  # three seconds of silence: nothing happens
            noise = struct.pack("<64000h", *(random.Random(3).randint(-3000, 3000) for _ in range(64000)))
            _stream(socket, noise + b"\0\0" * 16000)  # four seconds of hiss: noise, not an answer
            _stream(socket, speech[: len(speech) // 2])  # half a sentence, then the connection drops
        with client.websocket_connect(path, headers=candidate.headers) as socket:
            hello = socket.receive_json()
            assert hello["acknowledged"] == [] and len(hello["transcript"]) == 1  # only the first question
        assert not (settings.data_path / "recordings").exists()  # no consent, no recording


async def test_recordings_are_kept_only_as_long_as_the_retention_setting_says(database_url: str, tmp_path: Any) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_RETENTION_RECORDINGS_DAYS="30")
    async with AsyncTestClient(create_app(settings)):  # migrations (and the server's own first sweep, of nothing)
        pass
    folder = settings.data_path / "recordings" / "7"
    folder.mkdir(parents=True)
    old, new = folder / "old.wav", folder / "new.wav"
    old.write_bytes(b"RIFF"), new.write_bytes(b"RIFF")
    month_and_a_day = time.time() - 31 * 86400
    os.utime(old, (month_and_a_day, month_and_a_day))
    async with database(settings) as db:
        removed = await retention.sweep(db, settings)
    assert removed["recordings"] == 1 and not old.exists() and new.exists()


def test_audio_faster_than_a_person_can_speak_is_dropped(settings: Settings) -> None:
    """A script pushing audio much faster than real time would buy CPU for nothing: beyond a few seconds' burst it
    is dropped, not decoded."""
    channel = VoiceChannel(settings, _discard)
    assert channel.max_audio_speed == 2.0
    asyncio.run(channel.frames(b"\0\0" * 16000 * 60))  # a minute of audio in one go
    assert channel.dropped_s == 60.0
    asyncio.run(channel.frames(b"\0\0" * 16000 * 2))  # two seconds is within the burst
    assert channel.dropped_s == 60.0


async def _discard(message: dict[str, Any]) -> None:
    return None


def test_a_configured_provider_key_is_the_servers_interview_model_with_offline_last(settings: Settings) -> None:
    """As the README says: a provider key is enough, no second variable. The provider here is a closed port on
    loopback (real requests are allowed for this test only, and can reach nothing), so every call fails over to the
    offline model and the interview still runs."""
    keyed = msgspec.structs.replace(
        settings,
        llm=msgspec.structs.replace(
            settings.llm, openai_api_key="sk-test-not-a-key", openai_base_url="http://127.0.0.1:9/v1", timeout_seconds=2
        ),
    )
    with override_allow_model_requests(True), _open_interview(keyed) as (_, _, live, _):
        chain = [choice.spec.label for choice in live.session.interviewer.router.chain]
    assert chain[0].startswith("openai:") and chain[-1].startswith("offline"), chain
