"""Model strings: `offline`, `anthropic:<model>`, `openai:<model>`, `openai-compatible:<model>@<base-url>`, and a
comma-separated list of them for a fallback chain. Model names may contain colons (`llama3.1:8b`), so the URL of an
openai-compatible model follows the LAST `@`."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import msgspec

from llm.errors import ModelStringError

Provider = Literal["offline", "anthropic", "openai", "openai-compatible"]


class ModelSpec(msgspec.Struct, frozen=True):
    provider: Provider
    model: str
    base_url: str | None = None

    @property
    def label(self) -> str:
        """A stable, secret-free name for ledgers and reports."""
        if self.provider == "offline":
            return "offline"
        suffix = f"@{self.base_url}" if self.base_url else ""
        return f"{self.provider}:{self.model}{suffix}"


def parse_model_string(text: str) -> list[ModelSpec]:
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise ModelStringError(f"empty model in {text!r}; give e.g. 'offline' or 'anthropic:claude-3-5-haiku-latest'")
    return [_parse_one(part) for part in parts]


def _parse_one(text: str) -> ModelSpec:
    if text == "offline":
        return ModelSpec("offline", "offline")
    provider, colon, rest = text.partition(":")
    if not colon or not rest:
        raise ModelStringError(
            f"{text!r} names no provider; use offline, anthropic:<model>, openai:<model> "
            "or openai-compatible:<model>@<base-url>"
        )
    if provider in ("anthropic", "openai"):
        return ModelSpec(provider, rest)  # type: ignore[arg-type]
    if provider == "openai-compatible":
        model, at, url = rest.rpartition("@")
        if not at or not model:
            raise ModelStringError(f"{text!r}: an openai-compatible model needs a base URL: <model>@<base-url>")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelStringError(f"{text!r}: {url!r} is not an http(s) base URL")
        return ModelSpec("openai-compatible", model, url.rstrip("/"))
    raise ModelStringError(f"unknown provider {provider!r} in {text!r}; known: anthropic, openai, openai-compatible")
