"""Speech to text behind one small interface, chosen by settings.

- `pocketsphinx` (the default): offline, no downloads (the wheel ships an English model); fed frame by frame while
  the candidate speaks, so little work is left when they stop; partial hypotheses on the way; confidence is the mean
  of the recognised words' posterior probabilities.
- `openai`: the audio of the turn is sent once it ends to `/v1/audio/transcriptions` with the official SDK
  (`verbose_json`: the confidence comes from the segments' average log-probabilities).
An engine that cannot run here raises `VoiceUnavailable` with what to do, never a crash mid-interview.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from interviewer.voice.audio import SAMPLE_RATE, to_wav


class VoiceUnavailable(Exception):
    """This engine cannot run here (a missing package or binary, no key); the message says what to do."""


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float
    """0–1; below the low-confidence mark the transcript is held for the candidate to check before it counts."""
    words: list[tuple[str, float]] = field(default_factory=list)


class Recognizer(Protocol):
    def feed(self, pcm: bytes) -> str | None:
        """Audio as it arrives; a new partial transcript when there is one."""

    def finish(self) -> Transcript:
        """The turn ended: the final transcript."""


class SpeechToText(Protocol):
    name: str

    def open(self) -> Recognizer: ...


class PocketSphinx:
    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            import pocketsphinx  # type: ignore[import-untyped]  # noqa: PLC0415 - imported when chosen
        except ImportError as error:
            raise VoiceUnavailable("pocketsphinx is not installed: pip install pocketsphinx") from error
        self._module = pocketsphinx
        self._config = pocketsphinx.Config(samprate=SAMPLE_RATE, loglevel="FATAL")

    def open(self) -> Recognizer:
        return _SphinxRecognizer(self._module.Decoder(self._config))


class _SphinxRecognizer:
    PARTIAL_EVERY = 10
    """Frames (200 ms) between partial hypotheses: asking more often costs decoding time."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.decoder.start_utt()
        self.frames = 0
        self.last_partial = ""

    def feed(self, pcm: bytes) -> str | None:
        self.decoder.process_raw(pcm, False, False)
        self.frames += 1
        if self.frames % self.PARTIAL_EVERY:
            return None
        hypothesis = self.decoder.hyp()
        text = hypothesis.hypstr if hypothesis is not None else ""
        if text and text != self.last_partial:
            self.last_partial = text
            return text
        return None

    def finish(self) -> Transcript:
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        words = [
            (segment.word.split("(")[0], float(segment.prob))
            for segment in self.decoder.seg()
            if not segment.word.startswith(("<", "[", "+"))
        ]
        text = hypothesis.hypstr if hypothesis is not None else ""
        confidence = sum(probability for _, probability in words) / len(words) if words else 0.0
        return Transcript(text.strip(), round(confidence, 3), words)


class OpenAITranscription:
    name = "openai"

    def __init__(self, api_key: str | None, base_url: str | None = None, model: str = "whisper-1") -> None:
        if not api_key:
            raise VoiceUnavailable("OpenAI transcription needs VIVA_LLM_OPENAI_API_KEY")
        from openai import OpenAI  # noqa: PLC0415 - only when chosen

        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=1, timeout=30)
        self.model = model

    def open(self) -> Recognizer:
        return _BufferedRecognizer(self)

    def transcribe(self, pcm: bytes) -> Transcript:
        result = self.client.audio.transcriptions.create(
            model=self.model, file=("answer.wav", to_wav(pcm), "audio/wav"), response_format="verbose_json"
        )
        segments = getattr(result, "segments", None) or []
        logprobs = [float(getattr(segment, "avg_logprob", 0.0)) for segment in segments]
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.9
        return Transcript(str(result.text).strip(), round(min(1.0, confidence), 3))


class _BufferedRecognizer:
    """For engines that transcribe a whole turn: keep the audio, send it when the turn ends."""

    def __init__(self, engine: OpenAITranscription) -> None:
        self.engine, self.audio = engine, bytearray()

    def feed(self, pcm: bytes) -> str | None:
        self.audio += pcm
        return None

    def finish(self) -> Transcript:
        return self.engine.transcribe(bytes(self.audio))
