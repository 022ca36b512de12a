"""What each judge check looks for: a list of aspects, each a question for the model and the words a cited
line must contain for the citation to support it (a mechanical check that the quote says what is claimed).

`ASPECTS` is the judge kind's check registry: every judge check runs the same code (grader.judge.run), reading
its own aspects."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.checks.registry import CheckRegistry


@dataclass(frozen=True)
class Aspect:
    id: str
    question: str
    support: re.Pattern[str]


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


ASPECTS: CheckRegistry[list[Aspect]] = CheckRegistry(
    "judge",
    {
        "readme_clarity": [
            Aspect(
                "install",
                "Does the README say how to install the dependencies?",
                _words(r"pip install|requirements|poetry|uv sync|npm install|docker (build|compose)|venv|setup"),
            ),
            Aspect(
                "run",
                "Does it say how to start the app?",
                _words(r"uvicorn|gunicorn|python3? \S+\.py|flask run|docker run|make run|streamlit run|npm start"),
            ),
            Aspect(
                "configure",
                "Does it say what configuration or keys are needed?",
                _words(r"api[_ ]key|export [A-Z_]+|\.env|environment variable|config"),
            ),
            Aspect(
                "use",
                "Does it show a request or an example of use?",
                _words(r"curl|example|request|http://|localhost|/ask|/query|/chat"),
            ),
            Aspect(
                "evaluate", "Does it say how to run the evaluation?", _words(r"eval|golden|benchmark|pass rate|test")
            ),
        ],
        "tradeoffs_documented": [
            Aspect(
                "choice",
                "Is a design choice stated together with its alternative?",
                _words(r"instead of|rather than|cho(se|sen)|over |versus|\bvs\.?|alternative|would|simpler?\b|because"),
            ),
            Aspect(
                "cost",
                "Is a cost or downside of a choice named?",
                _words(r"cost|slower|downside|drawback|trade-?off|at the (price|cost)|expense|latency|but "),
            ),
            Aspect(
                "limitation",
                "Is a limitation or failure case admitted?",
                _words(r"limitation|fails?|does not|doesn't|splits?|miss(es)?|weakness|known issue|not yet"),
            ),
        ],
        "failure_modes_documented": [
            Aspect(
                "provider",
                "Is provider failure (timeouts, rate limits, outages) and its handling described?",
                _words(r"timeout|rate.?limit|429|outage|retr(y|ies)|backoff|fall ?back"),
            ),
            Aspect(
                "retrieval",
                "Is bad retrieval or hallucination discussed?",
                _words(r"wrong chunk|recall|retriev|hallucinat|do(es)? not know|cite"),
            ),
            Aspect(
                "budget",
                "Is what happens at the spending limit described?",
                _words(r"budget|ceiling|402|spend|cost limit"),
            ),
        ],
    },
)
