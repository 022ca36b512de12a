"""A voice interview on the interview WebSocket: the glue between the browser's microphone frames, the listener
(end of turn, recognition), the candidate's confirmation, and speech for the interviewer's reply.

The flow of one spoken turn:
1. binary frames (16 kHz mono PCM16) arrive; the listener sends `level`, `speech` and `partial` events;
2. at the end of speech it sends `{"type": "transcript", "id", "text", "confidence", "low"}` — the answer id is
   chosen here, and remembered with when speech ended and when the transcript was ready;
3. the browser sends it back as an ordinary answer, `{"type": "answer", "id", "text"}` — two seconds later when
   hands-free and confident (unless the candidate starts correcting it), after the candidate checked or corrected
   it otherwise — so spoken and typed answers are assessed by the same code, on the confirmed text;
4. the reply streams sentence by sentence: as text (the browser may speak it) and, with a server engine, as audio
   `{"type": "audio", "id", "seq", "sample_rate", "pcm"}` (base64) synthesised one sentence at a time while the
   interviewer is still producing the next; `{"type": "barge_in"}` from the browser stops the rest.
The stages' times are kept on the answer's turn (`VoiceMeta`) and summarised in the interview report.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interviewer.model import VoiceMeta
from interviewer.voice.audio import SAMPLE_RATE, to_wav
from interviewer.voice.engines import VoiceEngines, choose
from interviewer.voice.listener import Heard, Listener
from interviewer.voice.tts import TextToSpeech
from server.settings import Settings

Send = Callable[[dict[str, Any]], Awaitable[None]]
AUDIO_BURST_S = 5.0
"""Audio that may arrive at once (a network hiccup delivers a few seconds together)."""


def _keep_recording(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(to_wav(pcm))
    path.chmod(0o600)


@dataclass
class _Pending:
    heard: Heard
    sent_at: float


@dataclass
class _Reply:
    answer_id: str
    received: float
    first_token: float | None = None
    first_audio: float | None = None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class VoiceChannel:
    """One connection's voice state. Built when the browser asks for voice; dropped with the connection (a turn in
    progress is discarded: nothing was answered yet, and the candidate speaks it again)."""

    def __init__(
        self, settings: Settings, send: Send, engines: VoiceEngines | None = None, record_to: Path | None = None
    ) -> None:
        """`record_to`: a folder for the candidate's spoken answers as WAV files — only when they opted in."""
        self.settings, self.send, self.record_to = settings, send, record_to
        interview = settings.interview
        self.engines = engines or choose(interview.speech_to_text, interview.text_to_speech, settings.llm)
        self.low_confidence = interview.low_confidence
        self.listener = Listener(self.engines.stt, send, self._heard) if self.engines.stt is not None else None
        if self.listener is not None:
            self.listener.keep_audio = record_to is not None
        self.pending: dict[str, _Pending] = {}
        self.reply: _Reply | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._allowance, self._checked, self.dropped_s = AUDIO_BURST_S, time.monotonic(), 0.0
        self.max_audio_speed = interview.max_audio_speed

    @property
    def tts(self) -> TextToSpeech:
        return self.engines.tts

    def hello(self) -> dict[str, Any]:
        return {
            "type": "voice_ready" if self.listener is not None else "voice_unavailable",
            "speech_to_text": self.engines.stt.name if self.engines.stt is not None else None,
            "text_to_speech": self.engines.tts.name,
            "browser_speaks": self.engines.tts.in_browser,
            "low_confidence": self.low_confidence,
            "recording": self.record_to is not None,
            "problems": self.engines.problems,
        }

    async def frames(self, pcm: bytes) -> None:
        """Microphone audio. A microphone makes one second of audio per second: audio sent much faster than that
        (a script, not a person) is dropped rather than decoded, so one connection cannot take the server's CPU."""
        now = time.monotonic()
        self._allowance = min(AUDIO_BURST_S, self._allowance + (now - self._checked) * self.max_audio_speed)
        self._checked = now
        seconds = len(pcm) / (SAMPLE_RATE * 2)
        if seconds > self._allowance:
            self.dropped_s += seconds
            return
        self._allowance -= seconds
        if self.listener is not None:
            await self.listener.frames(pcm)

    async def talk(self, state: str) -> None:
        if self.listener is None:
            return
        if state == "start":
            await self.barge_in()
            await self.listener.start()
        elif state == "stop":
            await self.listener.stop()

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work tied to this connection without holding up its messages (kept referenced until done)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.cancel()
        for task in list(self._tasks):  # the stages of a reply in flight are saved; nothing else is waited for
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        await self.barge_in()

    async def _heard(self, heard: Heard) -> None:
        text = heard.transcript.text
        if not text:
            await self.send(
                {"type": "speech", "state": "nothing", "message": "I didn't catch that — please say it again."}
            )
            return
        answer_id = uuid.uuid4().hex
        if self.record_to is not None and heard.audio:
            await asyncio.to_thread(_keep_recording, self.record_to / f"{answer_id}.wav", heard.audio)
        self.pending[answer_id] = _Pending(heard, time.monotonic())
        await self.send(
            {
                "type": "transcript",
                "id": answer_id,
                "text": text,
                "confidence": heard.transcript.confidence,
                "low": heard.transcript.confidence < self.low_confidence,
            }
        )

    # --- the reply ------------------------------------------------------------------------------------------

    def start_reply(self, answer_id: str) -> Callable[[str], None]:
        """A token sink for the interviewer's reply to this answer: counts the first words and, with a server
        engine, queues each sentence for speech."""
        self.reply = reply = _Reply(answer_id, time.monotonic())
        if not self.tts.in_browser:
            reply.task = asyncio.create_task(self._speak(reply))

        def sink(sentence: str) -> None:
            if reply.first_token is None:
                reply.first_token = time.monotonic()
            if reply.task is not None:
                reply.queue.put_nowait(sentence)

        return sink

    async def end_reply(self) -> None:
        """The reply's text is complete: let the last sentences be spoken, then say the audio has ended."""
        reply = self.reply
        if reply is not None and reply.task is not None:
            reply.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await reply.task
            await self.send({"type": "audio_end", "id": reply.answer_id})

    async def _speak(self, reply: _Reply) -> None:
        seq = 0
        while (sentence := await reply.queue.get()) is not None:
            speech = await asyncio.to_thread(self.tts.speak, sentence)
            if speech is None or self.reply is not reply:
                continue
            if reply.first_audio is None:
                reply.first_audio = time.monotonic()
            await self.send(
                {
                    "type": "audio",
                    "id": reply.answer_id,
                    "seq": seq,
                    "sample_rate": speech.sample_rate,
                    "pcm": base64.b64encode(speech.pcm).decode(),
                }
            )
            seq += 1

    async def barge_in(self) -> None:
        """The candidate started speaking: stop the interviewer's audio (what is queued is dropped)."""
        reply = self.reply
        if reply is not None and reply.task is not None and not reply.task.done():
            reply.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reply.task
        self.reply = None

    def browser_audio(self, answer_id: str, after_first_token_ms: float) -> None:
        """The browser spoke the reply: how long after the first words its speech started."""
        reply = self.reply
        if reply is not None and reply.answer_id == answer_id and reply.first_token is not None:
            reply.first_audio = reply.first_token + max(0.0, after_first_token_ms) / 1000

    def meta(self, answer_id: str, confirmed_text: str) -> VoiceMeta | None:
        """How this spoken answer was heard and how long each stage took so far (None for a typed answer)."""
        pending = self.pending.get(answer_id)
        if pending is None:
            return None
        heard, reply = pending.heard, self.reply
        stages = {"transcript": (heard.recognised - heard.speech_ended) * 1000}
        if reply is not None and reply.answer_id == answer_id and reply.first_token is not None:
            stages["first_token"] = (reply.first_token - reply.received) * 1000
            if reply.first_audio is not None:
                stages["first_audio"] = (reply.first_audio - reply.first_token) * 1000
                # Viva's part of the turn: the time the transcript waited for the candidate to check it is theirs.
                stages["end_to_first_audio"] = stages["transcript"] + stages["first_token"] + stages["first_audio"]
        corrected = confirmed_text.strip() != heard.transcript.text.strip()
        return VoiceMeta(
            confidence=heard.transcript.confidence,
            heard=heard.transcript.text if corrected else "",
            speech_seconds=round(heard.seconds, 2),
            stages_ms={stage: round(value, 1) for stage, value in stages.items()},
        )

    def is_spoken(self, answer_id: str) -> bool:
        return answer_id in self.pending

    def forget_older(self, keep: str) -> None:
        """Only the latest spoken answer can still gain timings; the rest are settled."""
        for answer_id in [other for other in self.pending if other != keep]:
            del self.pending[answer_id]
