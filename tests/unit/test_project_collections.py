"""A repository of several projects is read the way the labelling guide says a reviewer reads it: a feature counts
when it is in the project the README presents as the main one, or, with no main one, in most of its projects.

The repositories are what candidates submit: a course's weekly projects in one repository, a set of quickstarts, a
monorepo whose README runs one app and keeps experiments beside it, and — not collections at all — a backend and a
frontend of one app, or an app at the root with an `examples/` folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.pipeline import GradeOptions, grade
from grader.profile.projects import find_layout
from grader.report.model import GradingReport
from grader.scoring import walk
from rubrics.registry import resolve_rubric
from tests.fixtures.repos import write as write_files

QUESTIONS = [
    ("How many days of annual leave do new staff get?", "25 days"),
    ("Can I carry unused leave into next year?", "up to 5 days"),
    ("Who approves remote work requests?", "your line manager"),
    ("What is the notice period after probation?", "one month"),
    ("Is there a cycle-to-work scheme?", "yes, through payroll"),
    ("How do I claim travel expenses?", "through the expenses portal within 30 days"),
    ("What happens if I am sick on a Monday?", "call your manager before 9am"),
    ("Are contractors covered by the health plan?", "no"),
    ("When are salaries paid?", "on the last working day of the month"),
    ("Can I buy extra holiday?", "up to 3 days a year"),
    ("What is the policy on second jobs?", "allowed with written approval"),
    ("How long is paternity leave?", "two weeks at full pay"),
]
GOLDENS = json.dumps([{"question": question, "expected": expected} for question, expected in QUESTIONS], indent=2)

EVAL_TEST = """\
import json
from pathlib import Path

import pytest

from app import answer

