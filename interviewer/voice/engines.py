"""Choosing the engines from settings. What cannot run here is reported, and the interview falls back: no speech
recognition means the voice page says why and offers text; no server speech means the browser speaks."""

from __future__ import annotations

from dataclasses import dataclass

from interviewer.voice.stt import OpenAITranscription, PocketSphinx, SpeechToText, VoiceUnavailable
from interviewer.voice.tts import BrowserSpeech, CommandSpeech, OpenAISpeech, TextToSpeech
from llm.select import ProviderKeys


@dataclass
class VoiceEngines:
    stt: SpeechToText | None
    tts: TextToSpeech
    problems: list[str]


def choose(stt: str, tts: str, keys: ProviderKeys) -> VoiceEngines:
    problems: list[str] = []
    recogniser: SpeechToText | None = None
    try:
        if stt == "pocketsphinx":
            recogniser = PocketSphinx()
        elif stt == "openai":
            recogniser = OpenAITranscription(keys.openai_api_key, keys.openai_base_url)
        else:
            problems.append(f"unknown speech-to-text engine {stt!r} (pocketsphinx or openai)")
    except VoiceUnavailable as error:
        problems.append(f"speech recognition is not available: {error}")
    speaker: TextToSpeech = BrowserSpeech()
    try:
        if tts in ("flite", "espeak-ng"):
            speaker = CommandSpeech(tts)
        elif tts == "openai":
            speaker = OpenAISpeech(keys.openai_api_key, keys.openai_base_url)
        elif tts != "browser":
            problems.append(f"unknown text-to-speech engine {tts!r}; the browser speaks instead")
    except VoiceUnavailable as error:
        problems.append(f"{error}; the browser speaks instead")
    return VoiceEngines(recogniser, speaker, problems)
