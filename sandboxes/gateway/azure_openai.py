"""Azure OpenAI's layout: `/openai/deployments/{deployment}/chat/completions?api-version=…` (and `/completions`,
`/embeddings`), `/openai/responses`, and the v1 layout `/openai/v1/...` that plain OpenAI clients use against Azure.
The key comes as an `api-key` header (any is taken). The deployment name is what the app chose, so it is recorded
as the model: it is also what Azure prices by, through the model deployed under it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from sandboxes.gateway import embeddings, openai_chat, openai_responses
from sandboxes.gateway.ledger import Exchange

_DEPLOYMENT = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)(?P<rest>/.*)$")
_OPERATIONS: dict[str, tuple[str, Callable[[Exchange, str], Awaitable[None]]]] = {
    "/chat/completions": ("azure.chat", openai_chat.chat),
    "/completions": ("azure.completions", openai_chat.completions),
    "/embeddings": ("azure.embeddings", embeddings.embeddings),
    "/responses": ("azure.responses", openai_responses.responses),
}


def is_azure(path: str) -> bool:
    return path.startswith("/openai/")


async def handle(exchange: Exchange) -> bool:
    """Answer an Azure path; False when it names no operation the gateway serves."""
    path = exchange.path.rstrip("/")
    deployment = _DEPLOYMENT.match(path)
    if deployment is not None:
        rest = deployment.group("rest")
        exchange.body = {**exchange.body, "model": deployment.group("deployment")}
    else:
        rest = path.removeprefix("/openai").removeprefix("/v1")
    operation = _OPERATIONS.get(rest)
    if operation is None:
        return False
    wire_api, handler = operation
    await handler(exchange, wire_api)
    return True
