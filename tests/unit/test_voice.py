"""Voice building blocks with real offline engines: flite speaks an answer, the end-of-turn detector finds where it
ends, pocketsphinx (fed while it is spoken) transcribes it within a word error rate of 0.3; silence produces no
turn, steady noise is recognised as noise, and a missing engine is reported, not raised mid-interview."""

from __future__ import annotations

import asyncio
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from interviewer.model import Turn, VoiceMeta
from interviewer.report import voice_summary
from interviewer.voice.audio import FRAME_BYTES, SAMPLE_RATE, from_wav
from interviewer.voice.engines import VoiceEngines, choose
from interviewer.voice.listener import Heard, Listener
from interviewer.voice.stt import PocketSphinx, Transcript
from interviewer.voice.tts import BrowserSpeech, CommandSpeech, Speech
from llm.select import ProviderKeys
from server.services.voice import VoiceChannel
from server.settings import load_settings

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


class SlowSpeech:
    """A stand-in speech engine: a fixed time per sentence, a fixed amount of audio."""

    name, in_browser = "stand-in", False

    def __init__(self, seconds: float) -> None:
        self.seconds, self.spoken = seconds, []

    def speak(self, sentence: str) -> Speech:
        time.sleep(self.seconds)
        self.spoken.append(sentence)
        return Speech(b"\1\0" * 1600, SAMPLE_RATE)


def test_the_reply_is_spoken_sentence_by_sentence_and_barge_in_stops_it() -> None:
    async def run() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        engines = VoiceEngines(stt=None, tts=SlowSpeech(0.05), problems=[])
        channel = VoiceChannel(load_settings({}), send, engines)
        sink = channel.start_reply("a1")
        sink("First sentence. ")
        await asyncio.sleep(0.2)  # the interviewer is still thinking about the second sentence
        first_audio_before_the_rest = [m for m in sent if m["type"] == "audio"]
        sink("Second sentence. ")
        sink("Third sentence. ")
        await channel.end_reply()
        whole = list(sent)

        sent.clear()
        sink = channel.start_reply("a2")
        for number in range(10):
            sink(f"Sentence {number}. ")
        await asyncio.sleep(0.08)
        await channel.barge_in()  # the candidate starts talking over the interviewer
        await asyncio.sleep(0.3)
        return [*first_audio_before_the_rest, {"type": "-"}, *whole], list(sent)

    spoken, interrupted = asyncio.run(run())
    split = spoken.index({"type": "-"})
    assert len(spoken[:split]) == 1  # audio for the first sentence before the others existed
    audio = [m for m in spoken[split + 1 :] if m["type"] == "audio"]
    assert [m["seq"] for m in audio] == [0, 1, 2] and spoken[-1] == {"type": "audio_end", "id": "a1"}
    assert 1 <= len([m for m in interrupted if m["type"] == "audio"]) <= 2  # stopped, not all ten


def test_the_report_summarises_spoken_turns_and_notes_low_recognition() -> None:
    turns = [Turn("interviewer", "Why this chunk size?", 0.0)]
    for number, confidence in enumerate([0.9, 0.4, 0.8, 0.85]):
        stages = {"transcript": 100.0 + number * 10, "first_token": 50.0, "first_audio": 200.0 + number}
        heard = "the chunks are for hundred tokens" if confidence < 0.5 else ""
        voice = VoiceMeta(confidence=confidence, heard=heard, speech_seconds=4.0, stages_ms=stages)
        turns.append(Turn("candidate", "The chunks are 400 tokens.", 1.0 + number, answer_id=f"a{number}", voice=voice))
    turns.append(Turn("candidate", "typed", 9.0, answer_id="typed"))
    summary = voice_summary(turns, low_confidence=0.6)
    assert summary is not None and summary.spoken_answers == 4
    assert summary.low_confidence_answers == 1 and summary.corrected_answers == 1 and "low confidence" in summary.note
    [transcript] = [stage for stage in summary.stages if stage.stage == "transcript"]
    assert (transcript.turns, transcript.p50_ms, transcript.p95_ms) == (4, 110.0, 130.0)
    assert voice_summary([Turn("candidate", "typed", 1.0, answer_id="x")]) is None


def test_push_to_talk_hears_only_while_the_button_is_held(tmp_path: Path) -> None:
    speech = spoken(SENTENCE, tmp_path)

    async def run() -> list[Heard]:
        heard: list[Heard] = []

        async def emit(event: dict[str, object]) -> None:
            return None

        async def on_heard(turn: Heard) -> None:
            heard.append(turn)

        listener = Listener(PocketSphinx(), emit, on_heard)
        listener.push_to_talk = True
        await listener.frames(speech)  # talking without holding the button: not an answer
        assert heard == []
        await listener.start()
        await listener.frames(speech[: len(speech) // 2 - len(speech) // 2 % FRAME_BYTES])
        await listener.frames(silence(3))  # a pause while the button is still held does not end the turn
        assert heard == []
        await listener.frames(speech[len(speech) // 2 - len(speech) // 2 % FRAME_BYTES :])
        await listener.stop()
        return heard

    [turn] = asyncio.run(run())
    assert word_error_rate(SENTENCE, turn.transcript.text) <= 0.4, turn.transcript.text
    assert turn.seconds > 4


def test_the_browser_reports_when_its_speech_started_and_that_completes_the_stages() -> None:
    async def run() -> VoiceMeta | None:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        channel = VoiceChannel(load_settings({}), send, VoiceEngines(stt=None, tts=BrowserSpeech(), problems=[]))
        now = time.monotonic()
        await channel._heard(Heard(Transcript("we cache answers for an hour", 0.8), now - 0.3, now - 0.1, 2.0))
        [transcript] = [m for m in sent if m["type"] == "transcript"]
        answer_id = str(transcript["id"])
        sink = channel.start_reply(answer_id)
        sink("Why an hour? ")
        channel.browser_audio(answer_id, 120.0)  # the browser: its speech started 120 ms after the first words
        return channel.meta(answer_id, "we cache answers for an hour")

    meta = asyncio.run(run())
    assert meta is not None and meta.heard == "" and meta.confidence == 0.8
    assert meta.stages_ms["transcript"] == pytest.approx(200, abs=5)
    assert meta.stages_ms["first_audio"] == pytest.approx(120, abs=1)
    assert meta.stages_ms["end_to_first_audio"] == pytest.approx(
        meta.stages_ms["transcript"] + meta.stages_ms["first_token"] + 120, abs=1
    )
