"""Prompts a JavaScript or TypeScript app keeps in template literals are read like prompts in Python.

The files are what a Next.js or Node RAG project commits: a chain module with its QA template, an API route that
builds the system prompt with `${}` substitutions, and — not prompts — a bundled file and backticks in comments and
strings.
"""

from __future__ import annotations

from pathlib import Path

from grader.checks.static import run_static_check
from grader.profile import build_profile
from grader.profile.script_prompts import template_literals
from rubrics.catalogue import NoParams
from tests.fixtures.repos import write as write_files

CHAIN = """\
import { ChatOpenAI } from '@langchain/openai';
import { ChatPromptTemplate } from '@langchain/core/prompts';

// Prompts live here so the route stays small. Don't use `eval` on model output.
const CONDENSE_TEMPLATE = `Given the following conversation and a follow up question, rephrase the follow up question
to be a standalone question.

Chat History: {chat_history}
Follow Up Input: {question}
Standalone question:`;

const QA_TEMPLATE = `You are an expert researcher. Use the following pieces of context to answer the question.
If the question is not related to the context, politely say you only answer questions about the documents.

<context>
  {context}
</context>

Question: {question}
Helpful answer in markdown:`;

export const answerPrompt = ChatPromptTemplate.fromTemplate(QA_TEMPLATE);
"""

ROUTE = """\
import Anthropic from '@anthropic-ai/sdk';

export async function POST(request: Request) {
  const { question, chunks } = await request.json();
  const numbered = chunks.map((chunk: { id: string; text: string }, i: number) => `[${i + 1}] ${chunk.text}`);
  const system = `You are a support assistant. Answer only from the sources below and cite them inline as [1], [2]
after each sentence that uses them. Never invent a source number.

Sources:
${numbered.join('\\n')}`;
  const reply = await client.messages.create({ model: 'claude-sonnet-4-5', system, max_tokens: 800,
    messages: [{ role: 'user', content: question }] });
  return Response.json({ answer: reply.content });
}
"""


def write(root: Path, files: dict[str, str]) -> Path:
    write_files(root, dict(files))
    return root


def test_a_fenced_context_in_a_typescript_template_is_an_injection_gesture(tmp_path: Path) -> None:
    profile = build_profile(write(tmp_path, {"utils/makechain.ts": CHAIN, "package.json": "{}"}))
    score = run_static_check("injection_guards", profile, NoParams())
    assert score.value == 0.4, score.explanation
    lines = CHAIN.splitlines()
    assert any("<context>" in lines[item.line - 1] or "not related" in lines[item.line - 1] for item in score.evidence)


def test_a_citation_rule_in_a_route_s_system_prompt_counts(tmp_path: Path) -> None:
    """The prompt asks for [n] markers but the response carries only the answer text: the guide's level 1, "the
    prompt asks the model to cite but nothing uses it" — and not 0, which is what an unread prompt would give."""
    profile = build_profile(write(tmp_path, {"app/api/chat/route.ts": ROUTE, "package.json": "{}"}))
    score = run_static_check("citation_structure", profile, NoParams())
    assert score.value == 0.34, score.explanation
    assert [item.line for item in score.evidence if item.path == "app/api/chat/route.ts"] == [6]


def test_backticks_in_comments_and_strings_are_not_prompts() -> None:
    text = (
        "// run `npm test` before you answer the question of whether the context is right\n"
        'const hint = "use `answer` and `context` in the question you ask the assistant please";\n'
        "const shell = `ls -la`;\n"
    )
    assert template_literals(text) == []
    assert [line for line, _ in template_literals(CHAIN)] == [5, 12]


def test_a_bundled_file_is_not_read_for_prompts() -> None:
    bundle = "var a=1;" * 400 + "const p=`You are an assistant. Answer the question from the context given here.`;\n"
    assert template_literals(bundle) == []
