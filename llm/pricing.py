"""Prices from genai-prices, shared by the interviewer, the judge and the sandbox's LLM gateway."""

from __future__ import annotations

from functools import lru_cache

# Used when genai-prices does not know a model (a local model, a new release): a deliberately high price,
# so that budgets err on the side of stopping. Offline models cost nothing.
UNKNOWN_INPUT_PER_MTOK = 15.0
UNKNOWN_OUTPUT_PER_MTOK = 75.0
_PROVIDER_IDS = {"anthropic": "anthropic", "openai": "openai"}


def price_usd(provider: str, model: str, input_tokens: int, output_tokens: int) -> float:
    """The price of one call in US dollars."""
    if provider == "offline":
        return 0.0
    per_input, per_output = per_token_prices(provider, model)
    return input_tokens * per_input + output_tokens * per_output


def is_known(provider: str, model: str) -> bool:
    return provider == "offline" or _lookup(provider, model) is not None


@lru_cache(maxsize=256)
def per_token_prices(provider: str, model: str) -> tuple[float, float]:
    """(USD per input token, USD per output token)."""
    if provider == "offline":
        return 0.0, 0.0
    found = _lookup(provider, model)
    if found is None:
        return UNKNOWN_INPUT_PER_MTOK / 1e6, UNKNOWN_OUTPUT_PER_MTOK / 1e6
    return found


@lru_cache(maxsize=256)
def _lookup(provider: str, model: str) -> tuple[float, float] | None:
    from genai_prices import Usage, calc_price  # noqa: PLC0415 - its price tables take most of a second to load

    provider_id = _PROVIDER_IDS.get(provider)
    try:
        million_in = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), model, provider_id=provider_id)
        million_out = calc_price(Usage(input_tokens=0, output_tokens=1_000_000), model, provider_id=provider_id)
    except LookupError:
        return None
    return float(million_in.total_price) / 1e6, float(million_out.total_price) / 1e6
