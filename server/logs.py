"""Structured logs (one JSON object a line) with secrets taken out: bearer tokens, API tokens, provider keys,
session cookies, passwords in bodies, and the codes in invitation and reset links never reach a log line."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

REDACTIONS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"\bviva_[A-Za-z0-9_-]{10,}"), "viva_[redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-[redacted]"),
    (re.compile(r"(?i)(viva_session=)[^;\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)(\"?password\"?\s*[:=]\s*\"?)[^\"\s,}]+"), r"\1[redacted]"),
    (re.compile(r"(/(?:invitations|password-reset|join)/)[A-Za-z0-9_-]{8,}"), r"\1[redacted]"),
    (re.compile(r"(?i)(token[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9_.-]{8,}"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str) -> dict[str, object]:
    """The logging config for `viva serve` (uvicorn's loggers included)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "viva")
        },
    }
