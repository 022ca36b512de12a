"""Turning model specs into pydantic-ai models, and running a call down a fallback chain.

Provider clients are built with max_retries=0: a provider that fails fails over AT ONCE to the next model
(the SDK's own retries took 5.5 s per failing model here). A provider that answered 429 is skipped until its
Retry-After has passed — a cooldown per model — instead of being retried in place.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import msgspec

from llm.errors import ModelStringError, NoModelAvailable
from llm.spec import ModelSpec, parse_model_string

if TYPE_CHECKING:
    from pydantic_ai.models import Model

# The provider SDKs and pydantic-ai load inside the functions that use them: importing them costs seconds, and
# the settings (ProviderKeys) and every CLI command that never calls a model import this module.

T = TypeVar("T")
DEFAULT_COOLDOWN_S = 30.0


class ProviderKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Keys and endpoints for real providers; a settings section. Keys never leave the host process."""

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    compatible_api_key: str | None = None
    timeout_seconds: float = 60.0


def default_model_string(keys: ProviderKeys) -> str:
    """`offline` unless a key is configured: then that provider first, offline last, so work never stops."""
    chain = []
    if keys.anthropic_api_key:
        chain.append("anthropic:claude-3-5-haiku-latest")
    if keys.openai_api_key:
        chain.append("openai:gpt-4o-mini")
    return ",".join([*chain, "offline"])


def chosen_model_string(configured: str | None, keys: ProviderKeys) -> str:
    """The one rule for CLI and server: the model string configured (a flag or VIVA_INTERVIEW_MODEL), else the
    configured providers first and offline last (default_model_string)."""
    return configured.strip() if configured and configured.strip() else default_model_string(keys)


@dataclass(frozen=True)
class ModelChoice:
    spec: ModelSpec
    model: Model


def build_chain(text: str, offline: Callable[[], Model], keys: ProviderKeys) -> list[ModelChoice]:
    """The models a model string names, in fallback order. `offline` builds the caller's deterministic model."""
    return [ModelChoice(spec, _build(spec, offline, keys)) for spec in parse_model_string(text)]


def _build(spec: ModelSpec, offline: Callable[[], Model], keys: ProviderKeys) -> Model:
    if spec.provider == "offline":
        return offline()
    if spec.provider == "anthropic":
        if not keys.anthropic_api_key:
            raise ModelStringError(f"{spec.label} needs an Anthropic key (VIVA_LLM_ANTHROPIC_API_KEY)")
        return _anthropic_model(spec, keys)
    return _openai_model(spec, keys)


def _anthropic_model(spec: ModelSpec, keys: ProviderKeys) -> Model:
    from anthropic import AsyncAnthropic  # noqa: PLC0415 - seconds to import; only a real Anthropic model needs it
    from pydantic_ai.models.anthropic import AnthropicModel  # noqa: PLC0415 - as above
    from pydantic_ai.providers.anthropic import AnthropicProvider  # noqa: PLC0415 - as above

    client = AsyncAnthropic(
        api_key=keys.anthropic_api_key,
        base_url=keys.anthropic_base_url,
        max_retries=0,
        timeout=keys.timeout_seconds,
    )
    return AnthropicModel(spec.model, provider=AnthropicProvider(anthropic_client=client))


def _openai_model(spec: ModelSpec, keys: ProviderKeys) -> Model:
    """An OpenAI model, or a model of an OpenAI-compatible endpoint (spec.base_url)."""
    from openai import AsyncOpenAI  # noqa: PLC0415 - seconds to import; only a real OpenAI-style model needs it
    from pydantic_ai.models.openai import OpenAIChatModel  # noqa: PLC0415 - as above
    from pydantic_ai.providers.openai import OpenAIProvider  # noqa: PLC0415 - as above

    if spec.provider == "openai":
        if not keys.openai_api_key:
            raise ModelStringError(f"{spec.label} needs an OpenAI key (VIVA_LLM_OPENAI_API_KEY)")
        openai_client = AsyncOpenAI(
            api_key=keys.openai_api_key, base_url=keys.openai_base_url, max_retries=0, timeout=keys.timeout_seconds
        )
        return OpenAIChatModel(spec.model, provider=OpenAIProvider(openai_client=openai_client))
    compatible = AsyncOpenAI(
        api_key=keys.compatible_api_key or "not-needed",
        base_url=spec.base_url,
        max_retries=0,
        timeout=keys.timeout_seconds,
    )
    return OpenAIChatModel(spec.model, provider=OpenAIProvider(openai_client=compatible))


@dataclass
class Router:
    """Runs a call on the first model of the chain that is not cooling down, failing over on provider errors."""

    chain: list[ModelChoice]
    clock: Callable[[], float] = time.monotonic
    cooldown_until: dict[str, float] = field(default_factory=dict)

    async def run(self, call: Callable[[Model], Awaitable[T]]) -> tuple[T, ModelSpec]:
        failures: list[str] = []
        for choice in self.chain:
            label = choice.spec.label
            now = self.clock()
            if self.cooldown_until.get(label, 0.0) > now:
                failures.append(f"{label}: rate-limited, cooling down {self.cooldown_until[label] - now:.1f} s more")
                continue
            try:
                return await call(choice.model), choice.spec
            except Exception as error:
                failure = self._provider_failure(label, error)
                if failure is None:
                    raise
                failures.append(failure)
        raise NoModelAvailable(failures)

    def _provider_failure(self, label: str, error: Exception) -> str | None:
        """What a provider's failure says (a 429 also starts the model's cooldown); None for any other error."""
        # pydantic-ai is loaded by now when the error is its own; an offline call that never loaded it raised
        # something else, and importing it here for the check costs only the failing path.
        from pydantic_ai.exceptions import (  # noqa: PLC0415 - see above
            ModelAPIError,
            ModelHTTPError,
            UnexpectedModelBehavior,
        )

        if isinstance(error, ModelHTTPError):
            if error.status_code == 429:
                wait = error.retry_after if error.retry_after is not None else DEFAULT_COOLDOWN_S
                self.cooldown_until[label] = self.clock() + wait
            return f"{label}: HTTP {error.status_code}"
        if isinstance(error, (ModelAPIError, UnexpectedModelBehavior)):
            return f"{label}: {type(error).__name__}: {str(error)[:120]}"
        return None
