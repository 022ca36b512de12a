"""The call ledger every wire API writes to: one `GatewayCall` per model call, priced, timed and tagged with the
wire API and the client that made it; and the request in flight (`Exchange`) that a call is recorded against."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from llm.pricing import price_usd
from sandboxes.gateway import responder
from sandboxes.gateway.config import GatewayConfig

Protocol = Literal["openai", "anthropic", "ollama"]
Send = Callable[[dict[str, Any]], Any]
Receive = Callable[[], Any]


class GatewayCall(msgspec.Struct):
    protocol: Protocol
    endpoint: str
    """What was asked, in the wire API's own words: chat.completions, completions, responses, embeddings, messages,
    or Ollama's chat, generate, embed. `GENERATION_ENDPOINTS` are the ones that ask a model for text."""
    model: str
    system: str
    messages: list[str]
    input_tokens: int
    output_tokens: int
    modelled_latency_s: float
    price_usd: float
    fault: str = ""
    output: str = ""
    started_at: float = 0.0
    """time.monotonic() when the HTTP request reached the gateway; `ended_at` when the reply was sent. The grader
    attributes calls to the app's requests by these spans."""
    ended_at: float = 0.0
    wire_api: str = ""
    """Which provider API the call spoke: openai.chat, openai.completions, openai.responses, openai.embeddings,
    azure.chat, azure.responses, azure.embeddings, anthropic.messages, ollama.chat, ollama.generate, ollama.embed."""
    client: str = ""
    """The client library that sent it, normalised (openai-python, anthropic-python-async, ollama-python, litellm,
    python-requests, curl, unknown...): see `sandboxes.gateway.clients.identify_client`."""
    user_agent: str = ""
    """The raw User-Agent header, cut to 200 characters."""


GENERATION_ENDPOINTS = ("chat.completions", "completions", "responses", "messages", "chat", "generate")


@dataclass
class Exchange:
    """One HTTP request in flight: what came in, where the reply goes, and the calls recorded while answering it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    receive: Receive
    send: Send
    config: GatewayConfig
    ledger: list[GatewayCall]
    """The gateway's whole ledger, shared by every request."""
    client: str = "unknown"
    user_agent: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    recorded: list[GatewayCall] = field(default_factory=list)
    """The calls made while answering this request: their `ended_at` is set when the reply has been sent."""

    def remember(self, call: GatewayCall) -> GatewayCall:
        call.started_at = self.started
        call.client, call.user_agent = self.client, self.user_agent
        self.ledger.append(call)
        self.recorded.append(call)
        return call

    def record(
        self,
        *,
        protocol: Protocol,
        wire_api: str,
        endpoint: str,
        model: str,
        system: str,
        messages: list[str],
        output: str,
        fault: str = "",
    ) -> GatewayCall:
        """Record a call the offline model answered: tokens estimated from the text, latency modelled, priced."""
        input_tokens = responder.count_tokens(system + " ".join(messages))
        output_tokens = responder.count_tokens(output) if output else 0
        latency = self.config.time_to_first_token_s + output_tokens / max(self.config.tokens_per_second, 1e-6)
        price = price_usd(protocol, model, input_tokens, output_tokens)
        call = GatewayCall(
            protocol, endpoint, model, system, messages, input_tokens, output_tokens, latency, price, fault, output
        )
        call.wire_api = wire_api
        return self.remember(call)

    def finish(self) -> None:
        ended = time.monotonic()
        for call in self.recorded:
            call.ended_at = ended


class ClientUse(msgspec.Struct, frozen=True):
    client: str
    wire_api: str
    calls: int


class LedgerSummary(msgspec.Struct, frozen=True):
    """Which clients and wire APIs an app used, for the report: counts of calls."""

    calls: int
    wire_apis: dict[str, int]
    clients: dict[str, int]
    pairs: list[ClientUse]
    """Each (client, wire API) seen, most used first."""


def summarise(calls: Iterable[GatewayCall]) -> LedgerSummary:
    every = list(calls)
    pairs = Counter((call.client or "unknown", call.wire_api or call.protocol) for call in every)
    return LedgerSummary(
        calls=len(every),
        wire_apis=dict(Counter(call.wire_api or call.protocol for call in every).most_common()),
        clients=dict(Counter(call.client or "unknown" for call in every).most_common()),
        pairs=[ClientUse(client, wire_api, count) for (client, wire_api), count in pairs.most_common()],
    )
