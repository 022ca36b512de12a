"""Putting an interview together: plan, repository index, models (with fallback) and the budget book."""

from __future__ import annotations

from pathlib import Path

from pydantic_ai.models import Model

from grader.profile.model import RepoProfile
from grader.repo_index import RepoIndex
from grader.report.model import GradingReport
from grader.scoring import walk
from interviewer.offline import offline_assessor, offline_interviewer
from interviewer.plan import build_plan
from interviewer.role import build_role_plan
from interviewer.session import InterviewSession
from llm.budget import BudgetBook, SharedAccounts
from llm.metered import MeteredCaller
from llm.select import ModelChoice, ProviderKeys, Router, build_chain
from llm.spec import ModelSpec
from rubrics.loader import LoadedRubric


def new_session(
    root: Path,
    profile: RepoProfile,
    rubric: LoadedRubric,
    *,
    model: str = "offline",
    keys: ProviderKeys | None = None,
    book: BudgetBook | None = None,
    interview_id: str = "interview",
    budget_usd: float | None = 1.0,
    report: GradingReport | None = None,
    assessor_model: str | None = None,
    override: tuple[Model, Model] | None = None,
    index: RepoIndex | None = None,
    organisation: str | None = None,
    organisation_budget_usd: float | None = None,
    time_limit_s: float | None = None,
    shared: SharedAccounts | None = None,
) -> InterviewSession:
    """`override` replaces the (interviewer, assessor) models outright, for tests and benchmarks; `index` reuses
    a repository index already built; `organisation` adds the organisation's account as a second payer; `shared`
    keeps accounts several processes spend from (the server's database), whose ceilings it enforces."""
    payers, interviewer, assessor = _callers(
        model=model,
        assessor_model=assessor_model,
        keys=keys,
        book=book,
        interview_id=interview_id,
        budget_usd=budget_usd,
        organisation=organisation,
        organisation_budget_usd=organisation_budget_usd,
        override=override,
        shared=shared,
    )
    findings = []
    if report is not None:
        findings = [
            f"{node.path}: {node.score if node.score is not None else 'not run'} — {node.explanation}"
            for node, _ in walk(report.criteria)
            if not node.children
        ]
    return InterviewSession(
        plan=build_plan(profile, rubric, report),
        profile=profile,
        index=index or RepoIndex.build(root),
        interviewer=interviewer,
        assessor=assessor,
        payers=payers,
        findings=findings,
        time_limit_s=time_limit_s,
    )


def new_role_session(
    rubric: LoadedRubric,
    topics: list[str] | None = None,
    *,
    model: str = "offline",
    keys: ProviderKeys | None = None,
    book: BudgetBook | None = None,
    interview_id: str = "interview",
    budget_usd: float | None = 1.0,
    assessor_model: str | None = None,
    override: tuple[Model, Model] | None = None,
    organisation: str | None = None,
    organisation_budget_usd: float | None = None,
    time_limit_s: float | None = None,
    shared: SharedAccounts | None = None,
) -> InterviewSession:
    """A role interview: no repository, the bank's questions on `topics` at the rubric's levels
    (interviewer.role; UnknownTopic for a topic the rubric does not cover)."""
    plan = build_role_plan(rubric, topics)
    payers, interviewer, assessor = _callers(
        model=model,
        assessor_model=assessor_model,
        keys=keys,
        book=book,
        interview_id=interview_id,
        budget_usd=budget_usd,
        organisation=organisation,
        organisation_budget_usd=organisation_budget_usd,
        override=override,
        shared=shared,
    )
    return InterviewSession(
        plan=plan,
        profile=None,
        index=None,
        interviewer=interviewer,
        assessor=assessor,
        payers=payers,
        time_limit_s=time_limit_s,
    )


def _callers(
    *,
    model: str,
    assessor_model: str | None,
    keys: ProviderKeys | None,
    book: BudgetBook | None,
    interview_id: str,
    budget_usd: float | None,
    organisation: str | None,
    organisation_budget_usd: float | None,
    override: tuple[Model, Model] | None,
    shared: SharedAccounts | None,
) -> tuple[list[str], MeteredCaller, MeteredCaller]:
    """The payers (the interview, then its organisation) and the metered interviewer and assessor."""
    keys = keys or ProviderKeys()
    book = book if book is not None else BudgetBook()
    account = f"interview:{interview_id}"
    book.open_account(account, budget_usd)
    payers = [account]
    if organisation is not None:
        payers.append(f"org:{organisation}")
        book.open_account(f"org:{organisation}", organisation_budget_usd)
    if override is not None:
        interviewer_chain = [ModelChoice(ModelSpec("offline", "override"), override[0])]
        assessor_chain = [ModelChoice(ModelSpec("offline", "override"), override[1])]
    else:
        interviewer_chain = build_chain(model, offline_interviewer, keys)
        assessor_chain = build_chain(assessor_model or model, offline_assessor, keys)
    interviewer = MeteredCaller(Router(interviewer_chain), book, shared=shared)
    assessor = MeteredCaller(Router(assessor_chain), book, shared=shared)
    return payers, interviewer, assessor
