"""16 kHz mono 16-bit little-endian PCM — what the browser's AudioWorklet sends — and small helpers around it."""

from __future__ import annotations

import array
import io
import math
import sys
import wave

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * BYTES_PER_SAMPLE
"""One 20 ms frame: 640 bytes."""


def samples(pcm: bytes) -> array.array[int]:
    values = array.array("h")
    values.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder != "little":
        values.byteswap()
    return values


def level_dbfs(pcm: bytes) -> float:
    """Root-mean-square level in dB below full scale (-96 for silence)."""
    values = samples(pcm)
    if not values:
        return -96.0
    mean_square = sum(v * v for v in values) / len(values)
    return max(-96.0, 10 * math.log10(mean_square / (32768.0**2))) if mean_square else -96.0


def seconds(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    return len(pcm) / (sample_rate * BYTES_PER_SAMPLE)


def to_wav(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(BYTES_PER_SAMPLE)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def from_wav(data: bytes) -> tuple[bytes, int]:
    """PCM and sample rate of a mono 16-bit WAV; ValueError for anything else."""
    with wave.open(io.BytesIO(data), "rb") as source:
        if source.getnchannels() != 1 or source.getsampwidth() != BYTES_PER_SAMPLE:
            raise ValueError("expected mono 16-bit audio")
        return source.readframes(source.getnframes()), source.getframerate()
