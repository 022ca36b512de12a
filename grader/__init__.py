"""The grader: fetch a repository, profile it, run checks, score against a rubric, report with evidence.

May import `sandboxes`, `llm` and `rubrics`; never `server` or `interviewer` (docs/ARCHITECTURE.md).
"""
