"""What a sandboxed app is told about its providers (`provider_env`): every common client, configured by those
variables alone, reaches the gateway; and how the gateway names the client behind a request."""

from __future__ import annotations

import anthropic
import ollama
import openai
import pytest

from sandboxes.gateway.clients import SERVED_PROVIDER_HOSTS, UNSERVED_PROVIDERS, identify_client, provider_env
from tests.unit.gateway_server import gateway_on_loopback

CONTEXT = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)
ANSWER = "A deploy takes about eight minutes end to end."
ASK = [{"role": "user", "content": CONTEXT}]


def test_every_client_configured_by_the_environment_alone_reaches_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    with gateway_on_loopback() as (base, gateway):
        for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in provider_env(base).items():
            monkeypatch.setenv(name, value)
        answers = [
            openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=ASK),
            openai.AzureOpenAI(max_retries=0).chat.completions.create(model="prod-chat", messages=ASK),
        ]
        texts = [answer.choices[0].message.content for answer in answers]
        message = anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=100, messages=ASK
        )
        texts.append(message.content[0].text if message.content[0].type == "text" else "")
        texts.append(ollama.Client().chat(model="llama3.2", messages=ASK).message.content)
    assert texts == [ANSWER] * 4
    assert [c.wire_api for c in gateway.calls] == ["openai.chat", "azure.chat", "anthropic.messages", "ollama.chat"]


def test_the_environment_points_only_at_the_gateway_with_keys_that_open_nothing() -> None:
    env = provider_env("http://127.0.0.1:18080/")
    urls = {name: value for name, value in env.items() if value.startswith("http")}
    assert all(value.startswith("http://127.0.0.1:18080") for value in urls.values())
    assert env["OPENAI_BASE_URL"] == env["OPENAI_API_BASE"] == "http://127.0.0.1:18080/v1"
    assert env["ANTHROPIC_BASE_URL"] == env["OLLAMA_HOST"] == "http://127.0.0.1:18080"
    assert {"ANTHROPIC_API_URL", "AZURE_API_BASE", "OLLAMA_API_BASE"} <= set(urls)  # LangChain's and LiteLLM's names
    keys = [value for name, value in env.items() if name.endswith("_KEY")]
    assert keys and all("viva-sandbox" in key for key in keys)


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ({"user-agent": "OpenAI/Python 2.8.1", "x-stainless-async": "false"}, "openai-python"),
        ({"user-agent": "OpenAI/Python 2.8.1", "x-stainless-async": "async:asyncio"}, "openai-python-async"),
        ({"user-agent": "AsyncAzureOpenAI/Python 2.8.1"}, "azure-openai-python-async"),
        ({"user-agent": "AsyncAnthropic/Python 0.72.0"}, "anthropic-python-async"),
        ({"user-agent": "OpenAI/JS 5.10.1", "x-stainless-lang": "js"}, "openai-node"),
        ({"user-agent": "my-app/1.0", "x-stainless-lang": "python"}, "stainless-python"),
        ({"user-agent": "litellm/1.51.0"}, "litellm"),
        ({"user-agent": "llama_index/0.12"}, "llama-index"),
        ({"user-agent": "ollama-js/0.5.0 (x64 linux Node.js/v20.11.0)"}, "ollama-js"),
        ({"user-agent": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"}, "node"),
        ({"user-agent": "python-urllib3/2.2.1"}, "python-urllib"),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}, "other"),
        ({}, "unknown"),
    ],
)
def test_clients_are_named_from_their_headers(headers: dict[str, str], client: str) -> None:
    assert identify_client(headers)[0] == client


def test_a_long_user_agent_is_kept_cut() -> None:
    name, raw = identify_client({"user-agent": "curl/8.5.0 " + "x" * 500})
    assert name == "curl" and len(raw) == 200 and raw.startswith("curl/8.5.0")


def test_no_provider_is_both_served_and_unserved() -> None:
    unserved = {host for provider in UNSERVED_PROVIDERS for host in provider.hosts}
    assert not unserved & set(SERVED_PROVIDER_HOSTS)
    assert all(provider.env_vars for provider in UNSERVED_PROVIDERS)
    served_names = set(provider_env("http://x"))
    assert not served_names & {name for provider in UNSERVED_PROVIDERS for name in provider.env_vars}
