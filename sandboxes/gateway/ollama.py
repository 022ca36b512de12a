"""Ollama's native API: /api/chat and /api/generate (newline-delimited JSON streams by default, one JSON object
with `stream: false`), /api/embed and /api/embeddings, and the model-management calls clients make before they
generate (/api/tags, /api/show, /api/pull, /api/ps, /api/version). A `format` asks for JSON: the offline answer
is then wrapped in it (a schema gets its required fields filled)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sandboxes.gateway import responder
from sandboxes.gateway.embeddings import input_texts
from sandboxes.gateway.faults import after_piece, answer_or_fail, hold_whole_answer, stream_pieces
from sandboxes.gateway.ledger import Exchange, GatewayCall
from sandboxes.gateway.openai_chat import openai_messages
from sandboxes.gateway.replies import end_stream, ndjson_line, send_json, send_raw, start_stream
from sandboxes.gateway.tools import arguments_for

VERSION = "0.6.5"
"""The Ollama server version the gateway reports: recent enough that clients enable every feature."""
DEFAULT_MODEL = "viva-offline:latest"
GENERATION_PATHS = ("/api/chat", "/api/generate")
PATHS = (*GENERATION_PATHS, "/api/embed", "/api/embeddings", "/api/tags", "/api/show", "/api/pull", "/api/ps")


def is_ollama(path: str) -> bool:
    return path.rstrip("/") in (*PATHS, "/api/version")


async def handle(exchange: Exchange) -> None:
    path = exchange.path.rstrip("/")
    if path == "/api/chat":
        system, texts = openai_messages(exchange.body.get("messages") or [])
        await _generation(exchange, "chat", system, texts)
    elif path == "/api/generate":
        body = exchange.body
        await _generation(exchange, "generate", str(body.get("system") or ""), [str(body.get("prompt") or "")])
    elif path in ("/api/embed", "/api/embeddings"):
        await _embed(exchange, path.removeprefix("/api/"))
    else:
        await _management(exchange, path)


async def _generation(exchange: Exchange, endpoint: str, system: str, texts: list[str]) -> None:
    wanted = exchange.body.get("format")
    answered = await answer_or_fail(
        exchange,
        protocol="ollama",
        wire_api=f"ollama.{endpoint}",
        endpoint=endpoint,
        system=system,
        messages=texts,
        shape=lambda text: _formatted(wanted, text),
    )
    if answered is None:
        return
    call, fault = answered
    if exchange.body.get("stream", True) is False:
        await hold_whole_answer(exchange, fault)
        await send_json(exchange.send, 200, {**_piece(endpoint, call, call.output), **_done(call)})
        return
    await start_stream(exchange.send, "application/x-ndjson")
    for piece in stream_pieces(call.output, fault):
        await ndjson_line(exchange.send, _piece(endpoint, call, piece))
        await after_piece(exchange, fault)
    if fault != "truncated_stream":  # a cut stream never sends its `done: true` line
        await ndjson_line(exchange.send, {**_piece(endpoint, call, ""), **_done(call)})
    await end_stream(exchange.send)


def _formatted(wanted: Any, text: str) -> str:
    if wanted == "json":
        return json.dumps({"response": text})
    if isinstance(wanted, dict):
        return json.dumps(arguments_for(wanted, text))
    return text


def _piece(endpoint: str, call: GatewayCall, text: str) -> dict[str, Any]:
    head = {"model": call.model, "created_at": _now(), "done": False}
    if endpoint == "chat":
        return {**head, "message": {"role": "assistant", "content": text}}
    return {**head, "response": text}


def _done(call: GatewayCall) -> dict[str, Any]:
    total = int(call.modelled_latency_s * 1e9)
    return {
        "done": True,
        "done_reason": "stop",
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_count": call.input_tokens,
        "prompt_eval_duration": total // 10,
        "eval_count": call.output_tokens,
        "eval_duration": total - total // 10,
    }


async def _embed(exchange: Exchange, endpoint: str) -> None:
    """/api/embed takes `input` (a text or a list) and returns `embeddings`; the older /api/embeddings takes one
    `prompt` and returns one `embedding`."""
    body = exchange.body
    texts = input_texts(body.get("input", [])) if endpoint == "embed" else [str(body.get("prompt") or "")]
    call = exchange.record(
        protocol="ollama",
        wire_api=f"ollama.{endpoint}",
        endpoint=endpoint,
        model=str(body.get("model", "")),
        system="",
        messages=texts,
        output="",
    )
    vectors = [responder.embed(text) for text in texts]
    if endpoint == "embeddings":
        await send_json(exchange.send, 200, {"embedding": vectors[0] if vectors else []})
        return
    reply = {"model": call.model, "embeddings": vectors, "total_duration": 0, "load_duration": 0}
    await send_json(exchange.send, 200, {**reply, "prompt_eval_count": call.input_tokens})


async def _management(exchange: Exchange, path: str) -> None:
    """Every model is "installed": an app that lists, shows or pulls its model before using it goes on to use it."""
    model = str(exchange.body.get("model") or exchange.body.get("name") or DEFAULT_MODEL)
    if path == "/api/version":
        await send_json(exchange.send, 200, {"version": VERSION})
    elif path in ("/api/tags", "/api/ps"):
        used = (call.model for call in exchange.ledger if call.protocol == "ollama" and call.model)
        names = dict.fromkeys([DEFAULT_MODEL, *used])
        await send_json(exchange.send, 200, {"models": [_model_entry(name) for name in names]})
    elif path == "/api/show":
        await send_json(exchange.send, 200, _shown(model))
    elif exchange.body.get("stream", True) is False:  # /api/pull
        await send_json(exchange.send, 200, {"status": "success"})
    else:
        lines = b"".join(json.dumps({"status": status}).encode() + b"\n" for status in ("pulling manifest", "success"))
        await send_raw(exchange.send, 200, lines, "application/x-ndjson")


def _model_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": _now(),
        "size": 0,
        "digest": "0" * 64,
        "details": _details(),
    }


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "viva",
        "families": ["viva"],
        "parameter_size": "0B",
        "quantization_level": "none",
    }


def _shown(model: str) -> dict[str, Any]:
    return {
        "modelfile": f"FROM {model}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _details(),
        "model_info": {"general.architecture": "viva", "viva.context_length": 128000},
        "capabilities": ["completion", "embedding"],
        "modified_at": _now(),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
