"""The interviewer: a plan grounded in the repository and the grading findings, a pydantic-ai agent that asks one
question at a time and checks claims against the code, per-answer assessment gated by code, and a report.

May import `grader`, `sandboxes`, `llm`, `rubrics`; never `server`.
"""
