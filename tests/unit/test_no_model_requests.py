"""The suite forbids model requests (tests/conftest.py sets `pydantic_ai.models.ALLOW_MODEL_REQUESTS = False`): a
model that would talk to a provider raises pydantic-ai's RuntimeError before it opens a connection, while the
deterministic models tests use (FunctionModel, TestModel) still answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pydantic_ai.models
import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from llm.select import ProviderKeys, build_chain


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on loopback that nothing should ever connect to."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        yield server


def _no_connection_came(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def _offline() -> FunctionModel:
    raise AssertionError("the offline model is not part of this chain")


async def test_an_openai_compatible_model_raises_before_connecting(listener: socket.socket) -> None:
    assert pydantic_ai.models.ALLOW_MODEL_REQUESTS is False
    port = listener.getsockname()[1]
    [choice] = build_chain(f"openai-compatible:tiny@http://127.0.0.1:{port}/v1", _offline, ProviderKeys())
    agent = Agent(choice.model)
    with pytest.raises(RuntimeError, match="ALLOW_MODEL_REQUESTS is False"):
        await agent.run("hello")
    assert _no_connection_came(listener), "the model connected to the provider although requests are forbidden"


async def test_a_function_model_still_answers() -> None:
    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("offline answer")])

    result = await Agent(FunctionModel(reply)).run("hello")
    assert result.output == "offline answer"


@pytest.mark.usefixtures("allow_model_requests")
def test_the_opt_in_fixture_allows_requests_for_one_test() -> None:
    assert pydantic_ai.models.ALLOW_MODEL_REQUESTS is True


def test_requests_are_forbidden_again_after_the_opt_in() -> None:
    assert pydantic_ai.models.ALLOW_MODEL_REQUESTS is False
