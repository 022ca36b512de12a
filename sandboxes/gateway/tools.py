"""Tool calls the stand-in model makes. It calls a tool only when the request requires one (OpenAI's "required" or
a named function, Anthropic's "any" or a named tool): with "auto" it answers in text, so an app's plain path is
what the grader sees. Arguments are made from the tool's JSON schema and the question."""

from __future__ import annotations

import json
import uuid
from typing import Any

Tool = tuple[str, dict[str, Any]]
"""A tool's name and the JSON schema of its arguments."""


def forced_chat_tool(body: dict[str, Any]) -> Tool | None:
    """The tool an OpenAI chat-completions request requires, with its parameter schema."""
    tools = [tool.get("function", {}) for tool in body.get("tools") or [] if isinstance(tool, dict)]
    choice = body.get("tool_choice")
    wanted = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    return _pick(tools, choice not in (None, "auto", "none"), wanted, "parameters")


def forced_responses_tool(body: dict[str, Any]) -> Tool | None:
    """The function a Responses API request requires: its tools and tool_choice name functions without nesting."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and tool.get("type") == "function"]
    choice = body.get("tool_choice")
    wanted = choice.get("name") if isinstance(choice, dict) else None
    return _pick(tools, choice not in (None, "auto", "none"), wanted, "parameters")


def forced_anthropic_tool(body: dict[str, Any]) -> Tool | None:
    """The tool an Anthropic messages request requires (tool_choice type "any" or "tool")."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and "name" in tool]
    choice = body.get("tool_choice") or {}
    kind = choice.get("type") if isinstance(choice, dict) else None
    wanted = choice.get("name") if isinstance(choice, dict) and kind == "tool" else None
    return _pick(tools, kind in ("any", "tool"), wanted, "input_schema")


def _pick(tools: list[dict[str, Any]], forced: bool, wanted: str | None, schema_key: str) -> Tool | None:
    if not tools or not forced:
        return None
    if wanted:
        tools = [tool for tool in tools if tool.get("name") == wanted] or tools
    return str(tools[0].get("name", "tool")), dict(tools[0].get(schema_key) or {})


def arguments_for(schema: dict[str, Any], question: str) -> dict[str, Any]:
    """Required arguments of a tool, filled deterministically: strings get the question, numbers 1, flags true."""
    filled: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name not in (schema.get("required") or []):
            continue
        kind = prop.get("type")
        filled[name] = (
            prop["enum"][0]
            if "enum" in prop
            else 1
            if kind == "integer"
            else 1.0
            if kind == "number"
            else True
            if kind == "boolean"
            else []
            if kind == "array"
            else {}
            if kind == "object"
            else question[:200]
        )
    return filled


def call_text(name: str, arguments: str) -> str:
    """How a tool call is written in the ledger's `output`."""
    return f"{name}({arguments})"


def arguments_json(tool: Tool, question: str) -> str:
    return json.dumps(arguments_for(tool[1], question))


def new_id(prefix: str, length: int = 32) -> str:
    return prefix + uuid.uuid4().hex[:length]
