"""The LLM clients a sandboxed app may use: the variables that point each of them at the gateway, the provider
hosts the gateway stands in for (and those it does not), and how a request tells which client sent it."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

AZURE_API_VERSION = "2024-10-21"
"""The newest generally available Azure OpenAI data-plane version (Microsoft's "API version lifecycle" page); the
gateway accepts any version, so this only has to be one a client will send without complaint."""


def provider_env(base_url: str) -> dict[str, str]:
    """The variables that point every common client at the gateway at `base_url` (scheme, host and port, no path),
    with keys that open nothing: the gateway takes any key, and no real provider is reachable from the sandbox.

    Who reads what (checked against each project's source):
    - openai-python: OPENAI_BASE_URL, OPENAI_API_KEY; its AzureOpenAI: AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY,
      OPENAI_API_VERSION (openai/lib/azure.py).
    - anthropic-python: ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY.
    - ollama-python: OLLAMA_HOST (ollama/_client.py `_parse_host`); LangChain's ChatOllama hands it to that client.
    - LangChain: ChatOpenAI reads OPENAI_API_BASE before the SDK's OPENAI_BASE_URL; ChatAnthropic reads
      ANTHROPIC_API_URL, then ANTHROPIC_BASE_URL (langchain_anthropic/chat_models.py `from_env`); AzureChatOpenAI
      reads AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, OPENAI_API_VERSION.
    - LlamaIndex: OPENAI_API_BASE, OPENAI_API_KEY, OPENAI_API_VERSION (llama_index/llms/openai/utils.py
      `resolve_openai_credentials`).
    - LiteLLM (docs.litellm.ai/docs/set_keys and its provider configs): OPENAI_BASE_URL / OPENAI_API_BASE,
      ANTHROPIC_API_BASE (then ANTHROPIC_BASE_URL), AZURE_API_BASE, AZURE_API_KEY, AZURE_API_VERSION, OLLAMA_API_BASE.
    - OLLAMA_BASE_URL and AZURE_OPENAI_API_VERSION are no library's but many apps' own names for the same things.
    """
    base = base_url.rstrip("/")
    return {
        "OPENAI_BASE_URL": f"{base}/v1",
        "OPENAI_API_BASE": f"{base}/v1",
        "OPENAI_API_KEY": "sk-viva-sandbox",
        "AZURE_OPENAI_ENDPOINT": base,
        "AZURE_OPENAI_API_KEY": "viva-sandbox-azure-key",
        "OPENAI_API_VERSION": AZURE_API_VERSION,
        "AZURE_OPENAI_API_VERSION": AZURE_API_VERSION,
        "AZURE_API_BASE": base,
        "AZURE_API_KEY": "viva-sandbox-azure-key",
        "AZURE_API_VERSION": AZURE_API_VERSION,
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_URL": base,
        "ANTHROPIC_API_BASE": base,
        "ANTHROPIC_API_KEY": "sk-ant-viva-sandbox",
        "OLLAMA_HOST": base,
        "OLLAMA_BASE_URL": base,
        "OLLAMA_API_BASE": base,
    }


SERVED_PROVIDER_HOSTS = (
    "api.openai.com",
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com",  # Azure OpenAI resources made in AI Foundry answer here, same paths
    "api.anthropic.com",
    "ollama.com",  # Ollama's hosted API speaks the same /api/chat as a local server
)
"""Provider hostnames whose wire API the gateway speaks (`*.` matches any subdomain)."""


class UnservedProvider(msgspec.Struct, frozen=True):
    """A provider the gateway does not stand in for: an app that needs it cannot get a model answer in the sandbox,
    so the checks that need one are not_run, naming the provider."""

    name: str
    hosts: tuple[str, ...]
    env_vars: tuple[str, ...]
    """The variables its clients read for a key or an endpoint: set in a repository, they say the app uses it."""


# Several of these speak an OpenAI-compatible API, but under their own hosts and model names; the gateway answers
# only for the hosts above, so an app pointed at one of these is told "not served" rather than silently rerouted.
UNSERVED_PROVIDERS = (
    UnservedProvider("Google Gemini", ("generativelanguage.googleapis.com",), ("GOOGLE_API_KEY", "GEMINI_API_KEY")),
    UnservedProvider(
        "Google Vertex AI",
        ("aiplatform.googleapis.com", "*-aiplatform.googleapis.com"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "VERTEXAI_PROJECT", "VERTEX_PROJECT"),
    ),
    UnservedProvider(
        "AWS Bedrock",
        ("bedrock-runtime.*.amazonaws.com", "bedrock.*.amazonaws.com"),
        (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_BEARER_TOKEN_BEDROCK",
        ),
    ),
    UnservedProvider("Cohere", ("api.cohere.com", "api.cohere.ai"), ("COHERE_API_KEY", "CO_API_KEY")),
    UnservedProvider("Mistral", ("api.mistral.ai",), ("MISTRAL_API_KEY",)),
    UnservedProvider("Groq", ("api.groq.com",), ("GROQ_API_KEY",)),
    UnservedProvider(
        "Together AI", ("api.together.xyz", "api.together.ai"), ("TOGETHER_API_KEY", "TOGETHERAI_API_KEY")
    ),
    UnservedProvider("Fireworks AI", ("api.fireworks.ai",), ("FIREWORKS_API_KEY",)),
    UnservedProvider("DeepSeek", ("api.deepseek.com",), ("DEEPSEEK_API_KEY",)),
    UnservedProvider("xAI", ("api.x.ai",), ("XAI_API_KEY",)),
    UnservedProvider("Perplexity", ("api.perplexity.ai",), ("PERPLEXITY_API_KEY", "PPLX_API_KEY")),
    UnservedProvider("OpenRouter", ("openrouter.ai",), ("OPENROUTER_API_KEY",)),
    UnservedProvider(
        "Hugging Face Inference",
        ("api-inference.huggingface.co", "router.huggingface.co"),
        ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    ),
    UnservedProvider("Replicate", ("api.replicate.com",), ("REPLICATE_API_TOKEN", "REPLICATE_API_KEY")),
    UnservedProvider("Voyage AI", ("api.voyageai.com",), ("VOYAGE_API_KEY",)),
)


def unserved_provider(host: str) -> UnservedProvider | None:
    """The unserved provider whose API lives at `host`, if any (`*` in a pattern stands for one DNS label or
    part of one: `bedrock-runtime.*.amazonaws.com`, `*-aiplatform.googleapis.com`)."""
    name = host.rstrip(".").lower()
    for provider in UNSERVED_PROVIDERS:
        for pattern in provider.hosts:
            if re.fullmatch(re.escape(pattern).replace(r"\*", r"[a-z0-9-]+"), name):
                return provider
    return None


USER_AGENT_LIMIT = 200
# Frameworks that call providers over plain HTTP put their name in the User-Agent; when they go through a vendor SDK
# the SDK's own User-Agent is all there is, and the request is that SDK's.
_FRAMEWORKS = (("litellm", "litellm"), ("langchain", "langchain"), ("llama-index", "llama-index"))
_FRAMEWORK_SPELLINGS = {"llama_index": "llama-index", "llamaindex": "llama-index"}
_STAINLESS = re.compile(r"^(Async)?(Azure)?(OpenAI|Anthropic)\w*/(Python|JS)\b")
_PLAIN = (
    ("ollama-python/", "ollama-python"),
    ("ollama-js/", "ollama-js"),
    ("python-requests/", "python-requests"),
    ("python-httpx/", "python-httpx"),
    ("python-urllib", "python-urllib"),
    ("aiohttp/", "aiohttp"),
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("go-http-client/", "go"),
    ("node-fetch", "node"),
    ("undici", "node"),
    ("axios/", "node"),
    ("node", "node"),
)


def identify_client(headers: Mapping[str, str]) -> tuple[str, str]:
    """(a short normalised client name, the raw User-Agent cut to 200 characters) from a request's lower-case
    headers. The openai and anthropic SDKs (Stainless-generated, in Python and JS) say `OpenAI/Python 2.8.1`,
    `AsyncAnthropic/Python 0.72.0`, `OpenAI/JS 5.0.0` and send x-stainless-lang / x-stainless-async."""
    user_agent = headers.get("user-agent", "")
    lowered = user_agent.lower()
    for spelling, name in (*_FRAMEWORKS, *_FRAMEWORK_SPELLINGS.items()):
        if spelling in lowered:
            return name, user_agent[:USER_AGENT_LIMIT]
    stainless = _STAINLESS.match(user_agent)
    if stainless or headers.get("x-stainless-lang"):
        return _stainless_name(stainless, headers), user_agent[:USER_AGENT_LIMIT]
    for prefix, name in _PLAIN:
        if prefix in lowered:
            return name, user_agent[:USER_AGENT_LIMIT]
    return ("other" if user_agent else "unknown"), user_agent[:USER_AGENT_LIMIT]


def _stainless_name(match: re.Match[str] | None, headers: Mapping[str, str]) -> str:
    if match is None:  # the SDK's headers without its User-Agent (an app replaced it)
        vendor, language, azure = "stainless", headers.get("x-stainless-lang", ""), False
        asynchronous = headers.get("x-stainless-async", "false").startswith("async")
    else:
        vendor, language, azure = match.group(3).lower(), match.group(4).lower(), bool(match.group(2))
        asynchronous = bool(match.group(1)) or headers.get("x-stainless-async", "false").startswith("async")
    language = "node" if language == "js" else language
    name = f"{'azure-' if azure else ''}{vendor}-{language}"
    return name + "-async" if asynchronous and language == "python" else name
