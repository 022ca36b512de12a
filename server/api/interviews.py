"""Interviews: start one about a graded submission, talk over a WebSocket, read the transcript and the report.

The WebSocket speaks JSON messages:
- server → client: {"type": "hello", "acknowledged": [answer ids], "transcript": [...], "finished": bool};
  {"type": "token", "text": "..."} while the interviewer speaks; {"type": "question", "text": "..."} when the
  interview's first turn is complete; {"type": "ack", "id": "..."} once an answer is recorded;
  {"type": "reply", "id": "...", "text": "..."} with the interviewer's whole reply; {"type": "end", "reason"};
  {"type": "error", "message": "..."}.
- client → server: {"type": "answer", "id": "<client-chosen id>", "text": "..."}.
An answer sent again with the same id (after a dropped connection) is acknowledged and answered with the reply
already given; it is never recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, WebSocket, get, post, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import JSONBody
from sqlmodel.ext.asyncio.session import AsyncSession

from interviewer.errors import InterviewFinished
from server.db.models import Interview, User
from server.errors import DomainError, InvalidInput, NotFound
from server.schemas import BodyId, Limit, Offset, OptionalQueryId, Page, PathId
from server.services import interviews, retention
from server.services.voice import VoiceChannel
from server.web import client_address, same_origin, state_of

USER, CANDIDATE = ({"access": level} for level in ("user", "candidate"))
MAX_ANSWER = 20_000
MAX_AUDIO_MESSAGE = 64_000
"""Bytes of PCM in one message: two seconds (the browser sends 100 ms at a time)."""
VOICE_MESSAGES = {"voice", "talk", "barge_in", "first_audio"}


class NewInterview(msgspec.Struct, forbid_unknown_fields=True):
    """About a graded submission (`submission_id`), or a role interview without a repository (`level`, and
    `topics` or one `topic`; "all" or nothing for every topic), optionally for a position the candidate joined."""

    submission_id: BodyId | None = None
    level: Literal["junior", "intermediate", "senior"] | None = None
    topics: Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=10)] | None = None
    topic: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    position_id: BodyId | None = None


class InterviewOut(msgspec.Struct):
    id: int
    submission_id: int | None
    status: str
    transcript: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None


class InterviewSummary(msgspec.Struct):
    id: int
    submission_id: int | None
    candidate_id: int
    status: str
    created_at: datetime
    finished_at: datetime | None


def _out(row: Interview) -> InterviewOut:
    assert row.id is not None
    return InterviewOut(
        row.id, row.submission_id, row.status, msgspec.json.decode(row.transcript), row.created_at, row.finished_at
    )


@get("/api/interviews", opt=USER)
async def list_interviews(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: OptionalQueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InterviewSummary]:
    """Candidates: their interviews. Managers: their organisation's. Newest first."""
    rows, total = await interviews.list_interviews(db, user, submission_id=submission_id, limit=limit, offset=offset)
    return Page(
        [
            InterviewSummary(
                row.id or 0, row.submission_id, row.candidate_id, row.status, row.created_at, row.finished_at
            )
            for row in rows
        ],
        total,
        limit,
        offset,
    )


@post("/api/interviews", opt=CANDIDATE, status_code=201)
async def start_interview(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    data: JSONBody[NewInterview],
) -> InterviewOut:
    state = state_of(request)
    state.limiter.hit("interview", client_address(request), state.settings.limits.interview_starts_per_minute)
    if data.submission_id is not None:
        if data.level or data.topics or data.topic:
            raise InvalidInput("an interview is about a submission or a role, not both", {"field": "submission_id"})
        return _out(await interviews.start(db, user, data.submission_id))
    if data.level is None:
        raise InvalidInput(
            "name the submission to be interviewed on, or a level for a role interview", {"field": "level"}
        )
    wanted = data.topics if data.topics is not None else ([data.topic] if data.topic else [])
    topics = [topic for topic in wanted if topic != "all"] or None
    row = await interviews.start_role(
        db, user, state.settings, level=data.level, topics=topics, position_id=data.position_id
    )
    return _out(row)


@get("/api/interviews/{interview_id:int}", opt=USER)
async def get_interview(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], interview_id: PathId
) -> InterviewOut:
    return _out(await interviews.visible_interview(db, user, interview_id))


