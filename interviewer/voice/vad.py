"""End of turn: an energy detector with an adaptive noise floor.

A frame is speech when it is `margin_db` louder than the noise floor the detector has learned (the floor follows
quiet frames quickly and loud ones only slowly, so steady noise — a fan, hiss — raises the floor and is never taken
for speech). Speech starts after `start_ms` of speech frames and the turn ends after `end_ms` of quiet following at
least `min_speech_ms` of speech. A loud sound whose level stays steady (speech never does) is declared noise: the
floor moves up to it and the utterance in progress is dropped ("noise"). A turn longer than `max_turn_ms` ends there.
Frames are 20 ms of 16 kHz PCM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean, pstdev
from typing import Literal

from interviewer.voice.audio import FRAME_MS, level_dbfs

Event = Literal["speech_start", "speech_end", "noise"]
STEADY_FRAMES = 40
"""0.8 s: a sound whose level hardly moves for this long is noise (speech rises and falls between syllables)."""


@dataclass
class EndOfTurn:
    margin_db: float = 12.0
    start_ms: int = 100
    end_ms: int = 700
    min_speech_ms: int = 250
    max_turn_ms: int = 120_000
    floor_db: float = -60.0
    speaking: bool = False
    _voiced_run: int = 0
    _quiet_run: int = 0
    _speech_ms: int = 0
    history: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.speaking, self._voiced_run, self._quiet_run, self._speech_ms = False, 0, 0, 0

    def frame(self, pcm: bytes) -> Event | None:
        """Feed one 20 ms frame; the event it completes, if any."""
        level = level_dbfs(pcm)
        self.history = [*self.history[-(STEADY_FRAMES - 1) :], level]
        voiced = level > self.floor_db + self.margin_db
        if not voiced:  # learn the floor from quiet frames fast, so a quieter room is followed too
            self.floor_db += (level - self.floor_db) * 0.2
        elif not self.speaking:  # a steady loud sound slowly becomes the new floor (noise, not speech)
            self.floor_db += (level - self.floor_db) * 0.02
        if not self.speaking:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run * FRAME_MS >= self.start_ms:
                self.speaking, self._quiet_run, self._speech_ms = True, 0, self._voiced_run * FRAME_MS
                return "speech_start"
            return None
        self._speech_ms += FRAME_MS
        if len(self.history) == STEADY_FRAMES and pstdev(self.history) < 1.5:
            self.floor_db = fmean(self.history)
            self.reset()
            return "noise"
        if self._speech_ms >= self.max_turn_ms:
            self.reset()
            return "speech_end"
        self._quiet_run = 0 if voiced else self._quiet_run + 1
        if self._quiet_run * FRAME_MS >= self.end_ms and self._speech_ms >= self.min_speech_ms:
            self.reset()
            return "speech_end"
        return None
