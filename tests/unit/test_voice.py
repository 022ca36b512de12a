"""Voice building blocks with real offline engines: flite speaks an answer, the end-of-turn detector finds where it
ends, pocketsphinx (fed while it is spoken) transcribes it within a word error rate of 0.3; silence produces no
turn, steady noise is recognised as noise, and a missing engine is reported, not raised mid-interview."""

from __future__ import annotations

import asyncio
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from interviewer.voice.audio import FRAME_BYTES, SAMPLE_RATE, from_wav
from interviewer.voice.engines import choose
from interviewer.voice.listener import Heard, Listener
from interviewer.voice.stt import PocketSphinx
from interviewer.voice.tts import CommandSpeech
from llm.select import ProviderKeys

SENTENCE = "we keep a cache of the answers for one hour and we check the cost of every request"


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    distance = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, distance[0] = distance[0], i
        for j, other in enumerate(hyp, 1):
            previous, distance[j] = distance[j], min(distance[j] + 1, distance[j - 1] + 1, previous + (word != other))
    return distance[-1] / max(1, len(ref))


def spoken(text: str, tmp_path: Path) -> bytes:
    out = tmp_path / "say.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(out)], check=True)
    pcm, rate = from_wav(out.read_bytes())
    assert rate == SAMPLE_RATE
    return pcm


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(SAMPLE_RATE * seconds)


def noise(seconds: float, amplitude: int = 3000) -> bytes:
    generator = random.Random(7)
    count = int(SAMPLE_RATE * seconds)
    return struct.pack(f"<{count}h", *(generator.randint(-amplitude, amplitude) for _ in range(count)))


async def listen(audio: bytes) -> tuple[list[Heard], list[dict[str, object]]]:
    heard: list[Heard] = []
    events: list[dict[str, object]] = []

    async def emit(event: dict[str, object]) -> None:
        events.append(event)

    async def on_heard(turn: Heard) -> None:
        heard.append(turn)

    listener = Listener(PocketSphinx(), emit, on_heard)
    for start in range(0, len(audio), FRAME_BYTES * 5):  # 100 ms packets, as the browser sends them
        await listener.frames(audio[start : start + FRAME_BYTES * 5])
    return heard, events


def test_word_error_rate() -> None:
    assert word_error_rate("a b c d", "a b c d") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5


def test_a_spoken_answer_ends_its_turn_and_is_transcribed(tmp_path: Path) -> None:
    audio = silence(0.6) + spoken(SENTENCE, tmp_path) + silence(1.2)
    heard, events = asyncio.run(listen(audio))
    assert len(heard) == 1, events
    turn = heard[0]
    assert word_error_rate(SENTENCE, turn.transcript.text) <= 0.3, turn.transcript.text
    assert 0 < turn.transcript.confidence <= 1 and turn.recognised >= turn.speech_ended
    assert any(event["type"] == "partial" for event in events)  # words shown while the candidate speaks
    assert [event["state"] for event in events if event["type"] == "speech"] == ["start"]


def test_silence_makes_no_turn() -> None:
    heard, events = asyncio.run(listen(silence(3)))
    assert heard == [] and not [event for event in events if event["type"] == "speech"]


def test_steady_noise_is_noise_not_an_answer() -> None:
    heard, events = asyncio.run(listen(silence(0.5) + noise(4) + silence(1)))
    assert heard == []
    assert "noise" in [event["state"] for event in events if event["type"] == "speech"]


def test_a_missing_engine_is_reported_and_the_browser_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    engines = choose("openai", "espeak-ng", ProviderKeys())
    assert engines.stt is None and engines.tts.in_browser
    assert any("VIVA_LLM_OPENAI_API_KEY" in problem for problem in engines.problems)
    assert any("espeak-ng is not installed" in problem for problem in engines.problems)


def test_flite_speaks_a_sentence() -> None:
    speech = CommandSpeech("flite").speak("Thank you. What happens when the model times out?")
    assert speech is not None and speech.sample_rate == SAMPLE_RATE and len(speech.pcm) > SAMPLE_RATE
