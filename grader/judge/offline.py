"""The offline judge: a deterministic FunctionModel that reads the <repo_data> blocks of its prompt and, for each
aspect, cites the first line whose words support it (lines flagged as addressing a grader are skipped)."""

from __future__ import annotations

import re

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from grader.judge.aspects import ASPECTS
from llm.messages import last_user_prompt

_BLOCK = re.compile(r'<repo_data path="([^"]+)">\n(.*?)\n</repo_data>', re.S)
_LINE = re.compile(r"\s*(\d+): (.*)")


def offline_judge() -> FunctionModel:
    return FunctionModel(_judge, model_name="viva-offline-judge")


def _judge(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    prompt = last_user_prompt(messages)
    check = re.search(r"^Check: (\w+)", prompt, re.M)
    aspects = ASPECTS.get(check.group(1), []) if check else []
    claims = []
    for aspect in aspects:
        for path, body in _BLOCK.findall(prompt):
            cited = _first_supporting_line(body, aspect.support)
            if cited is not None:
                claims.append({"aspect": aspect.id, "path": path, "line": cited[0], "quote": cited[1]})
                break
    tool = info.output_tools[0].name if info.output_tools else "final_result"
    return ModelResponse(parts=[ToolCallPart(tool_name=tool, args={"claims": claims})])


def _first_supporting_line(body: str, support: re.Pattern[str]) -> tuple[int, str] | None:
    for raw in body.splitlines():
        match = _LINE.match(raw)
        if not match or match.group(2).startswith("[flagged"):
            continue
        text = match.group(2).strip()
        if len(text) >= 8 and support.search(text):
            return int(match.group(1)), text
    return None
