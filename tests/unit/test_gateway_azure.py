"""Azure OpenAI's layout on the gateway, driven by the real `openai.AzureOpenAI` — configured by arguments, and by
the environment variables alone — and by a plain OpenAI client on Azure's v1 layout. The deployment name is what
the ledger records as the model."""

from __future__ import annotations

import openai
import pytest

from sandboxes.gateway.app import GatewayConfig
from sandboxes.gateway.clients import AZURE_API_VERSION, provider_env
from tests.unit.gateway_server import gateway_on_loopback

CONTEXT = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)
ANSWER = "A deploy takes about eight minutes end to end."
ASK = [{"role": "user", "content": CONTEXT}]


def test_azure_client_by_arguments_chat_stream_embeddings_and_responses() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = openai.AzureOpenAI(azure_endpoint=base, api_version=AZURE_API_VERSION, api_key="az", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        chunks = list(client.chat.completions.create(model="prod-chat", messages=ASK, stream=True))
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data
        response = client.responses.create(model="gpt-4o-mini", input=CONTEXT)
    assert reply.choices[0].message.content == ANSWER and response.output_text == ANSWER
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert len(vectors) == 2 and len(vectors[0].embedding) > 0
    assert [c.wire_api for c in gateway.calls] == ["azure.chat", "azure.chat", "azure.embeddings", "azure.responses"]
    assert [c.model for c in gateway.calls] == ["gpt-4o-mini", "prod-chat", "text-embedding-3-small", "gpt-4o-mini"]
    assert {c.client for c in gateway.calls} == {"azure-openai-python"}
    assert gateway.calls[0].price_usd > 0 and gateway.calls[0].input_tokens == reply.usage.prompt_tokens


def test_azure_client_from_environment_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with gateway_on_loopback() as (base, gateway):
        for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
            monkeypatch.setenv(name, provider_env(base)[name])
        monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)
        client = openai.AzureOpenAI(max_retries=0)
        reply = client.chat.completions.create(model="my-deployment", messages=ASK)
    assert reply.choices[0].message.content == ANSWER
    [call] = gateway.calls
    assert (call.wire_api, call.model, call.client) == ("azure.chat", "my-deployment", "azure-openai-python")
    assert call.price_usd > 0  # a deployment name genai-prices does not know keeps the fallback price


def test_the_v1_layout_that_plain_openai_clients_use_against_azure() -> None:
    with gateway_on_loopback() as (base, gateway):
        client = openai.OpenAI(base_url=base + "/openai/v1/", api_key="az", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        response = client.responses.create(model="gpt-4o-mini", input=CONTEXT)
    assert reply.choices[0].message.content == ANSWER == response.output_text
    assert [(c.wire_api, c.client) for c in gateway.calls] == [
        ("azure.chat", "openai-python"),
        ("azure.responses", "openai-python"),
    ]


def test_azure_faults_raise_the_sdks_errors() -> None:
    config = GatewayConfig(time_scale=0, faults=["rate_limit", "server_error", "truncated_stream"], retry_after_s=5)
    with gateway_on_loopback(config) as (base, gateway):
        client = openai.AzureOpenAI(azure_endpoint=base, api_version=AZURE_API_VERSION, api_key="az", max_retries=0)
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model="prod-chat", messages=ASK)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="prod-chat", messages=ASK)
        chunks = list(client.chat.completions.create(model="prod-chat", messages=ASK, stream=True))
    assert limited.value.response.headers["retry-after"] == "5"
    assert chunks and all(c.choices[0].finish_reason is None for c in chunks if c.choices)  # cut before the end
    assert [c.fault for c in gateway.calls] == ["rate_limit", "server_error", "truncated_stream"]
    assert all(c.wire_api == "azure.chat" for c in gateway.calls)
