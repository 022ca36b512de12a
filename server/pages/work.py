"""Pages about one piece of work, for its candidate and the managers of its organisation: a submission (live
progress, then the report), the graded code at a line, an interview and its report."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from grader.model import Evidence
from grader.report.format import evidence_url
from grader.report.model import GradingReport
from grader.report.render_html import render_html_body
from server.db.models import Interview, Job, Position, ReviewRequest, RubricVersion, ScoreOverride, Submission, User
from server.errors import NotFound
from server.jobs.worker import progress_of, snapshot_path
from server.pages.render import page_opt, render
from server.schemas import PathId
from server.services import interviews, reviews
from server.services.submissions import visible_submission
from server.web import state_of

USER, CANDIDATE = page_opt("user"), page_opt("candidate")
MAX_SOURCE_BYTES = 1_000_000
MAX_SOURCE_PATH = 1024
"""Characters in a source path we look up (Linux allows 4096 bytes; no repository needs a path this long)."""
MAX_NAME_BYTES = 255
STAGES = ("fetch", "profile", "checks", "sandbox", "score")


@get("/submissions/{submission_id:int}", opt=USER, include_in_schema=False)
async def submission_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
) -> Response[str]:
    submission = await visible_submission(db, user, submission_id)
    job = await _job(db, submission_id)
    rubric = await db.get(RubricVersion, submission.rubric_version_id)
    position = await db.get(Position, submission.position_id) if submission.position_id else None
    context: dict[str, Any] = {
        "submission": submission,
        "progress": progress_of(job),
        "stages": STAGES,
        "rubric": rubric,
        "position": position,
        "report": None,
        "report_body": "",
        "effective": None,
        "overrides": [],
        "leaves": [],
        "versions": [],
        "interviews": [],
        "reviews": [],
    }
    if submission.report is not None:
        report = msgspec.json.decode(submission.report, type=GradingReport)
        kept = snapshot_path(state_of(request).settings, submission_id).is_dir()
        context["report"] = report
        context["report_body"] = render_html_body(report, _evidence_link(submission_id, kept, report))
        context["effective"] = await reviews.effective_scores(db, submission)
        context["leaves"] = [node for node in _walk(report.criteria) if not node.children]
        overrides = await db.exec(
            select(ScoreOverride).where(ScoreOverride.submission_id == submission_id).order_by(col(ScoreOverride.id))
        )
        context["overrides"] = list(overrides.all())
    if user.role != "candidate":
        rows = await db.exec(
            select(RubricVersion)
            .where(
                (col(RubricVersion.organisation_id).is_(None)) | (RubricVersion.organisation_id == user.organisation_id)
            )
            .order_by(col(RubricVersion.key), col(RubricVersion.version))
        )
        context["versions"] = list(rows.all())
    context["interviews"] = list(
        (
            await db.exec(
                select(Interview).where(Interview.submission_id == submission_id).order_by(col(Interview.id).desc())
            )
        ).all()
    )
    context["reviews"] = list(
        (await db.exec(select(ReviewRequest).where(ReviewRequest.submission_id == submission_id))).all()
    )
    return render(request, "work/submission.html.j2", **context)


@get("/submissions/{submission_id:int}/source/{file_path:path}", opt=USER, include_in_schema=False)
async def source_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    submission_id: PathId,
    file_path: FromPath[str],
) -> Response[str]:
    """The graded code, one file, with a link target on every line (`#L12`). Only regular files inside the kept
    snapshot: a candidate's symlink to a host file, or `..`, is refused."""
    submission = await visible_submission(db, user, submission_id)
    root = snapshot_path(state_of(request).settings, submission_id)
    relative = file_path.lstrip("/")
    text, problem = _read_source(root, relative)
    lines = text.splitlines() if text is not None else []
    return render(
        request,
        "work/source.html.j2",
        status_code=200 if text is not None else 404,
        submission=submission,
        file_path=relative,
        lines=lines,
        problem=problem,
    )


