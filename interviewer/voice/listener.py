"""One connection's microphone: 20 ms PCM frames in, end-of-turn detection, streaming recognition, and the final
transcript out with the time speech ended.

Recognition is CPU work, so it runs in a worker thread, one batch of frames at a time (never one thread hop per
frame), while the event loop keeps serving other interviews. Hands-free, the end-of-turn detector decides when a
turn starts and ends; push-to-talk, the candidate does (`start()` / `stop()`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from interviewer.voice.audio import FRAME_BYTES, level_dbfs
from interviewer.voice.stt import Recognizer, SpeechToText, Transcript
from interviewer.voice.vad import EndOfTurn

MAX_BUFFER = FRAME_BYTES * 50 * 180
"""Three minutes of audio at most in one turn; anything beyond is dropped (and the turn ends)."""


@dataclass(frozen=True)
class Heard:
    transcript: Transcript
    speech_ended: float
    """time.monotonic() when speech ended (the end-of-turn detector's decision, or the push-to-talk release)."""
    recognised: float
    """time.monotonic() when the final transcript was ready."""
    seconds: float
    """How long the candidate spoke."""
    audio: bytes = b""
    """The turn's audio, only when it is to be recorded (the candidate opted in)."""


Emit = Callable[[dict[str, object]], Awaitable[None]]


class Listener:
    def __init__(self, stt: SpeechToText, emit: Emit, on_heard: Callable[[Heard], Awaitable[None]]) -> None:
        self.stt, self.emit, self.on_heard = stt, emit, on_heard
        self.detector = EndOfTurn()
        self.push_to_talk = False
        """Push-to-talk mode: only audio while the button is held counts; the detector is not used."""
        self.pressed = False
        self.recognizer: Recognizer | None = None
        self.pending = bytearray()
        self.turn_audio = 0
        self.keep_audio = False
        """Keep each turn's audio for a recording (off unless the candidate opted in)."""
        self.kept = bytearray()
        self.lock = asyncio.Lock()
        self._level_every, self._frames = 5, 0

    async def frames(self, pcm: bytes) -> None:
        """Audio from the browser (any number of whole frames)."""
        for start in range(0, len(pcm) - len(pcm) % FRAME_BYTES, FRAME_BYTES):
            await self._frame(pcm[start : start + FRAME_BYTES])

    async def start(self) -> None:
        """Push-to-talk pressed."""
        self.pressed = True
        await self._begin()

    async def stop(self) -> None:
        """Push-to-talk released: the turn ends now."""
        self.pressed = False
        if self.recognizer is not None:
            await self._end(time.monotonic())

    async def cancel(self) -> None:
        """Drop the turn in progress (the candidate switched to text, or the connection is closing)."""
        self.recognizer, self.pending, self.turn_audio, self.kept = None, bytearray(), 0, bytearray()
        self.detector.reset()

    async def _frame(self, frame: bytes) -> None:
        self._frames += 1
        if self._frames % self._level_every == 0:
            await self.emit({"type": "level", "dbfs": round(level_dbfs(frame), 1)})
        if self.push_to_talk or self.pressed:
            if self.pressed and self.recognizer is not None:
                await self._listen(frame)
            return
        event = self.detector.frame(frame)
        if event == "speech_start":
            await self._begin()
            await self.emit({"type": "speech", "state": "start"})
        elif event == "noise":
            await self.cancel()
            await self.emit({"type": "speech", "state": "noise"})
            return
        if self.recognizer is not None:
            await self._listen(frame)
        if event == "speech_end":
            await self._end(time.monotonic())

    async def _begin(self) -> None:
        if self.recognizer is None:
            self.recognizer = await asyncio.to_thread(self.stt.open)
            self.pending, self.turn_audio, self.kept = bytearray(), 0, bytearray()

    async def _listen(self, frame: bytes) -> None:
        if self.turn_audio >= MAX_BUFFER:
            await self._end(time.monotonic())
            return
        self.pending += frame
        self.turn_audio += len(frame)
        if self.keep_audio:
            self.kept += frame
        if len(self.pending) >= FRAME_BYTES * 10 and not self.lock.locked():  # 200 ms at a time
            await self._decode()

    async def _decode(self) -> None:
        recognizer, batch = self.recognizer, bytes(self.pending)
        self.pending = bytearray()
        if recognizer is None or not batch:
            return
        async with self.lock:
            partial = await asyncio.to_thread(recognizer.feed, batch)
        if partial:
            await self.emit({"type": "partial", "text": partial})

    async def _end(self, ended: float) -> None:
        await self._decode()
        recognizer, spoken = self.recognizer, self.turn_audio
        self.recognizer, self.turn_audio = None, 0
        if recognizer is None:
            return
        async with self.lock:
            transcript = await asyncio.to_thread(recognizer.finish)
        audio, self.kept = bytes(self.kept), bytearray()
        await self.on_heard(Heard(transcript, ended, time.monotonic(), spoken / (FRAME_BYTES * 50), audio))
