"""Chunking and retrieval: paragraph chunks, ranked by embedding similarity from the provider."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    source: str
    text: str


def chunk_corpus(folder: Path, max_chars: int = 600) -> list[Chunk]:
    """Split every Markdown file into paragraph chunks; ids are stable (file stem + index) so citations survive
    re-indexing. A heading on its own is not a chunk: it answers nothing and would only crowd the context."""
    chunks: list[Chunk] = []
    for path in sorted(folder.glob("*.md")):
        parts = [part.strip() for part in path.read_text(encoding="utf-8").split("\n\n")]
        paragraphs = [part for part in parts if part and not (part.startswith("#") and "\n" not in part)]
        for index, paragraph in enumerate(paragraphs):
            chunks.append(Chunk(chunk_id=f"{path.stem}-{index}", source=path.name, text=paragraph[:max_chars]))
    return chunks


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def top_k(query_vector: list[float], index: list[tuple[Chunk, list[float]]], k: int = 4) -> list[Chunk]:
    ranked = sorted(index, key=lambda item: cosine(query_vector, item[1]), reverse=True)
    return [chunk for chunk, _ in ranked[:k]]
