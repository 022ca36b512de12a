"""Rate substance, not wording (issue 18, item 4, the part done): an answer that frames the problem (who the users
are, what success is measured by, its value against a baseline) is not rated low for naming no cost or failure;
a recital of the stack is."""

from __future__ import annotations

import pytest

from interviewer.signals import evidence_points, measure, rating_from_points

FRAMED = [
    "Our users are the 40 support agents at Acme who answer payroll questions; success is the share of tickets "
    "closed without escalation, 62% now against 48% before the assistant, measured weekly from Zendesk.",
    "The people who use it are new hires in their first month. We count it working when they find the policy they "
    "need without pinging HR: HR pings fell from about 30 a week to 11 since launch.",
    "It's for the finance analysts. The metric is time to answer a variance question, measured from Jira: the "
    "baseline was two days, it is now under an hour for 70% of questions.",
]
RECITAL = [
    "We used LangChain with FAISS and GPT-4 behind FastAPI, with a Streamlit front end and Docker for deployment.",
    "It is a RAG chatbot built with LlamaIndex, OpenAI embeddings and Chroma, basically the standard stack.",
]


@pytest.mark.parametrize("answer", FRAMED)
def test_naming_users_metric_and_value_is_at_least_medium(answer: str) -> None:
    assert rating_from_points(evidence_points(measure(answer))) in {"medium", "high"}


@pytest.mark.parametrize("answer", RECITAL)
def test_a_recital_of_the_stack_is_low(answer: str) -> None:
    assert rating_from_points(evidence_points(measure(answer))) == "low"