@get("/api/interviews/{interview_id:int}/report", opt=USER)
async def get_interview_report(
    db: NamedDependency[AsyncSession], user: NamedDependency[User], interview_id: PathId
) -> Response[bytes]:
    row = await interviews.visible_interview(db, user, interview_id)
    if row.report is None:
        raise NotFound("the interview has not finished yet")
    return Response(row.report.encode(), media_type="application/json")


@websocket("/api/interviews/{interview_id:int}/ws", opt=CANDIDATE)
async def interview_socket(socket: WebSocket[Any, Any, Any], interview_id: PathId) -> None:
    """The interview, streamed — typed, or spoken (binary microphone frames and the voice messages, see
    server/services/voice.py). Only the candidate whose interview it is; a browser's Origin must be ours."""
    state = state_of(socket)
    user: User = socket.state["user"]
    origin = socket.headers.get("origin")
    if socket.state.get("session") is not None and (
        origin is None or not same_origin(origin, state.settings.server.public_url)
    ):
        await socket.close(code=4403, reason="origin not allowed")
        return
    async with state.factory() as db:
        row = await db.get(Interview, interview_id)
        if row is None or row.candidate_id != user.id:
            await socket.close(code=4404, reason="no such interview")
            return
        try:
            live = await state.interviews.open(db, row)
        except DomainError as error:
            await socket.close(code=4409, reason=error.message[:120])
            return
    await socket.accept()
    session = live.session
    await socket.send_json(
        {
            "type": "hello",
            "acknowledged": interviews.acknowledged(session),
            "transcript": msgspec.to_builtins(session.transcript),
            "finished": session.finished,
        }
    )
    voice: VoiceChannel | None = None
    try:
        if not session.transcript:
            sender = _Sender(socket)
            async with live.lock:
                question = await _first_question(state, interview_id, live, sender)
            await sender.flush()
            await socket.send_json({"type": "question", "text": question})
        while True:
            event: dict[str, Any] = dict(await socket.receive())
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="disconnect event", code=event.get("code", 1000))
            if event.get("bytes") is not None:  # microphone frames
                if voice is not None and len(event["bytes"]) <= MAX_AUDIO_MESSAGE:
                    await voice.frames(event["bytes"])
                continue
            try:
                message = json.loads(event.get("text") or "")
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("type") in VOICE_MESSAGES:
                voice = await _on_voice(state, socket, interview_id, live, voice=voice, message=message)
                continue
            await _on_message(state, socket, interview_id, live, message, voice=voice)
    except WebSocketDisconnect:
        return
    finally:
        if voice is not None:
            await voice.close()


async def _on_voice(
    state: Any,
    socket: WebSocket[Any, Any, Any],
    interview_id: int,
    live: Any,
    *,
    voice: VoiceChannel | None,
    message: Any,
) -> VoiceChannel | None:
    kind = message["type"]
    if kind == "voice":  # {"type": "voice", "on": bool, "mode": "hands_free" | "push_to_talk"}: on or off at any time
        if voice is not None:
            await voice.close()
        if not message.get("on", True):
            return None
        record_to = retention.recordings_dir(state.settings, interview_id) if message.get("record") is True else None
        voice = VoiceChannel(state.settings, socket.send_json, record_to=record_to)
        if voice.listener is not None:
            voice.listener.push_to_talk = message.get("mode") == "push_to_talk"
        await socket.send_json(voice.hello())
        return voice
    if voice is None:
        await socket.send_json({"type": "error", "message": 'switch voice on first: {"type": "voice", "on": true}'})
        return None
    if kind == "talk":
        await voice.talk(str(message.get("state", "")))
    elif kind == "barge_in":
        await voice.barge_in()
    elif kind == "first_audio":  # the browser spoke the reply; its timing completes the answer's stages
        answer_id = str(message.get("id", ""))[:100]
        voice.browser_audio(answer_id, float(message.get("after_first_token_ms", 0) or 0))
        await _note_voice(state, interview_id, live, voice, answer_id)
    return voice


async def _finish_spoken(state: Any, interview_id: int, live: Any, voice: VoiceChannel, answer_id: str) -> None:
    with contextlib.suppress(Exception):  # the candidate may have gone: the audio is for nobody, the stages still count
        await voice.end_reply()
    await _note_voice(state, interview_id, live, voice, answer_id)


async def _note_voice(state: Any, interview_id: int, live: Any, voice: VoiceChannel, answer_id: str) -> None:
    async with live.lock:
        turn = next((t for t in live.session.transcript if t.answer_id == answer_id), None)
        meta = voice.meta(answer_id, turn.text) if turn is not None else None
        if meta is None:
            return
        live.session.note_voice(answer_id, meta)
        with contextlib.suppress(interviews.StaleInterview):
            await _save(state, interview_id, live)


