"""The offline models: deterministic pydantic-ai FunctionModels that make the interview work with no key and no
network. The interviewer phrases the controller's directive from a curated question bank and, for a
contradiction, searches the repository first and quotes what it found; the assessor rates an answer from the
same code-measured signals the gate uses, and quotes its strongest sentence."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from interviewer.agent import Directive, parse_directive
from interviewer.signals import FOLLOW_UPS, evidence_points, measure, rating_from_points
from llm.messages import last_user_prompt, tool_returns

ACKNOWLEDGEMENTS = ["Thanks.", "Understood.", "Got it.", "Okay."]


def offline_interviewer() -> FunctionModel:
    return FunctionModel(_interviewer_reply, stream_function=_interviewer_stream, model_name="viva-offline-interviewer")


def offline_assessor() -> FunctionModel:
    return FunctionModel(_assessor_reply, model_name="viva-offline-assessor")


last_prompt = last_user_prompt


def candidate_answer(prompt: str) -> str:
    match = re.search(r"<candidate_answer>\n(.*)\n</candidate_answer>", prompt, re.S)
    return match.group(1) if match else ""


def _utterance(directive: Directive, searched: list[str], turn_seed: int) -> str:
    ack = ACKNOWLEDGEMENTS[turn_seed % len(ACKNOWLEDGEMENTS)]
    if directive.kind == "contradiction":
        found = searched[-1] if searched else ""
        quote = _first_code_line(found)
        seen = f" — the closest code I found is `{quote}`" if quote else ""
        return (
            f'You said "{directive.claim}". I looked at {directive.location}{seen}, and '
            f"{directive.explanation.split(': ', 1)[-1]}. Can you show me where that happens, or what you meant?"
        )
    if directive.kind == "follow_up":
        return directive.probe or FOLLOW_UPS["too_short"]
    if directive.kind == "close":
        return directive.question or "That is all my questions. Thank you for walking me through your project."
    if directive.kind == "redirect":
        return f"Let's keep to the project. {directive.question}"
    return f"{ack} {directive.question}" if turn_seed else directive.question


def _first_code_line(repo_data: str) -> str:
    for line in repo_data.splitlines():
        match = re.match(r"\s*\d+: (.+)", line)
        if match and match.group(1).strip():
            return match.group(1).strip()[:100]
    return ""


def _decide(messages: list[ModelMessage]) -> ToolCallPart | str:
    prompt = last_prompt(messages)
    directive = parse_directive(prompt)
    if directive is None:
        return "Could you tell me about the project you built?"
    searched = tool_returns(messages)
    if directive.kind == "contradiction" and not searched:
        query = f"{directive.claim} {directive.explanation}"
        return ToolCallPart(tool_name="search_repo", args={"query": query})
    seed = len(prompt) % 7 if "<candidate_answer>" in prompt else 0  # no acknowledgement before the first answer
    return _utterance(directive, searched, seed)


WORDS_PER_CHUNK = 4


def _interviewer_reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    decision = _decide(messages)
    if isinstance(decision, ToolCallPart):
        return ModelResponse(parts=[decision])
    return ModelResponse(parts=[TextPart(decision)])


async def _interviewer_stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    decision = _decide(messages)
    if isinstance(decision, ToolCallPart):
        yield {0: DeltaToolCall(name=decision.tool_name, json_args=decision.args_as_json_str())}
        return
    # A few words per chunk, as providers' streams arrive over the network: each chunk costs pydantic-ai a round of
    # stream events, and a word at a time made the stand-in model's streaming the server's main CPU cost.
    words = re.findall(r"\S+\s*", decision)
    for start in range(0, len(words), WORDS_PER_CHUNK):
        yield "".join(words[start : start + WORDS_PER_CHUNK])


def best_sentence(answer: str) -> str:
    """The sentence of the answer with the most substance by the same measure the rating uses."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
    if not sentences:
        return answer.strip()[:300]
    return max(sentences, key=lambda s: (evidence_points(measure(s)), len(s)))[:300]


def _assessor_reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    answer = candidate_answer(last_prompt(messages))
    signals = measure(answer)
    rating = rating_from_points(evidence_points(signals))
    args = {
        "rating": rating,
        "quote": best_sentence(answer),
        "rationale": f"{signals.numbers} numbers, {signals.costs} costs, {signals.failures} failure modes named",
    }
    tool = info.output_tools[0].name if info.output_tools else "final_result"
    return ModelResponse(parts=[ToolCallPart(tool_name=tool, args=args)])
