"""HTTP API: POST /ask answers a question from the notes, with citations validated against what was retrieved."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException
from openai import OpenAI
from pydantic import BaseModel, StringConstraints
from tenacity import retry, stop_after_attempt, wait_exponential

from app.costs import Budget, BudgetExceeded, request_cost
from app.guards import leaks_system_prompt, looks_like_injection
from app.metrics import LatencyRecorder
from app.retrieval import Chunk, chunk_corpus, top_k

log = logging.getLogger("rag")
MODEL = os.environ.get("RAG_MODEL", "gpt-4o-mini")
FALLBACK_MODEL = "gpt-4o"
SYSTEM_PROMPT = (
    "You answer questions about the team's engineering notes. Use only the numbered context. "
    "Cite every sentence with the chunk id in square brackets, like [notes-3]. "
    "If the context does not contain the answer, say you do not know."
)

client = OpenAI(timeout=float(os.environ.get("RAG_LLM_TIMEOUT_S", "20")), max_retries=0)
budget = Budget(float(os.environ.get("RAG_BUDGET_USD", "5.0")))
latency = LatencyRecorder()
chunks = chunk_corpus(Path(os.environ.get("RAG_CORPUS", "corpus")))
app = FastAPI(title="rag-assistant")
_index: list[tuple[Chunk, list[float]]] = []


MAX_QUESTION_CHARS = 2000


class Question(BaseModel):
    # Refused with a 422 before any model call: an empty question wastes a call, a huge one the budget.
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]


class Citation(BaseModel):
    chunk_id: str
    source: str


class Answer(BaseModel):
    answer: str
    citations: list[Citation]
    cost_usd: float


@retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.5, max=4), reraise=True)
def _complete(model: str, messages: list[dict[str, str]]):
    return client.chat.completions.create(model=model, messages=messages, temperature=0)


def _embed(texts: list[str]) -> list[list[float]]:
    response = client.embeddings.create(model="text-embedding-3-small", input=texts)
    return [item.embedding for item in response.data]


def _ensure_index() -> None:
    if not _index and chunks:
        _index.extend(zip(chunks, _embed([chunk.text for chunk in chunks])))


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/metrics/latency")
def latency_summary() -> dict[str, float]:
    return latency.summary()


@app.post("/ask", response_model=Answer)
def ask(body: Question) -> Answer:
    started = time.perf_counter()
    if looks_like_injection(body.question):
        raise HTTPException(status_code=400, detail="question refused by the input guard")
    try:
        budget.check()
    except BudgetExceeded as error:
        raise HTTPException(status_code=402, detail=str(error)) from error
    _ensure_index()
    retrieved = top_k(_embed([body.question])[0], _index)
    context = "\n".join(f"[{chunk.chunk_id}] {chunk.text}" for chunk in retrieved)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {body.question}"},
    ]
    model = MODEL
    try:
        completion = _complete(model, messages)
    except Exception:  # the primary model failed after retries: fall back once to the other model
        log.warning("primary model failed; falling back to %s", FALLBACK_MODEL)
        model = FALLBACK_MODEL
        completion = _complete(model, messages)
    text = completion.choices[0].message.content or ""
    if leaks_system_prompt(text, SYSTEM_PROMPT):
        raise HTTPException(status_code=400, detail="answer withheld by the output guard")
    by_id = {chunk.chunk_id: chunk for chunk in retrieved}
    cited = [by_id[label] for label in dict.fromkeys(re.findall(r"\[([\w-]+)\]", text)) if label in by_id]
    usage = completion.usage
    cost = request_cost(model, usage.prompt_tokens, usage.completion_tokens) if usage else 0.0
    budget.record(cost)
    latency.observe(time.perf_counter() - started)
    if latency.over_target():
        log.warning("p95 latency is over its target: %s", latency.summary())
    return Answer(
        answer=text,
        citations=[Citation(chunk_id=chunk.chunk_id, source=chunk.source) for chunk in cited],
        cost_usd=cost,
    )
