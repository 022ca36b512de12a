"""Retrieved documents laid out the ways candidates write their prompts: the stand-in model reads each document under
its own name, and the citation check finds what an app cites in what it sent.

Each prompt below is built as the app code that sends it would build it (the comment says which fixture or common
pattern): the check must not depend on one layout.
"""

from __future__ import annotations

import pytest

from grader.dynamic.citations import check_citations
from grader.dynamic.client import Reply
from sandboxes.gateway.app import GatewayCall
from sandboxes.gateway.responder import answer, context_lines

DOCS = [
    ("refunds.md", "Refunds are paid within 14 days of the return arriving at the warehouse."),
    ("shipping.md", "Parcels to Canada take five to eight working days by standard post."),
]
QUESTION = "How many days until refunds are paid?"
SYSTEM = "Answer only from the documents below and cite the source of every sentence."


def bracket_lines() -> str:  # f"[{doc_id}] {text}"
    return "\n".join(f"[{name}] {text}" for name, text in DOCS)


def bracket_above() -> str:  # f"[{chunk_id}]\n{doc}" (compose_chroma)
    return "\n\n".join(f"[{name}]\n{text}" for name, text in DOCS)


def markdown_headings() -> str:  # f"### {doc_id}\n{text}" (requests_hardcoded)
    return "\n\n".join(f"### {name}\n{text}" for name, text in DOCS)


def bracketed_headings() -> str:  # f"## [{name}]\n{text}" (ollama_client)
    return "\n\n".join(f"## [{name}]\n{text}" for name, text in DOCS)


def xml_blocks() -> str:  # f'<document source="{name}">\n{text}\n</document>' (Anthropic's long-context guide)
    return "\n".join(
        f'<document index="{i}" source="{name}">\n{text}\n</document>' for i, (name, text) in enumerate(DOCS)
    )


def xml_with_id_and_title() -> str:  # f'<excerpt id="{slug}" title="{title}">' (compose_postgres_redis)
    return "\n\n".join(f'<excerpt id="{name}" title="Policy">\n{text}\n</excerpt>' for name, text in DOCS)


def ruled() -> str:  # f"--- {article.doc} ---\n{article.text}" (azure_openai)
    return "\n\n".join(f"--- {name} ---\n{text}" for name, text in DOCS)


def source_lines() -> str:  # f"Source: {name}\n{text}" (LangChain's format_docs variants)
    return "\n\n".join(f"Source: {name}\n{text}" for name, text in DOCS)


LAYOUTS = [bracket_lines, bracket_above, markdown_headings, bracketed_headings, xml_blocks, xml_with_id_and_title,
           ruled, source_lines]  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.__name__)
def test_every_document_keeps_its_name(layout) -> None:  # type: ignore[no-untyped-def]
    lines = context_lines(f"Context:\n{layout()}\n\nQuestion: {QUESTION}")
    for name, text in DOCS:
        assert any(name in labels and line == text for labels, line in lines), (name, lines)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.__name__)
def test_the_stand_in_model_cites_the_document_it_answers_from(layout) -> None:  # type: ignore[no-untyped-def]
    reply = answer(SYSTEM, f"Context:\n{layout()}\n\nQuestion: {QUESTION}")
    assert "14 days" in reply and "[refunds.md]" in reply, reply


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.__name__)
def test_a_returned_source_that_was_sent_counts_and_one_that_was_not_does_not(layout) -> None:  # type: ignore[no-untyped-def]
    prompt = f"Context:\n{layout()}\n\nQuestion: {QUESTION}"
    call = GatewayCall(
        protocol="openai",
        endpoint="chat.completions",
        model="gpt-4o-mini",
        system=SYSTEM,
        messages=[prompt],
        input_tokens=200,
        output_tokens=20,
        modelled_latency_s=0.5,
        price_usd=0.0001,
    )
    said = "Refunds are paid within 14 days of the return arriving."
    good = Reply(question=QUESTION, status=200, seconds=0.5, answer=said, citations=[{"doc": "refunds.md", "score": 3}])
    made_up = Reply(question=QUESTION, status=200, seconds=0.5, answer=said, citations=[{"file": "warranty.md"}])
    good.calls, made_up.calls = [call], [call]
    result = check_citations([good, made_up])
    assert result.citations == 2 and result.valid == 1 and result.supported == 1, result.items


def test_text_outside_any_block_has_no_label_and_a_closing_tag_ends_its_block() -> None:
    lines = {
        line: labels
        for labels, line in context_lines(
            'You are a helpful assistant.\n<doc file="a.md">\nAlpha text.\n</doc>\nAnswer briefly.\nQuestion: why?'
        )
    }
    assert lines["You are a helpful assistant."] == () and lines["Alpha text."] == ("a.md",)
    assert lines["Answer briefly."] == ()
