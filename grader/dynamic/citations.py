"""Citation validity: a citation counts when the app returned it, it names context the app really sent to the model
(the gateway saw it), and the cited text supports the sentence that cites it.

Two kinds are kept apart: labels the model wrote into the answer text, and sources the app returned in its own
structure. Only the second shows the app checked anything; an app that passes the model's labels through unchecked
gets less credit than one that validates them against what it retrieved.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from grader.dynamic.client import Reply
from grader.dynamic.model import CitationItem, CitationsResult
from sandboxes.gateway.app import GENERATION_ENDPOINTS
from sandboxes.gateway.responder import context_lines, words

INLINE_LABEL = re.compile(r"\[([\w.:#/ -]{1,60})\]")
SOURCES_LINE = re.compile(r"^\s*(?:sources?|references?|citations?)\s*:\s*(.+)$", re.I | re.M)
"""The other common answer format: a trailing "Sources: a.md, b.md" line."""
CITATION_KEYS = (
    "chunk_id", "id", "label", "doc_id", "doc", "source", "document", "file", "filename", "path", "url", "title",
    "name", "slug", "section",
)  # fmt: skip
SUPPORT_SHARE = 0.5
"""A claim is supported when at least half of its content words are in the text it cites."""
MAX_ITEMS = 50


def check_citations(replies: list[Reply]) -> CitationsResult:
    items: list[CitationItem] = []
    for reply in replies:
        if not reply.ok:
            items.append(CitationItem(query=reply.question, status=reply.status, problems=[reply.error or "no answer"]))
            continue
        items.append(_judge(reply))
    answered = [item for item in items if item.status == 200]
    returned = sum(len(item.returned) for item in answered)
    inline = sum(len(item.inline) for item in answered)
    style: Literal["structured", "inline", "none"] = "structured" if returned else "inline" if inline else "none"
    counted = returned if style == "structured" else inline
    valid = sum(item.valid for item in answered)
    return CitationsResult(
        queries=len(items),
        answered=len(answered),
        style=style,
        cited_answers=sum(1 for item in answered if item.returned or item.inline),
        citations=counted,
        valid=valid,
        supported=sum(item.supported for item in answered),
        app_validated=style == "structured" and valid == counted and counted > 0,
        items=items[:MAX_ITEMS],
    )


def _judge(reply: Reply) -> CitationItem:
    context = _retrieved(reply)
    labels = INLINE_LABEL.findall(reply.answer)
    for line in SOURCES_LINE.findall(reply.answer):
        labels += [part.strip(" .[]") for part in re.split(r"[,;]", line) if part.strip(" .[]")]
    inline = list(dict.fromkeys(label.strip() for label in labels))
    returned = [_citation_names(item) for item in reply.citations]
    item = CitationItem(
        query=reply.question,
        status=reply.status,
        answer=reply.answer[:1500],
        inline=inline,
        returned=[" | ".join(names) for names in returned if names],
        retrieved=list(context)[:40],
    )
    claims = _claims(reply.answer)
    whole = _strip_labels(SOURCES_LINE.sub("", reply.answer))
    for names in [names for names in returned if names] or [[label] for label in inline]:
        cited = _cited_text(names, context)
        if cited is None:
            item.problems.append(f"{' | '.join(names)[:80]} was not in the context the app sent")
            continue
        item.valid += 1
        claim = next((claims[name] for name in names if name in claims), whole)
        item.supported += _supports(cited, claim)
    return item


def _cited_text(names: list[str], context: dict[str, str]) -> str | None:
    """The context block a citation names: by its label, else the block that mentions it (a file name, say)."""
    for name in names:
        if name in context:
            return context[name]
    return next((text for name in names for text in context.values() if len(name) >= 4 and name in text), None)


def _retrieved(reply: Reply) -> dict[str, str]:
    """Context blocks the app sent to the model for this request, by each label a block goes by (the stand-in
    model reads the same blocks: sandboxes/gateway/responder.py `context_lines`)."""
    blocks: dict[str, str] = {}
    for call in reply.calls:
        if call.endpoint not in GENERATION_ENDPOINTS:
            continue
        for labels, line in context_lines("\n".join([call.system, *call.messages])):
            for label in labels:
                blocks[label] = (blocks.get(label, "") + " " + line).strip()
    return blocks


def _citation_names(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item.strip()[:200]]
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return [str(item)]
    if isinstance(item, dict):
        return [str(item[key]).strip()[:200] for key in CITATION_KEYS if isinstance(item.get(key), (str, int))]
    return []


def _claims(text: str) -> dict[str, str]:
    """label → the text it covers: everything since the previous label (a marker closes the claim before it)."""
    claims: dict[str, str] = {}
    cursor = 0
    for match in INLINE_LABEL.finditer(text):
        segment = text[cursor : match.start()].strip()
        label = match.group(1).strip()
        if segment:
            claims[label] = (claims.get(label, "") + " " + segment).strip()
            cursor = match.end()
        elif label not in claims:
            claims[label] = ""  # consecutive markers ([a][b]) share the claim before them
    previous = ""
    for label in list(claims):
        claims[label] = claims[label] or previous
        previous = claims[label]
    return claims


def _strip_labels(text: str) -> str:
    return INLINE_LABEL.sub("", text)


def _supports(cited: str, claim: str) -> int:
    wanted = set(words(_strip_labels(claim)))
    if not wanted:
        return 0
    return int(len(wanted & set(words(cited))) / len(wanted) >= SUPPORT_SHARE)