async def _on_message(
    state: Any,
    socket: WebSocket[Any, Any, Any],
    interview_id: int,
    live: Any,
    message: Any,
    *,
    voice: VoiceChannel | None = None,
) -> None:
    if not isinstance(message, dict) or message.get("type") != "answer":
        await socket.send_json({"type": "error", "message": 'send {"type": "answer", "id": ..., "text": ...}'})
        return
    answer_id, text = str(message.get("id", ""))[:100], str(message.get("text", ""))[:MAX_ANSWER]
    if not answer_id:
        await socket.send_json({"type": "error", "message": "an answer needs an id"})
        return
    async with live.lock:  # one answer at a time per interview in this process; the row's revision across them
        async with state.factory() as db:
            await state.interviews.catch_up(db, interview_id, live)
        if answer_id in live.session.replies:
            await socket.send_json({"type": "ack", "id": answer_id})
            await socket.send_json({"type": "reply", "id": answer_id, "text": live.session.replies[answer_id]})
            return
        await socket.send_json({"type": "ack", "id": answer_id})
        spoken = voice is not None and voice.is_spoken(answer_id)
        sender = _Sender(socket, voice.start_reply(answer_id) if spoken and voice is not None else None)
        try:
            # The reply is generated and saved even if the client drops meanwhile: it is there when they return.
            reply = await asyncio.shield(
                _answer_and_save(state, interview_id, live, answer_id=answer_id, text=text, sink=sender)
            )
        except InterviewFinished:
            await socket.send_json({"type": "end", "reason": live.session.ended})
            return
        except interviews.StaleInterview as error:
            await socket.send_json({"type": "error", "message": str(error)})
            return
        finally:
            await sender.flush()
    await socket.send_json({"type": "reply", "id": answer_id, "text": reply})
    if spoken and voice is not None:
        voice.forget_older(answer_id)
        # The last sentences' audio and the stages so far, in the background: the socket keeps reading the
        # microphone meanwhile, so the candidate can talk over the interviewer (barge-in).
        voice.background(_finish_spoken(state, interview_id, live, voice, answer_id))
    if live.session.finished:
        await socket.send_json({"type": "end", "reason": live.session.ended})


async def _answer_and_save(state: Any, interview_id: int, live: Any, *, answer_id: str, text: str, sink: Any) -> str:
    """Answer on the session as saved; if another process saved first meanwhile, catch up and answer again from
    there (or return the reply it already gave to this very answer)."""
    for _ in range(3):
        reply: str = await live.session.answer(answer_id, text, sink)
        try:
            await _save(state, interview_id, live)
            return reply
        except interviews.StaleInterview:
            async with state.factory() as db:
                await state.interviews.catch_up(db, interview_id, live)
            if answer_id in live.session.replies:
                return str(live.session.replies[answer_id])
    raise interviews.StaleInterview("the interview kept changing under this answer; send it again")


async def _first_question(state: Any, interview_id: int, live: Any, sink: Any) -> str:
    question: str = await live.session.start(sink)
    try:
        await _save(state, interview_id, live)
    except interviews.StaleInterview:  # another process asked it first: theirs is the one on record
        async with state.factory() as db:
            await state.interviews.catch_up(db, interview_id, live)
        question = await live.session.start(None)
    return question


async def _save(state: Any, interview_id: int, live: Any) -> None:
    async with state.factory() as db:
        interview = state.settings.interview
        await interviews.save(db, interview_id, live, low_confidence=interview.low_confidence)


class _Sender:
    """Streams the interviewer's tokens in order from the agent's synchronous callback. A dropped client misses
    tokens, never the saved reply."""

    def __init__(self, socket: WebSocket[Any, Any, Any], also: Callable[[str], None] | None = None) -> None:
        self.socket, self.also = socket, also
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.task = asyncio.create_task(self._drain())

    def __call__(self, token: str) -> None:
        self.queue.put_nowait(token)
        if self.also is not None:
            self.also(token)

    async def _drain(self) -> None:
        while True:
            token = await self.queue.get()
            with contextlib.suppress(Exception):
                await self.socket.send_json({"type": "token", "text": token})
            self.queue.task_done()

    async def flush(self) -> None:
        await self.queue.join()
        self.task.cancel()


ROUTES = [list_interviews, start_interview, get_interview, get_interview_report, interview_socket]
