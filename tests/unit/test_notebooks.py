"""Code in a candidate's Jupyter notebooks is read like code in modules, with evidence on the notebook's own lines.

The notebooks are the ones course projects commit: an evaluation notebook that generates questions per record and
scores retrieval by hit rate and MRR, a latency notebook timing a fixed question set, cells with `!pip install` and
`%%time` magics, and a tutorial notebook in docs/ that is documentation, not the project's code.
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.checks.static import HANDFUL, run_static_check
from grader.profile import build_profile
from grader.profile.notebooks import notebook_code
from rubrics.catalogue import EvalCaseCountParams, NoParams
from tests.fixtures.repos import write as write_files


def notebook(*cells: str | tuple[str, str]) -> str:
    """A notebook as Jupyter writes it (nbformat 4, indent 1, one JSON string per source line, with outputs)."""
    written = []
    for cell in cells:
        kind, source = cell if isinstance(cell, tuple) else ("code", cell)
        lines = source.splitlines(keepends=True)
        entry: dict[str, object] = {"cell_type": kind, "metadata": {}, "source": lines}
        if kind == "code":
            entry |= {"execution_count": 1, "outputs": [{"name": "stdout", "output_type": "stream", "text": ["ok\n"]}]}
        written.append(entry)
    document = {"cells": written, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1) + "\n"


EVALUATION = notebook(
    ("markdown", "# Retrieval evaluation\n\nGround truth: 5 questions per record, generated with the LLM.\n"),
    "!pip install -q minsearch openai\n",
    "%%time\nimport json\n\nimport pandas as pd\nfrom openai import OpenAI\n\nclient = OpenAI()\n",
    "def generate_questions(record):\n"
    "    prompt = PROMPT.format(**record)\n"
    "    reply = client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': prompt}])\n"
    "    return json.loads(reply.choices[0].message.content)\n",
    "def hit_rate(relevance_total):\n"
    "    return sum(True in line for line in relevance_total) / len(relevance_total)\n"
    "\n"
    "\n"
    "def mrr(relevance_total):\n"
    "    total = 0.0\n"
    "    for line in relevance_total:\n"
    "        for rank, hit in enumerate(line):\n"
    "            if hit:\n"
    "                total += 1 / (rank + 1)\n"
    "    return total / len(relevance_total)\n",
    "relevance = [[d['id'] == q['id'] for d in search(q['question'])] for q in ground_truth]\n"
    "print(hit_rate(relevance), mrr(relevance))\n",
)

LATENCY = notebook(
    "import time\n\nimport numpy as np\nimport requests\n",
    "questions = ['What is the refund window?', 'Do you ship to Canada?', 'How do I reset my password?']\n"
    "timings = []\n"
    "for question in questions * 20:\n"
    "    started = time.perf_counter()\n"
    "    requests.post('http://localhost:8000/ask', json={'question': question}, timeout=30)\n"
    "    timings.append(time.perf_counter() - started)\n",
    "print('p50', np.percentile(timings, 50), 'p95', np.percentile(timings, 95))\n",
)

TUTORIAL = notebook(
    "from pydantic import BaseModel, Field\nfrom langchain_openai import ChatOpenAI\n",
    "class Answer(BaseModel):\n"
    "    answer: str\n"
    "    sources: list[str] = Field(description='ids of the chunks the answer cites')\n",
)


def write(root: Path, files: dict[str, str]) -> Path:
    write_files(root, dict(files))
    return root


def test_an_evaluation_notebook_is_an_eval_run_by_hand(tmp_path: Path) -> None:
    root = write(tmp_path, {"app.py": "import streamlit as st\n", "notebooks/evaluation.ipynb": EVALUATION})
    score = run_static_check("eval_case_count", build_profile(root), EvalCaseCountParams(minimum=50))
    assert score.value == HANDFUL, score.explanation
    cited = [item for item in score.evidence if item.path == "notebooks/evaluation.ipynb"]
    assert cited, score.evidence
    # The evidence is the notebook file's own line, where a reviewer opening the .ipynb finds the definition.
    lines = EVALUATION.splitlines()
    assert all("def hit_rate" in lines[item.line - 1] or "def mrr" in lines[item.line - 1] for item in cited)


def test_a_latency_notebook_computes_percentiles_over_a_fixed_question_set(tmp_path: Path) -> None:
    root = write(tmp_path, {"app.py": "import streamlit as st\n", "notebooks/latency.ipynb": LATENCY})
    score = run_static_check("latency_measurement", build_profile(root), NoParams())
    assert score.value is not None and score.value >= 0.66, score.explanation


def test_magics_and_a_broken_cell_do_not_lose_the_notebook(tmp_path: Path) -> None:
    broken = notebook("def broken(:\n    pass\n", "%timeit search('x')\n", *json.loads(LATENCY)["cells"][0]["source"])
    code = notebook_code(broken)
    assert code is not None and "import numpy as np" in code and "broken" not in code and "timeit" not in code
    assert len(code.splitlines()) == len(broken.splitlines())
    assert notebook_code("{not json") is None and notebook_code('{"cells": 3}') is None


def test_a_notebook_in_docs_is_documentation_not_the_projects_code(tmp_path: Path) -> None:
    root = write(tmp_path, {"app.py": "import streamlit as st\n", "docs/tutorials/structured.ipynb": TUTORIAL})
    assert run_static_check("citation_structure", build_profile(root), NoParams()).value == 0.0
    root = write(tmp_path / "in-code", {"app.py": "import streamlit as st\n", "notebooks/structured.ipynb": TUTORIAL})
    assert run_static_check("citation_structure", build_profile(root), NoParams()).value


def test_a_notebook_is_never_the_service_viva_starts(tmp_path: Path) -> None:
    served = notebook(
        "from fastapi import FastAPI\n\napp = FastAPI()\n", "@app.get('/ask')\ndef ask(q: str):\n    return q\n"
    )
    profile = build_profile(write(tmp_path, {"notebooks/try_api.ipynb": served}))
    assert not profile.routes and not profile.starts
