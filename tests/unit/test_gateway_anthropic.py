"""Anthropic messages on the gateway, driven by the real anthropic SDK: JSON, `messages.stream(...)`, required
tool use (a tool_use block, streamed as input_json_delta events), and faults as the SDK sees them."""

from __future__ import annotations

import asyncio

import anthropic
import pytest

from sandboxes.gateway.app import GatewayConfig
from tests.unit.gateway_server import gateway_on_loopback

MODEL = "claude-3-5-haiku-latest"
CONTEXT = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)
ANSWER = "A deploy takes about eight minutes end to end."
ASK = [{"role": "user", "content": CONTEXT}]
LOOKUP = {
    "name": "lookup",
    "description": "Look the question up in the notes.",
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
        "required": ["query", "k"],
    },
}


def sdk(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)


def test_messages_json_and_stream_are_recorded() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        message = client.messages.create(model=MODEL, max_tokens=100, system="Cite sources.", messages=ASK)
        with client.messages.stream(model=MODEL, max_tokens=100, messages=ASK) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()

        async def asynchronous() -> str:
            async with anthropic.AsyncAnthropic(base_url=base, api_key="k", max_retries=0) as async_client:
                reply = await async_client.messages.create(model=MODEL, max_tokens=100, messages=ASK)
            return reply.content[0].text

        async_text = asyncio.run(asynchronous())
    assert message.content[0].type == "text" and message.content[0].text == ANSWER + " [deploys-0]"
    assert streamed == ANSWER == async_text and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == gateway.calls[1].output_tokens > 0
    assert [c.wire_api for c in gateway.calls] == ["anthropic.messages"] * 3
    assert [c.client for c in gateway.calls] == ["anthropic-python"] * 2 + ["anthropic-python-async"]
    assert gateway.calls[0].system == "Cite sources." and gateway.calls[0].price_usd > 0
    assert gateway.calls[0].input_tokens == message.usage.input_tokens


def test_required_tool_use_json_and_stream() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = sdk(base)
        ask = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "deploy time?"}]}
        used = client.messages.create(**ask, tools=[LOOKUP], tool_choice={"type": "any"})
        with client.messages.stream(**ask, tools=[LOOKUP], tool_choice={"type": "tool", "name": "lookup"}) as stream:
            partial = [
                event.delta.partial_json
                for event in stream
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
            ]
            final = stream.get_final_message()
        plain = client.messages.create(**ask, tools=[LOOKUP], tool_choice={"type": "auto"})
    for message in (used, final):
        block = message.content[0]
        assert message.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "lookup"
        assert block.input == {"query": "deploy time?", "k": 1} and block.id.startswith("toolu_")
    assert len(partial) == 2 and all(partial)  # the arguments arrive in pieces the SDK has to join
    assert plain.content[0].type == "text" and plain.stop_reason == "end_turn"
    assert gateway.calls[0].output == 'lookup({"query": "deploy time?", "k": 1})' and gateway.calls[0].price_usd > 0


def test_a_tool_result_is_read_as_the_next_turns_context() -> None:
    with gateway_on_loopback() as (base, gateway):
        sdk(base).messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[
                {"role": "user", "content": "How long does a deploy take?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": CONTEXT}],
                },
            ],
        )
    assert gateway.calls[0].messages[-1] == CONTEXT and gateway.calls[0].output == ANSWER


def test_faults_on_messages_look_like_anthropics() -> None:
    config = GatewayConfig(time_scale=0, faults=["rate_limit", "server_error", "truncated_stream"], retry_after_s=6)
    with gateway_on_loopback(config) as (base, gateway):
        client = sdk(base)
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(model=MODEL, max_tokens=100, messages=ASK)
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model=MODEL, max_tokens=100, messages=ASK)
        with client.messages.stream(model=MODEL, max_tokens=100, messages=ASK) as stream:
            cut = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert limited.value.response.headers["retry-after"] == "6"
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert cut and ANSWER.startswith(cut) and cut != ANSWER
    assert final.stop_reason is None  # no message_delta came: the stream ended before the model finished
    assert [c.fault for c in gateway.calls] == ["rate_limit", "server_error", "truncated_stream"]
