"""Ollama's native API on the gateway, driven by the real `ollama` package — `ollama.Client(host=...)` and a client
that finds the gateway through OLLAMA_HOST alone — and faults as that client sees them."""

from __future__ import annotations

import json

import ollama
import pytest

from sandboxes.gateway.app import GatewayConfig
from tests.unit.gateway_server import gateway_on_loopback

MODEL = "llama3.2"
CONTEXT = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)
ANSWER = "A deploy takes about eight minutes end to end."
ASK = [{"role": "system", "content": "Cite sources."}, {"role": "user", "content": CONTEXT}]


def test_chat_streamed_by_default_and_whole_and_generate() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = ollama.Client(host=base)
        parts = list(client.chat(model=MODEL, messages=ASK, stream=True))
        whole = client.chat(model=MODEL, messages=ASK)
        generated = client.generate(model=MODEL, prompt=CONTEXT)
        generated_parts = list(client.generate(model=MODEL, prompt=CONTEXT, stream=True))
    cited = ANSWER + " [deploys-0]"
    assert len(parts) > 3 and "".join(p.message.content or "" for p in parts) == cited
    assert parts[-1].done and parts[-1].eval_count == gateway.calls[0].output_tokens > 0
    assert not any(p.done for p in parts[:-1])
    assert whole.message.content == cited and whole.done_reason == "stop"
    assert whole.prompt_eval_count == gateway.calls[1].input_tokens
    assert generated.response == ANSWER and "".join(p.response or "" for p in generated_parts) == ANSWER
    wire = [(c.wire_api, c.endpoint, c.model, c.client) for c in gateway.calls]
    assert (
        wire
        == [("ollama.chat", "chat", MODEL, "ollama-python")] * 2
        + [("ollama.generate", "generate", MODEL, "ollama-python")] * 2
    )
    assert gateway.calls[0].system == "Cite sources." and gateway.calls[0].user_agent.startswith("ollama-python/")
    assert all(c.price_usd > 0 for c in gateway.calls)  # local models are unknown to genai-prices: fallback price


def test_embeddings_both_generations_and_model_management() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = ollama.Client(host=base)
        embedded = client.embed(model="nomic-embed-text", input=["deploy takes eight minutes", "pancake syrup"])
        single = client.embeddings(model="nomic-embed-text", prompt="how long does a deploy take")
        pulled = client.pull(MODEL)
        listed = [model.model for model in client.list().models]
        shown = client.show(MODEL)
        version = client._request_raw("GET", "/api/version").json()  # no public method; apps call it by HTTP

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    related, unrelated = embedded.embeddings
    assert cosine(list(single.embedding), list(related)) > cosine(list(single.embedding), list(unrelated))
    assert pulled.status == "success" and "nomic-embed-text" in listed and shown.details is not None
    assert version["version"]
    assert [(c.wire_api, c.endpoint) for c in gateway.calls] == [
        ("ollama.embed", "embed"),
        ("ollama.embeddings", "embeddings"),
    ]  # listing, showing and pulling ask no model: not in the ledger


def test_a_client_configured_by_ollama_host_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    with gateway_on_loopback() as (base, gateway):
        monkeypatch.setenv("OLLAMA_HOST", base)
        reply = ollama.Client().chat(model=MODEL, messages=[{"role": "user", "content": CONTEXT}])
    assert reply.message.content == ANSWER and gateway.calls[0].wire_api == "ollama.chat"


def test_a_json_format_gets_json_back() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    with gateway_on_loopback() as (base, _):
        client = ollama.Client(host=base)
        loose = client.chat(model=MODEL, messages=[{"role": "user", "content": CONTEXT}], format="json")
        shaped = client.chat(model=MODEL, messages=[{"role": "user", "content": CONTEXT}], format=schema)
    assert json.loads(loose.message.content or "") == {"response": ANSWER}
    assert json.loads(shaped.message.content or "") == {"answer": ANSWER}


def test_faults_as_the_ollama_client_sees_them() -> None:
    faults = ["rate_limit", "server_error", "truncated_stream", "malformed_json"]
    with gateway_on_loopback(GatewayConfig(time_scale=0, faults=list(faults))) as (base, gateway):
        client = ollama.Client(host=base)
        ask = {"model": MODEL, "messages": [{"role": "user", "content": CONTEXT}]}
        with pytest.raises(ollama.ResponseError) as limited:
            client.chat(**ask)
        with pytest.raises(ollama.ResponseError) as broken:
            list(client.chat(**ask, stream=True))
        cut = list(client.chat(**ask, stream=True))
        with pytest.raises(json.JSONDecodeError):
            client.chat(**ask)
    assert limited.value.status_code == 429 and "rate limited" in limited.value.error
    assert broken.value.status_code == 500
    text = "".join(part.message.content or "" for part in cut)
    assert text and ANSWER.startswith(text) and text != ANSWER and not any(part.done for part in cut)
    assert [c.fault for c in gateway.calls] == faults
