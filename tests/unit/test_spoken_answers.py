"""Spoken answers are rated on their substance like typed ones: each answer of the simulated candidates' bank is
spoken by flite and heard by pocketsphinx (a real transcript, with its misheard words, no punctuation and numbers in
words), and the transcript's rating is within one level of the typed answer's. (Over all 42 answers of the bank, on
2026-12-07: 35 at the same level, 7 one level apart, none two.)"""

from __future__ import annotations

import subprocess

import pytest

from interviewer.signals import evidence_points, measure, rating_from_points
from interviewer.voice.audio import FRAME_BYTES, SAMPLE_RATE, from_wav
from interviewer.voice.stt import PocketSphinx
from tests.fixtures.candidates import BANK, LEVELS
from tests.unit.test_voice import word_error_rate

ANSWERS = [(subject, level, texts[0]) for subject, levels in BANK.items() for level, texts in levels.items()]
"""One answer per subject and level: 21 answers, low, medium and high on every dimension."""


def rating(text: str) -> str:
    return rating_from_points(evidence_points(measure(text)))


@pytest.fixture(scope="module")
def heard(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, float]]:
    """(typed, transcript, confidence) for every answer, fed to the recogniser in 100 ms packets as a browser sends."""
    out = tmp_path_factory.mktemp("speech") / "answer.wav"
    recogniser = PocketSphinx()
    results = []
    for _, _, text in ANSWERS:
        subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(out)], check=True)
        pcm, rate = from_wav(out.read_bytes())
        assert rate == SAMPLE_RATE
        stream = recogniser.open()
        for start in range(0, len(pcm), FRAME_BYTES * 5):
            stream.feed(pcm[start : start + FRAME_BYTES * 5])
        transcript = stream.finish()
        results.append((text, transcript.text, transcript.confidence))
    return results


def test_the_transcripts_are_real_ones(heard: list[tuple[str, str, float]]) -> None:
    """Not the typed text again: words are misheard, digits become words, punctuation is gone."""
    rates = [word_error_rate(typed.replace(",", "").replace(".", ""), said) for typed, said, _ in heard]
    assert sum(rates) / len(rates) > 0.1
    assert all(0 < confidence <= 1 for _, _, confidence in heard)
    assert not any(character.isdigit() for _, said, _ in heard for character in said)


def test_a_spoken_answer_is_rated_within_one_level_of_the_typed_one(heard: list[tuple[str, str, float]]) -> None:
    gaps = [abs(LEVELS.index(rating(typed)) - LEVELS.index(rating(said))) for typed, said, _ in heard]
    assert max(gaps) <= 1, [
        (typed[:40], said[:60]) for (typed, said, _), gap in zip(heard, gaps, strict=True) if gap > 1
    ]
    assert gaps.count(0) / len(gaps) >= 0.7, gaps


def test_numbers_said_in_words_are_numbers() -> None:
    typed = "We retrieve the top 4 chunks, 600 characters each; it costs 40 ms and misses 6% of answers."
    said = (
        "we retrieve the top four chunks six hundred characters each it costs forty milliseconds and misses six percent"
    )
    assert measure(said).numbers == measure(typed).numbers == 4
    assert measure("the one that failed was someone else's").numbers == 0
