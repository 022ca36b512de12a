"""The real provider path: the openai and anthropic SDKs, and pydantic-ai's providers on them, against a local
server speaking their protocols. Tokens and prices are recorded, 429/500 fail over, and a ceiling trips."""

from __future__ import annotations

import math

import anthropic
import openai
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent

from interviewer.voice.stt import OpenAITranscription
from interviewer.voice.tts import OpenAISpeech
from llm.budget import BudgetBook
from llm.errors import BudgetExceeded
from llm.metered import MeteredCaller
from llm.pricing import price_usd
from llm.select import ProviderKeys, Router, build_chain
from tests.providers.fake_server import FakeReply, failing_script, serve_fake_provider

# Every model here talks to the local fake provider on 127.0.0.1, so this module opts back in to model requests.
pytestmark = pytest.mark.usefixtures("allow_model_requests")


def test_openai_sdk_json_stream_and_tools() -> None:
    with serve_fake_provider() as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="test", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "echo: hi" and reply.usage.prompt_tokens == 120
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "echo: a b"
        assert chunks[-1].usage.completion_tokens == 30
        tool = {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            },
        }
        server.app.script = lambda protocol, body: FakeReply()
        called = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], tools=[tool]
        )
        assert called.choices[0].message.tool_calls[0].function.name == "lookup"


def test_anthropic_sdk_json_stream_and_tools() -> None:
    with serve_fake_provider() as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test", max_retries=0)
        message = client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == "echo: hi" and message.usage.output_tokens == 30
        with client.messages.stream(
            model="claude-3-5-haiku-latest", max_tokens=50, messages=[{"role": "user", "content": "c d"}]
        ) as stream:
            assert "".join(stream.text_stream).strip() == "echo: c d"
        server.app.script = lambda protocol, body: FakeReply()
        used = client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=50,
            messages=[{"role": "user", "content": "x"}],
            tools=[
                {
                    "name": "lookup",
                    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
                }
            ],
        )
        assert used.content[0].type == "tool_use" and used.content[0].input == {"q": "x"}


def test_rate_limit_carries_retry_after() -> None:
    with serve_fake_provider(failing_script(429, retry_after=7)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="test", max_retries=0)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.response.headers["retry-after"] == "7"


class Verdict(BaseModel):
    rating: str
    quote: str


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_pydantic_ai_structured_output_priced_and_recorded(provider: str) -> None:
    with serve_fake_provider(lambda protocol, body: FakeReply()) as server:  # no text: it calls the output tool
        keys = ProviderKeys(
            openai_api_key="k",
            openai_base_url=server.base_url + "/v1",
            anthropic_api_key="k",
            anthropic_base_url=server.base_url,
        )
        model = "openai:gpt-4o-mini" if provider == "openai" else "anthropic:claude-3-5-haiku-latest"
        book = BudgetBook()
        caller = MeteredCaller(Router(build_chain(model, lambda: None, keys)), book)  # type: ignore[arg-type,return-value]
        agent: Agent[None, Verdict] = Agent(output_type=Verdict)

        result = await caller.run("judge_leaf", ["grading:1"], 100, lambda m: agent.run("rate this", model=m))
        assert isinstance(result.output, Verdict)
        [entry] = book.ledger
        assert (entry.input_tokens, entry.output_tokens) == (120, 30)
        name = model.split(":", 1)[1]
        assert entry.cost_usd == pytest.approx(price_usd(provider, name, 120, 30)) and entry.cost_usd > 0


async def test_fallback_on_429_and_500_then_cooldown_skips_the_limited_provider() -> None:
    with (
        serve_fake_provider(failing_script(429, retry_after=30)) as limited,
        serve_fake_provider(failing_script(500)) as broken,
        serve_fake_provider() as good,
    ):
        chain = build_chain(
            f"openai-compatible:m1@{limited.base_url}/v1,openai-compatible:m2@{broken.base_url}/v1,"
            f"openai-compatible:m3@{good.base_url}/v1",
            lambda: None,
            ProviderKeys(),
        )  # type: ignore[arg-type,return-value]
        router = Router(chain)
        agent: Agent[None, str] = Agent()

        result, spec = await router.run(lambda m: agent.run("hello", model=m))
        assert result.output == "echo: hello" and spec.model == "m3"
        await router.run(lambda m: agent.run("hello", model=m))
        assert (len(limited.requests), len(broken.requests), len(good.requests)) == (1, 2, 2)


async def test_ceiling_trips_before_the_provider_is_called() -> None:
    with serve_fake_provider() as server:
        keys = ProviderKeys(openai_api_key="k", openai_base_url=server.base_url + "/v1")
        book = BudgetBook()
        caller = MeteredCaller(Router(build_chain("openai:gpt-4o", lambda: None, keys)), book)  # type: ignore[arg-type,return-value]
        real_cost = price_usd("openai", "gpt-4o", 120, 30)  # what the fake provider's usage costs per call
        book.open_account("interview:1", caller.worst_case_usd(100) + real_cost / 2)
        agent: Agent[None, str] = Agent()

        await caller.run("interview_turn", ["interview:1"], 100, lambda m: agent.run("q", model=m))
        with pytest.raises(BudgetExceeded):
            await caller.run("interview_turn", ["interview:1"], 100, lambda m: agent.run("q", model=m))
        assert len(server.requests) == 1 and book.metrics["alerts_total"] == 1


def test_openai_transcription_and_speech_adapters_speak_the_real_protocol() -> None:
    """The voice adapters through the real OpenAI SDK against a local server speaking its audio endpoints: the
    turn's audio goes up as a WAV upload with verbose JSON asked for (confidence from the segments' log-probability),
    and speech comes back as raw 24 kHz PCM."""
    with serve_fake_provider() as server:
        stt = OpenAITranscription("k", server.base_url + "/v1")
        recognizer = stt.open()
        assert recognizer.feed(b"\0\1" * 16000) is None  # buffered until the turn ends
        transcript = recognizer.finish()
        assert transcript.text == "we check the cost of every request"
        assert transcript.confidence == pytest.approx(math.exp(-0.105), abs=0.001)
        [upload] = [r for r in server.requests if r["path"].endswith("/audio/transcriptions")]
        assert upload["body"] == {
            "model": "whisper-1",
            "audio_bytes": 44 + 32000,
            "riff": True,
            "format": "verbose_json",
        }

        speech = OpenAISpeech("k", server.base_url + "/v1").speak("Why that chunk size?")
        assert speech is not None and speech.sample_rate == 24_000
        assert len(speech.pcm) == 24_000 * 2 * 50 * len("Why that chunk size?") // 1000
        [spoken] = [r for r in server.requests if r["path"].endswith("/audio/speech")]
        assert spoken["body"]["input"] == "Why that chunk size?" and spoken["body"]["response_format"] == "pcm"
