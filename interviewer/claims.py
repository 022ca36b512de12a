"""Claims in an answer, checked against what the repository shows. A claim the code does not support is a
contradiction, recorded with the file and line where the feature should be (and is not)."""

from __future__ import annotations

import re
from collections.abc import Callable

from grader.model import Evidence
from grader.profile.model import RepoProfile
from interviewer.model import Contradiction

_WE = r"\b(we|i|our (app|service|code|system)|it)\b[^.?!\n]{0,60}"


def _first_call_site(profile: RepoProfile) -> Evidence | None:
    for usage in profile.uses("llm_sdk") + profile.uses("framework"):
        for item in usage.evidence:
            if item.line is not None and not item.path.startswith(("tests/", "test_")) and item.path.endswith(".py"):
                return item
    return profile.readme.sections.get("usage") if profile.readme else None


def _fallback_evidence(profile: RepoProfile) -> Evidence | None:
    site = _first_call_site(profile)
    if site is not None:
        return site
    if profile.readme is not None:
        return Evidence(profile.readme.path, 1, "")
    return None


Check = tuple[str, re.Pattern[str], Callable[[RepoProfile], bool], str]
"""(name, the claim's wording, whether the profile supports it, what the code lacks when it does not)"""

CHECKS: list[Check] = [
    (
        "retries",
        re.compile(_WE + r"\b(retr(y|ies|ying)|back ?off)\b", re.I),
        lambda p: bool(p.resilience.retries),
        "no retry or backoff around model calls appears in the code",
    ),
    (
        "timeouts",
        re.compile(_WE + r"\btime ?outs?\b", re.I),
        lambda p: bool(p.resilience.timeouts),
        "no timeout is passed to any client in the code",
    ),
    (
        "fallback",
        re.compile(_WE + r"\b(fall ?back|fail ?over)\b", re.I),
        lambda p: bool(p.resilience.fallbacks),
        "no fallback model or provider appears in the code",
    ),
    (
        "ceiling",
        re.compile(_WE + r"\b(hard (cap|ceiling|limit)|budget (cap|ceiling|limit)|spending (cap|limit))", re.I),
        lambda p: bool(p.cost.ceilings or p.cost.alerts_only),
        "no comparison of spend against a limit appears in the code",
    ),
    (
        "citation_validation",
        re.compile(_WE + r"\b(validat\w*|verif\w*|check\w*)\b[^.?!\n]{0,40}\bcitations?\b", re.I),
        lambda p: bool(p.citations.validation),
        "no code checks cited ids against the retrieved chunks",
    ),
    (
        "guards",
        re.compile(
            _WE + r"\b(sanitiz\w*|filter\w*|guard\w*|detect\w*|block\w*)\b[^.?!\n]{0,40}\b(injection|prompts?)", re.I
        ),
        lambda p: bool(p.injection.input_guards or p.injection.output_guards or p.uses("guardrail")),
        "no injection guard appears in the code",
    ),
    (
        "evals_in_ci",
        re.compile(_WE + r"\b(on every (pr|pull request)|in ci\b|every pull request)", re.I),
        lambda p: any(workflow.eval_steps for workflow in p.workflows),
        "no CI workflow runs an eval suite",
    ),
]

# Claims of a mechanism whose name would have to appear in the code if it existed.
MECHANISMS: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("circuit_breaker", re.compile(_WE + r"\bcircuit.?breakers?\b", re.I), ("circuit",)),
    ("reranker", re.compile(_WE + r"\bre-?rank(er|ing|s)?\b", re.I), ("rerank",)),
    ("cache", re.compile(_WE + r"\b(semantic cache|cach(e|es|ing))\b", re.I), ("cache",)),
    ("classifier", re.compile(_WE + r"\bclassifier\b", re.I), ("classif",)),
    ("hybrid_search", re.compile(_WE + r"\b(hybrid search|bm25)\b", re.I), ("bm25", "hybrid")),
]

_CASE_COUNT = re.compile(
    r"\b(\d{2,6})\s+(?:hand-?written\s+)?(?:eval(?:uation)?|golden|test)\s+(?:cases|examples|questions)", re.I
)


def find_contradictions(answer: str, profile: RepoProfile, code_text: str = "") -> list[Contradiction]:
    """Every claim in `answer` that the profile (or, for named mechanisms, the lower-cased code text) contradicts,
    with where in the repository it shows."""
    found: list[Contradiction] = []
    for name, pattern, terms in MECHANISMS:
        match = pattern.search(answer)
        if not match or _negated(match.group(0)) or not code_text or any(term in code_text for term in terms):
            continue
        evidence = _fallback_evidence(profile)
        if evidence is not None:
            found.append(
                Contradiction(
                    claim=match.group(0).strip()[:200],
                    path=evidence.path,
                    line=evidence.line,
                    excerpt=evidence.excerpt,
                    explanation=f"{name}: nothing named {terms[0]!r} appears in the code",
                )
            )
    for name, pattern, supported, explanation in CHECKS:
        match = pattern.search(answer)
        if not match or _negated(match.group(0)) or supported(profile):
            continue
        evidence = _fallback_evidence(profile)
        if evidence is None:
            continue
        found.append(
            Contradiction(
                claim=match.group(0).strip()[:200],
                path=evidence.path,
                line=evidence.line,
                excerpt=evidence.excerpt,
                explanation=f"{name}: {explanation}",
            )
        )
    count = _CASE_COUNT.search(answer)
    if count:
        claimed = int(count.group(1))
        actual = profile.evals.hand_written_cases
        if claimed > actual * 1.5 + 5:
            golden = next((g.evidence[0] for g in profile.evals.golden_sets if g.evidence), None)
            evidence = golden or _fallback_evidence(profile)
            if evidence is not None:
                found.append(
                    Contradiction(
                        claim=count.group(0),
                        path=evidence.path,
                        line=evidence.line,
                        excerpt=evidence.excerpt,
                        explanation=f"eval_count: the repository holds {actual} hand-written cases",
                    )
                )
    return found


def _negated(text: str) -> bool:
    """Negated or hypothetical: "we don't retry", "I would add a reranker" are not claims of what exists."""
    return bool(
        re.search(
            r"\b(don't|do not|didn't|did not|no|never|not|without|haven't|lack|would|could|should|"
            r"might|plan|planning|want|next|if|[a-z]+'d)\b",
            text,
            re.I,
        )
    )