@get("/interviews/{interview_id:int}", opt=CANDIDATE, include_in_schema=False)
async def interview_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    interview_id: PathId,
) -> Response[str]:
    row = await db.get(Interview, interview_id)
    if row is None or row.candidate_id != user.id:
        raise NotFound("no such interview")
    submission = await db.get(Submission, row.submission_id) if row.submission_id is not None else None
    return render(
        request,
        "work/interview.html.j2",
        interview=row,
        submission=submission,
        role=row.topics.replace(",", ", ") or "all topics" if row.submission_id is None else None,
        recordings_days=state_of(request).settings.retention.recordings_days,
    )


@get("/interviews/{interview_id:int}/report", opt=USER, include_in_schema=False)
async def interview_report_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    interview_id: PathId,
) -> Response[str]:
    row = await interviews.visible_interview(db, user, interview_id)
    report = msgspec.json.decode(row.report) if row.report else None
    transcript = msgspec.json.decode(row.state)["transcript"] if row.state else msgspec.json.decode(row.transcript)
    started = transcript[0]["at"] if transcript else 0.0
    for turn in transcript:
        turn["clock"] = _clock(turn["at"] - started)
    quoted = {}  # each quote's place in the interview, so a reader can find it (and, in a voice interview, hear it)
    for dimension in (report or {}).get("dimensions", []):
        for words in dimension["quotes"]:
            said = next((t for t in transcript if t["role"] == "candidate" and words in t["text"]), None)
            quoted[words] = said["clock"] if said else ""
    return render(
        request,
        "work/interview_report.html.j2",
        interview=row,
        report=report,
        transcript=transcript,
        quoted=quoted,
        low_confidence=state_of(request).settings.interview.low_confidence,
    )


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _evidence_link(submission_id: int, kept: bool, report: GradingReport) -> Any:
    def link(item: Evidence) -> str | None:
        if item.path.startswith("("):
            return None  # a measured fact ("(sandbox) app log"), not a file
        if kept:
            anchor = f"#L{item.line}" if item.line is not None else ""
            return f"/submissions/{submission_id}/source/{quote(item.path, safe='/')}{anchor}"
        return evidence_url(report.repo, item)

    return link


def _read_source(root: Path, relative: str) -> tuple[str | None, str]:
    if not root.is_dir():
        return None, "The graded code is no longer kept for this submission."
    if not _plausible_path(relative):
        return None, "No such file in the graded code."
    try:
        return _read_kept_file(root, relative)
    except OSError:  # whatever else the filesystem refuses (a loop, permissions): not a file we can show
        return None, "No such file in the graded code."


def _plausible_path(relative: str) -> bool:
    """A path a repository could hold and the filesystem could take: no control characters (a NUL makes Python's
    file calls raise), no unpaired surrogates (from undecodable bytes), no `..`, and not too long."""
    if not relative or len(relative) > MAX_SOURCE_PATH or ".." in Path(relative).parts:
        return False
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in relative):
        return False
    return all(len(part.encode()) <= MAX_NAME_BYTES for part in Path(relative).parts)


def _read_kept_file(root: Path, relative: str) -> tuple[str | None, str]:
    base = root.resolve()
    candidate = root / relative
    parts = Path(relative).parts
    # Refuse links anywhere on the way: the repository is the candidate's, and a link could point at a host file.
    walked = root
    for part in parts:
        walked = walked / part
        if walked.is_symlink():
            return None, "This path is a symbolic link in the repository; Viva does not follow links."
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base) or not resolved.is_file():
        return None, "No such file in the graded code."
    data = resolved.read_bytes()[: MAX_SOURCE_BYTES + 1]
    if len(data) > MAX_SOURCE_BYTES:
        return None, "This file is too large to show here."
    if b"\0" in data[:8192]:
        return None, "This is a binary file."
    return data.decode("utf-8", errors="replace"), ""


def _walk(criteria: list[Any]) -> list[Any]:
    found = []
    for node in criteria:
        found.append(node)
        found.extend(_walk(node.children))
    return found


async def _job(db: AsyncSession, submission_id: int) -> Job | None:
    return (await db.exec(select(Job).where(Job.submission_id == submission_id))).first()


ROUTES = [submission_page, source_page, interview_page, interview_report_page]
