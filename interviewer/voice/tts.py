"""Text to speech behind one small interface, chosen by settings.

- `browser` (the default): the server sends text and the candidate's browser speaks it (speechSynthesis) — no
  engine, no audio over the wire.
- `flite` / `espeak-ng`: Debian's offline engines, run as a subprocess per sentence (16 / 22 kHz WAV).
- `openai`: `/v1/audio/speech` with the official SDK, raw 24 kHz PCM.
The reply is spoken a sentence at a time as the interviewer produces it, so audio starts before the reply ends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from interviewer.voice.audio import from_wav
from interviewer.voice.stt import VoiceUnavailable

MAX_SENTENCE = 1000


@dataclass(frozen=True)
class Speech:
    pcm: bytes
    sample_rate: int


class TextToSpeech(Protocol):
    name: str
    in_browser: bool

    def speak(self, sentence: str) -> Speech | None:
        """Audio for one sentence, or None when the browser speaks it."""


class BrowserSpeech:
    name, in_browser = "browser", True

    def speak(self, sentence: str) -> Speech | None:
        return None


class CommandSpeech:
    """flite or espeak-ng, whichever is asked for; the text goes in a file, never on a command line."""

    in_browser = False

    def __init__(self, engine: str) -> None:
        self.name = engine
        self.binary = shutil.which(engine)
        if self.binary is None:
            raise VoiceUnavailable(f"{engine} is not installed here (apt-get install {engine}); the browser can speak")

    def speak(self, sentence: str) -> Speech | None:
        with tempfile.TemporaryDirectory(prefix="viva-tts-") as scratch:
            text, out = Path(scratch) / "say.txt", Path(scratch) / "say.wav"
            text.write_text(sentence[:MAX_SENTENCE], encoding="utf-8")
            if self.name == "flite":
                command = [str(self.binary), "-voice", "slt", "-f", str(text), "-o", str(out)]
            else:
                command = [str(self.binary), "-f", str(text), "-w", str(out)]
            subprocess.run(command, check=True, capture_output=True, timeout=30)
            pcm, rate = from_wav(out.read_bytes())
        return Speech(pcm, rate)


class OpenAISpeech:
    name, in_browser = "openai", False

    def __init__(self, api_key: str | None, base_url: str | None = None, model: str = "tts-1", voice: str = "alloy"):
        if not api_key:
            raise VoiceUnavailable("OpenAI speech needs VIVA_LLM_OPENAI_API_KEY")
        from openai import OpenAI  # noqa: PLC0415 - only when chosen

        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=1, timeout=30)
        self.model, self.voice = model, voice

    def speak(self, sentence: str) -> Speech | None:
        response = self.client.audio.speech.create(
            model=self.model, voice=self.voice, input=sentence[:MAX_SENTENCE], response_format="pcm"
        )
        return Speech(response.read(), 24_000)
