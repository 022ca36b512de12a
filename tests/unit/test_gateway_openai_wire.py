"""The gateway's OpenAI wire APIs — chat completions, the Responses API (JSON and streamed), legacy completions,
embeddings — driven by the real openai SDK and by plain HTTP clients (requests, httpx, curl) over loopback, and
what the ledger records for each: the wire API, the client, the model, tokens and price."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx
import openai
import pytest
import requests

from sandboxes.gateway.app import GatewayConfig
from sandboxes.gateway.ledger import summarise
from tests.unit.gateway_server import gateway_on_loopback

CONTEXT = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n"
    "[oncall-1] A page must be acknowledged within five minutes.\n\nQuestion: How long does a deploy take?"
)
ANSWER = "A deploy takes about eight minutes end to end."
ASK = [{"role": "user", "content": CONTEXT}]
SEARCH = {
    "type": "function",
    "name": "search_notes",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
        "required": ["query", "k"],
    },
}


def sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)


def test_chat_json_stream_and_embeddings_are_recorded_with_wire_api_and_client() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, stream=True, stream_options={"include_usage": True}
            )
        )
        client.embeddings.create(model="text-embedding-3-small", input=["a deploy", "a page"])

        async def asynchronous() -> str:
            async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="k", max_retries=0) as async_client:
                answer = await async_client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
            return answer.choices[0].message.content or ""

        async_text = asyncio.run(asynchronous())
    assert reply.choices[0].message.content == ANSWER and async_text == ANSWER
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
    chat, _, embedded, from_async = gateway.calls
    assert [c.wire_api for c in gateway.calls] == ["openai.chat", "openai.chat", "openai.embeddings", "openai.chat"]
    assert [c.client for c in gateway.calls] == ["openai-python"] * 3 + ["openai-python-async"]
    assert chat.user_agent.startswith("OpenAI/Python ") and from_async.user_agent.startswith("AsyncOpenAI/Python ")
    assert (chat.model, chat.input_tokens, chat.output_tokens) == ("gpt-4o-mini", reply.usage.prompt_tokens, 12)
    assert chat.price_usd > 0 and embedded.price_usd > 0 and embedded.messages == ["a deploy", "a page"]


def test_responses_stream_is_the_event_sequence_the_sdk_parses_with_usage() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        with client.responses.stream(model="gpt-4o-mini", instructions="Cite sources.", input=CONTEXT) as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
        events = [event.type for event in client.responses.create(model="gpt-4o-mini", input=CONTEXT, stream=True)]
        whole = client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": CONTEXT}])
    assert len(deltas) > 3 and "".join(deltas) == final.output_text == ANSWER + " [deploys-0]"
    assert final.usage is not None and final.usage.output_tokens == gateway.calls[0].output_tokens > 0
    opening = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    closing = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert events[:4] == opening and events[-4:] == [*closing, "response.completed"]
    assert set(events[4:-4]) == {"response.output_text.delta"}
    assert whole.output_text == ANSWER
    assert [c.wire_api for c in gateway.calls] == ["openai.responses"] * 3
    assert gateway.calls[0].system == "Cite sources." and all(c.price_usd > 0 for c in gateway.calls)


def test_responses_required_function_call_json_and_stream() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        ask = {"model": "gpt-4o-mini", "input": "deploy time?", "tools": [SEARCH], "tool_choice": "required"}
        called = client.responses.create(**ask).output[0]
        with client.responses.stream(**ask) as stream:
            argument_deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
            streamed = stream.get_final_response().output[0]
        plain = client.responses.create(**{**ask, "tool_choice": "auto"})
    for item in (called, streamed):
        assert item.type == "function_call" and item.name == "search_notes"
        assert json.loads(item.arguments) == {"query": "deploy time?", "k": 1}
    assert json.loads("".join(argument_deltas)) == {"query": "deploy time?", "k": 1}
    assert plain.output[0].type == "message"
    assert gateway.calls[0].output == 'search_notes({"query": "deploy time?", "k": 1})'


def test_responses_faults_look_like_the_providers() -> None:
    config = GatewayConfig(time_scale=0, faults=["rate_limit", "truncated_stream", "truncated_stream"], retry_after_s=4)
    with gateway_on_loopback(config) as (base, gateway):
        client = sdk(base)
        with pytest.raises(openai.RateLimitError) as limited:
            client.responses.create(model="gpt-4o-mini", input=CONTEXT)
        with client.responses.stream(model="gpt-4o-mini", input=CONTEXT) as stream:
            cut = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
            with pytest.raises(RuntimeError, match=r"response\.completed"):
                stream.get_final_response()
        events = [event.type for event in client.responses.create(model="gpt-4o-mini", input=CONTEXT, stream=True)]
    assert limited.value.response.headers["retry-after"] == "4"
    assert cut and ANSWER.startswith(cut) and cut != ANSWER
    assert "response.completed" not in events and events[-1] == "response.output_text.delta"
    assert [c.fault for c in gateway.calls] == ["rate_limit", "truncated_stream", "truncated_stream"]


def test_a_slow_stream_fault_paces_a_responses_stream() -> None:
    config = GatewayConfig(time_scale=0, fault_time_scale=0.01, faults=["slow_stream"])
    with gateway_on_loopback(config) as (base, _):
        started = time.perf_counter()
        with sdk(base).responses.stream(model="gpt-4o-mini", input=CONTEXT) as stream:
            deltas = [event for event in stream if event.type == "response.output_text.delta"]
            text = stream.get_final_response().output_text
        elapsed = time.perf_counter() - started
    assert text == ANSWER and elapsed >= len(deltas) * 0.02 * 0.9  # 2 s after each delta, scaled by 0.01


def test_legacy_completions_json_and_stream() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        whole = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=CONTEXT)
        pieces = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt=CONTEXT, stream=True))
    assert whole.choices[0].text == ANSWER and whole.usage is not None and whole.usage.total_tokens > 0
    assert "".join(piece.choices[0].text for piece in pieces if piece.choices) == ANSWER
    assert pieces[-1].choices[0].finish_reason == "stop"
    assert [c.wire_api for c in gateway.calls] == ["openai.completions"] * 2 and gateway.calls[0].price_usd > 0


def test_plain_http_clients_are_told_apart() -> None:
    body = {"model": "gpt-4o-mini", "messages": ASK}
    with gateway_on_loopback() as (base, gateway):
        by_requests = requests.post(f"{base}/v1/chat/completions", json=body, timeout=10).json()
        by_httpx = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=10).json()
        by_curl = subprocess.run(
            [
                "curl",
                "-s",
                "-H",
                "content-type: application/json",
                "-d",
                json.dumps(body),
                f"{base}/v1/chat/completions",
            ],
            capture_output=True,
            check=True,
            timeout=10,
        )
        no_agent = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"user-agent": ""}, timeout=10)
    for reply in (by_requests, by_httpx, json.loads(by_curl.stdout), no_agent.json()):
        assert reply["choices"][0]["message"]["content"] == ANSWER
    assert [c.client for c in gateway.calls] == ["python-requests", "python-httpx", "curl", "unknown"]
    assert gateway.calls[0].user_agent.startswith("python-requests/")
    assert all(c.wire_api == "openai.chat" for c in gateway.calls)


def test_the_ledger_summary_counts_clients_and_wire_apis() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        client.responses.create(model="gpt-4o-mini", input=CONTEXT)
        requests.post(f"{base}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}, timeout=10)
    summary = summarise(gateway.calls)
    assert summary.calls == 4
    assert summary.wire_apis == {"openai.chat": 2, "openai.responses": 1, "openai.embeddings": 1}
    assert summary.clients == {"openai-python": 3, "python-requests": 1}
    assert [(p.client, p.wire_api, p.calls) for p in summary.pairs] == [
        ("openai-python", "openai.chat", 2),
        ("openai-python", "openai.responses", 1),
        ("python-requests", "openai.embeddings", 1),
    ]
