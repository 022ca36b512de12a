from pathlib import Path

from app.metrics import LatencyRecorder
from app.retrieval import Chunk, chunk_corpus, cosine, top_k

CORPUS = Path(__file__).parents[1] / "corpus"


def test_chunks_have_stable_ids() -> None:
    chunks = chunk_corpus(CORPUS)
    assert chunks[0].chunk_id == "caching-0"
    assert len({chunk.chunk_id for chunk in chunks}) == len(chunks)


def test_cosine_prefers_aligned_vectors() -> None:
    assert cosine([1, 0], [1, 0]) > cosine([1, 0], [0, 1])


def test_top_k_orders_by_similarity() -> None:
    near, far = Chunk("a-0", "a.md", "near"), Chunk("b-0", "b.md", "far")
    assert top_k([1.0, 0.0], [(far, [0.0, 1.0]), (near, [1.0, 0.1])], k=1) == [near]


def test_latency_percentiles() -> None:
    recorder = LatencyRecorder()
    for value in range(1, 101):
        recorder.observe(value / 100)
    summary = recorder.summary()
    assert summary["p50"] < summary["p95"] < summary["p99"] <= 1.0