CASES = json.loads((Path(__file__).parent / "golden.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_answer_matches_reference(case):
    assert case["expected"].split()[0] in answer(case["question"])
"""

SUPPORT_BOT = """\
from fastapi import FastAPI
from openai import OpenAI

app = FastAPI()
client = OpenAI(timeout=20, max_retries=3)


@app.post("/ask")
def ask(body: dict) -> dict:
    return {"answer": answer(body["question"])}


def answer(question: str) -> str:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return reply.choices[0].message.content
"""

PDF_CHAT = """\
import streamlit as st
from langchain_community.document_loaders import PyPDFLoader

st.title("Chat with your PDF")
uploaded = st.file_uploader("PDF")
question = st.text_input("Question")
if uploaded and question:
    st.write(chain.invoke(question))
"""

AGENT = """\
from langgraph.prebuilt import create_react_agent

agent = create_react_agent("openai:gpt-4o", tools=[search])

if __name__ == "__main__":
    print(agent.invoke({"messages": [("user", input("> "))]}))
"""

CI_FOR_ONE = """\
name: week5 evals
on: [pull_request]
jobs:
  evals:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pip install -r week5-support-bot/requirements.txt
      - run: cd week5-support-bot && pytest tests
"""


def write(root: Path, files: dict[str, str]) -> Path:
    write_files(root, dict(files))
    return root


def course_repository(root: Path) -> Path:
    """Three weekly projects, each with its own README; only week 5 has a golden set, CI, a container, pins."""
    return write(
        root,
        {
            "README.md": "# LLM engineering course\n\nMy projects from the course, one folder per week.\n\n"
            "- [Week 2: chat with a PDF](week2-pdf-chat)\n- [Week 5: support bot](week5-support-bot)\n"
            "- [Week 8: research agent](week8-research-agent)\n",
            ".github/workflows/week5.yml": CI_FOR_ONE,
            "week2-pdf-chat/README.md": "# PDF chat\n\n```\npip install -r requirements.txt\nstreamlit run app.py\n```\n",
            "week2-pdf-chat/requirements.txt": "streamlit\nlangchain-community\npypdf\n",
            "week2-pdf-chat/app.py": PDF_CHAT,
            "week5-support-bot/README.md": "# Support bot\n\n```\npip install -r requirements.txt\n"
            "uvicorn app:app\n```\n",
            "week5-support-bot/requirements.txt": "fastapi==0.115.0\nopenai==1.51.0\nuvicorn==0.30.6\n",
            "week5-support-bot/Dockerfile": "FROM python:3.11-slim\nCOPY . .\nRUN pip install -r requirements.txt\n"
            'CMD ["uvicorn", "app:app", "--host", "0.0.0.0"]\n',
            "week5-support-bot/app.py": SUPPORT_BOT,
            "week5-support-bot/tests/golden.json": GOLDENS,
            "week5-support-bot/tests/test_eval.py": EVAL_TEST,
            "week8-research-agent/README.md": "# Research agent\n\n```\nuv run agent.py\n```\n",
            "week8-research-agent/pyproject.toml": '[project]\nname = "agent"\ndependencies = ["langgraph"]\n',
            "week8-research-agent/agent.py": AGENT,
        },
    )


@pytest.fixture(scope="module")
def capstone():  # type: ignore[no-untyped-def]
    return resolve_rubric("ai-engineer-capstone")


def static_grade(root: Path, rubric, scratch: Path) -> GradingReport:  # type: ignore[no-untyped-def]
    return grade(str(root), rubric, scratch, GradeOptions(allow_local=True, static_only=True))


def leaf(report: GradingReport, path: str):  # type: ignore[no-untyped-def]
    return next(node for node, _ in walk(report.criteria) if node.path == path)


def test_a_course_repository_scores_what_most_of_its_projects_show(tmp_path: Path, capstone) -> None:  # type: ignore[no-untyped-def]
    root = course_repository(tmp_path / "course")
    report = static_grade(root, capstone, tmp_path / "scratch")

    # Week 5 alone, as its own repository, has the golden set, a container and pinned dependencies ...
    alone = static_grade(_copy(root / "week5-support-bot", tmp_path / "alone"), capstone, tmp_path / "scratch-alone")
    assert leaf(alone, "evals.cases").score > 0
    assert leaf(alone, "engineering.container").score == 1.0
    # ... but one project of three is not "most of its projects": the course repository does not get them.
    for path in ("evals.cases", "engineering.container", "engineering.pinned", "engineering.api"):
        assert leaf(report, path).score == 0.0, path
    cases = leaf(report, "evals.cases")
    assert "3 projects" in cases.explanation and "none presented as the main one" in cases.explanation
    layout = next(flag for flag in report.flags if flag.kind == "project_layout")
    assert {item.path for item in layout.evidence} == {"week2-pdf-chat", "week5-support-bot", "week8-research-agent"}


def test_two_of_three_projects_is_most_of_them(tmp_path: Path, capstone) -> None:  # type: ignore[no-untyped-def]
    root = course_repository(tmp_path / "course")
    write(root, {"week8-research-agent/Dockerfile": 'FROM python:3.11-slim\nCOPY . .\nCMD ["python", "agent.py"]\n'})
    report = static_grade(root, capstone, tmp_path / "scratch")
    container = leaf(report, "engineering.container")
    assert container.score == 1.0
    # The evidence is a real file of the repository, not a path inside one project's folder.
    assert all((root / item.path).is_file() for item in container.evidence)
    assert {item.path.split("/")[0] for item in container.evidence} <= {"week5-support-bot", "week8-research-agent"}


def test_the_project_the_readme_runs_is_the_one_graded(tmp_path: Path, capstone) -> None:  # type: ignore[no-untyped-def]
    root = write(
        tmp_path / "monorepo",
        {
            "README.md": "# Policy assistant\n\nAsk questions about the staff handbook.\n\n## Run\n\n"
            "```bash\nmake serve\n```\n\n## Other experiments\n\n- [prompt playground](playground) and "
            "[an early prototype](prototype-v1), kept for reference.\n",
            "Makefile": "serve:\n\tcd assistant && uvicorn app:app --reload\n",
            "assistant/README.md": "# The assistant\n",
            "assistant/requirements.txt": "fastapi==0.115.0\nopenai==1.51.0\nuvicorn==0.30.6\n",
            "assistant/app.py": SUPPORT_BOT,
            "assistant/tests/golden.json": GOLDENS,
            "assistant/tests/test_eval.py": EVAL_TEST,
            "playground/README.md": "# Playground\n",
            "playground/requirements.txt": "streamlit\nlangchain\n",
            "playground/app.py": PDF_CHAT,
            "prototype-v1/README.md": "# Prototype\n",
            "prototype-v1/requirements.txt": "openai\n",
            "prototype-v1/agent.py": AGENT,
        },
    )
    layout = find_layout(root)
    assert layout.projects == ("assistant", "playground", "prototype-v1")
    assert layout.main == "assistant"
    report = static_grade(root, capstone, tmp_path / "scratch")
    assert leaf(report, "evals.cases").score > 0
    # The experiments' unpinned requirements do not count against the app the README runs.
    pinned = leaf(report, "engineering.pinned")
    assert pinned.score == 1.0, pinned.explanation
    assert "assistant" in pinned.explanation


def test_a_backend_and_a_frontend_are_one_project(tmp_path: Path, capstone) -> None:  # type: ignore[no-untyped-def]
    root = write(
        tmp_path / "fullstack",
        {
            "README.md": "# Handbook chat\n\n```\ndocker compose up\n```\n",
            "docker-compose.yml": "services:\n  api:\n    build: ./backend\n  web:\n    build: ./frontend\n",
            "backend/README.md": "# API\n",
            "backend/requirements.txt": "fastapi==0.115.0\nopenai==1.51.0\n",
            "backend/app.py": SUPPORT_BOT,
            "backend/tests/golden.json": GOLDENS,
            "backend/tests/test_eval.py": EVAL_TEST,
            "frontend/README.md": "# Web client\n\n```\nnpm install\nnpm run dev\n```\n",
            "frontend/package.json": '{"name": "web", "dependencies": {"react": "18.3.1"}}\n',
            "frontend/src/App.tsx": "export default function App() { return <main>Ask</main>; }\n",
        },
    )
    assert not find_layout(root).collection
    report = static_grade(root, capstone, tmp_path / "scratch")
    assert leaf(report, "evals.cases").score > 0
    assert not [flag for flag in report.flags if flag.kind == "project_layout"]


def test_an_app_at_the_root_with_examples_beside_it_is_one_project(tmp_path: Path) -> None:
    root = write(
        tmp_path / "app-with-examples",
        {
            "README.md": "# Retrieval service\n",
            "main.py": SUPPORT_BOT,
            "requirements.txt": "fastapi==0.115.0\n",
            "examples/streamlit-client/README.md": "# Streamlit client\n",
            "examples/streamlit-client/app.py": PDF_CHAT,
            "examples/cli/README.md": "# CLI\n",
            "examples/cli/agent.py": AGENT,
        },
    )
    assert not find_layout(root).collection


def test_quickstarts_with_no_main_one_are_a_collection(tmp_path: Path) -> None:
    """Grouped one level down (the way cookbooks group recipes) and listed by the README as a menu: the command it
    shows for one of them is an example of how to run each, not a main project."""
    root = write(
        tmp_path / "cookbook",
        {
            "README.md": "# Cookbook\n\nEach recipe has its own README and setup.\n\n"
            "- [PDF QA](recipes/pdf-qa)\n- [Support](./recipes/support/README.md)\n- [Old agent](archive/old-agent)\n\n"
            "```bash\ncd recipes/pdf-qa  # or any other recipe\npip install -r requirements.txt\n```\n",
            "recipes/README.md": "# Recipes\n",
            "recipes/pdf-qa/README.md": "# PDF QA\n",
            "recipes/pdf-qa/app.py": PDF_CHAT,
            "recipes/support/README.md": "# Support\n",
            "recipes/support/app.py": SUPPORT_BOT,
            "archive/old-agent/README.md": "# Old agent\n",
            "archive/old-agent/agent.py": AGENT,
        },
    )
    layout = find_layout(root)
    assert layout.projects == ("archive/old-agent", "recipes/pdf-qa", "recipes/support")
    assert layout.main is None
    assert "menu" in layout.reason


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
