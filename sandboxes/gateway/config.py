"""How a gateway behaves: the stand-in model's timing, the faults it plays, and where it proxies to."""

from __future__ import annotations

from typing import Literal

import msgspec

Fault = Literal["rate_limit", "server_error", "timeout", "slow_stream", "truncated_stream", "malformed_json"]


class GatewayConfig(msgspec.Struct, kw_only=True):
    """How the gateway behaves; tests and the grader change it between probes."""

    gullible: bool = False
    faults: list[Fault] = msgspec.field(default_factory=list)
    """Consumed one per generation call, first in first out."""
    faults_for: dict[str, Fault] = msgspec.field(default_factory=dict)
    """A fault for the next generation call whose messages contain the key (a question): requests in flight at once
    each get their own fault. Consumed once; checked before `faults`."""
    time_to_first_token_s: float = 0.4
    tokens_per_second: float = 80.0
    time_scale: float = 1.0
    """Multiplies every modelled delay: 0 in tests, 1 to feel like a real provider."""
    retry_after_s: float = 2.0
    timeout_s: float = 120.0
    fault_time_scale: float | None = None
    """Scale for the delays of `timeout` and `slow_stream` faults; None follows `time_scale`. The grader sets 1:
    a played timeout must outlast the app's own timeout, or it tests nothing."""
    slow_response_s: float = 6.0
    """A `slow_stream` fault on a non-streaming call holds the whole answer back this long (before scaling)."""
    proxy_openai_url: str | None = None
    """When set, chat completions are forwarded to this OpenAI-compatible base URL with `proxy_openai_key`, which
    stays on the host: the sandbox only ever sees the gateway."""
    proxy_openai_key: str | None = None
    proxy_anthropic_url: str | None = None
    """The same for Anthropic messages, with `proxy_anthropic_key` sent as x-api-key from the host."""
    proxy_anthropic_key: str | None = None
