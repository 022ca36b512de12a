"""The offline judge: deterministic; it reads the <repo_data> blocks of its prompt and, for each aspect, cites the
first line whose words support it (lines flagged as addressing a grader are skipped).

It answers the judge prompt directly rather than as a pydantic-ai model: importing pydantic-ai is most of a static
grading's start-up, and a model that is a function of the prompt gains nothing from an agent loop. Real models go
through the agent (grader/judge/run.py); both give the judge the same claims to verify.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from grader.judge.aspects import ASPECTS

if TYPE_CHECKING:
    from pydantic_ai.models import Model

_BLOCK = re.compile(r'<repo_data path="([^"]+)">\n(.*?)\n</repo_data>', re.S)
_LINE = re.compile(r"\s*(\d+): (.*)")


class OfflineJudge:
    """The offline judge's place in a model chain (llm.select.ModelChoice); grader.judge.run answers it directly."""

    model_name = "viva-offline-judge"

    def claims(self, prompt: str) -> list[dict[str, Any]]:
        return offline_claims(prompt)


def offline_judge() -> Model:
    """The offline judge for a model chain. Typed as a Model for the chain; only the judge ever calls it, and it
    checks for this class before reaching the agent."""
    return cast("Model", OfflineJudge())


def offline_claims(prompt: str) -> list[dict[str, Any]]:
    """For each aspect of the prompt's check, the first documentation line that supports it, as a claim."""
    check = re.search(r"^Check: (\w+)", prompt, re.M)
    aspects = ASPECTS.get(check.group(1), []) if check else []
    claims = []
    for aspect in aspects:
        for path, body in _BLOCK.findall(prompt):
            cited = _first_supporting_line(body, aspect.support)
            if cited is not None:
                claims.append({"aspect": aspect.id, "path": path, "line": cited[0], "quote": cited[1]})
                break
    return claims


def _first_supporting_line(body: str, support: re.Pattern[str]) -> tuple[int, str] | None:
    for raw in body.splitlines():
        match = _LINE.match(raw)
        if not match or match.group(2).startswith("[flagged"):
            continue
        text = match.group(2).strip()
        if len(text) >= 8 and support.search(text):
            return int(match.group(1)), text
    return None
