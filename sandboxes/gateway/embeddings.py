"""OpenAI embeddings (and Azure's, by the same handler): deterministic hashing vectors, so retrieval still ranks
related text higher offline. Embedding calls play no faults."""

from __future__ import annotations

from sandboxes.gateway import responder
from sandboxes.gateway.ledger import Exchange
from sandboxes.gateway.replies import send_json


def input_texts(raw: object) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    return [str(text) for text in raw] if isinstance(raw, list) else []


async def embeddings(exchange: Exchange, wire_api: str = "openai.embeddings") -> None:
    texts = input_texts(exchange.body.get("input", []))
    call = exchange.record(
        protocol="openai",
        wire_api=wire_api,
        endpoint="embeddings",
        model=str(exchange.body.get("model", "")),
        system="",
        messages=texts,
        output="",
    )
    data = [{"object": "embedding", "index": i, "embedding": responder.embed(text)} for i, text in enumerate(texts)]
    await send_json(
        exchange.send,
        200,
        {
            "object": "list",
            "model": call.model,
            "data": data,
            "usage": {"prompt_tokens": call.input_tokens, "total_tokens": call.input_tokens},
        },
    )
