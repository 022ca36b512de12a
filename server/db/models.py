"""The tables. SQLModel for tables only: the API speaks msgspec Structs (server/schemas.py), and reports are stored
whole as JSON next to the few columns that are queried.

Times are aware UTC everywhere (`utcnow()`): SQLModel's UTCDateTime refuses naive values and gives back UTC on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

Role = Literal["candidate", "manager", "admin"]
ROLES: tuple[Role, ...] = ("candidate", "manager", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class OrganisationSpend(SQLModel, table=True):
    """What an organisation's interviews have spent on models, and what calls in flight have reserved: the one place
    every server process checks the organisation's ceiling against (server/services/spend.py)."""

    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True)
    spent_usd: float = 0.0
    reserved_usd: float = 0.0


class User(SQLModel, table=True):
    """A person. Managers belong to one organisation; candidates to none (they join positions); admins run the
    deployment."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, sa_column_kwargs={"unique": True}, index=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    password_hash: str = Field(max_length=400)
    ai_notice_accepted_at: datetime | None = None
    """When the candidate acknowledged that an AI grades and interviews them (required before they start)."""
    created_at: datetime = Field(default_factory=utcnow)
    disabled: bool = False


class AuthSession(SQLModel, table=True):
    """A browser session: the cookie holds a random token; only its hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class ApiToken(SQLModel, table=True):
    """A bearer token for the CLI and scripts; shown once, stored as a hash."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=12)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked: bool = False


class Invitation(SQLModel, table=True):
    """An emailed invitation to join an organisation with a role (managers), used once."""

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    email: str = Field(max_length=320)
    role: str = Field(max_length=20)
    invited_by: int = Field(foreign_key="user.id")
    expires_at: datetime
    accepted_at: datetime | None = None


class PasswordReset(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    expires_at: datetime
    used_at: datetime | None = None


class SignupRequest(SQLModel, table=True):
    """A sign-up waiting for its emailed link: the account exists only once the link is used, so the answer to a
    sign-up never says whether the address already has an account."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=400)
    invite_code: str | None = Field(default=None, max_length=100)
    code_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    expires_at: datetime
    used_at: datetime | None = None


class OutboxMail(SQLModel, table=True):
    """Mail Viva sent (or, without SMTP, would have sent): the admin reads it here."""

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str = ""


class RubricVersion(SQLModel, table=True):
    """One version of a rubric, immutable once a grading used it (an edit makes the next version)."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    """None for the built-in rubrics every organisation can use."""
    key: str = Field(max_length=64, index=True)
    version: int
    title: str = Field(default="", max_length=200)
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    content_hash: str = Field(max_length=80)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    used: bool = False

    __table_args__ = (sa.UniqueConstraint("organisation_id", "key", "version", name="uq_rubric_version"),)


class Position(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    title: str = Field(max_length=200)
    rubric_version_id: int = Field(foreign_key="rubricversion.id")
    interview_rubric_version_id: int | None = Field(default=None, foreign_key="rubricversion.id")
    """The interview rubric (and its version) this position's candidates are interviewed with; None: the default."""
    invite_code: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    open: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Candidacy(SQLModel, table=True):
    """A candidate who joined a position through its invite link."""

    id: int | None = Field(default=None, primary_key=True)
    position_id: int = Field(foreign_key="position.id", index=True)
    candidate_id: int = Field(foreign_key="user.id", index=True)
    joined_at: datetime = Field(default_factory=utcnow)

    __table_args__ = (sa.UniqueConstraint("position_id", "candidate_id", name="uq_candidacy"),)


class Batch(SQLModel, table=True):
    """A manager's list of repositories for a position, each graded as a submission of its own, and the manager's
    attestation that the candidates agreed to automated grading (kept verbatim, with who attested and when)."""

    id: int | None = Field(default=None, primary_key=True)
    position_id: int = Field(foreign_key="position.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    created_by: int = Field(foreign_key="user.id")
    attestation: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    attested_at: datetime = Field(default_factory=utcnow)
    total: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Submission(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="user.id", index=True)
    position_id: int | None = Field(default=None, foreign_key="position.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    target: str = Field(max_length=500)
    """The repository as submitted, never with credentials (an archive is `archive:<sha256>`)."""
    rubric_version_id: int = Field(foreign_key="rubricversion.id")
    batch_id: int | None = Field(default=None, foreign_key="batch.id", index=True)
    """The manager's batch this grading came in (None: the candidate submitted it)."""
    prefetched: str | None = Field(default=None, max_length=80)
    """A private repository cloned with its token by the web process that received it (server/services/prefetch.py):
    the key of that snapshot in the shared directory, which the job grades. The token itself is stored nowhere."""
    status: str = Field(default="queued", max_length=20, index=True)
    score: float | None = None
    coverage: float | None = None
    error: str = ""
    report: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    """The whole report.json."""
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Job(SQLModel, table=True):
    """A grading job. Durable: the row is the queue. A worker takes a queued job (or one whose lease lapsed because
    its server died) by a conditional update, renews the lease while it runs, and writes the outcome."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    state: str = Field(default="queued", max_length=20, index=True)
    attempts: int = 0
    worker: str = Field(default="", max_length=100)
    lease_until: datetime | None = None
    cancel_requested: bool = False
    pinned_to: str | None = Field(default=None, max_length=100)
    """The server process holding this job's private-repository token (memory only): only it may take the job
    while it is queued. Its lease lapsing (the process died) frees the job, and the retry says the token is gone."""
    progress: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False, server_default="{}"))
    """{"stage": ..., "done": n, "total": n} as JSON."""
    priority: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    """Higher first: a candidate's own grading before a manager's batch (server.jobs.engine.PRIORITIES)."""
    organisation_id: int | None = Field(default=None, index=True)
    """The submission's organisation, copied here so that the running limit counts jobs without a join."""
    engine_ref: int | None = None
    """The job engine's own id for this job (Procrastinate's job id), when an engine carries it."""
    handed_back: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    """Attempts a stopping worker handed back unfinished: they spent an attempt number (fencing needs it to grow)
    but do not count against the attempts a job is allowed."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkerHost(SQLModel, table=True):
    """A grading worker process and the Docker engine beside it, as it last reported itself (its heartbeat)."""

    name: str = Field(primary_key=True, max_length=200)
    """`host:pid`, unique per process."""
    host: str = Field(max_length=200)
    engine: str = Field(default="", max_length=200)
    """The Docker engine's id and name, or why there is none."""
    slots: int = 1
    busy: int = 0
    jobs_done: int = 0
    draining: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()))
    """Stopping: it takes no more gradings and finishes (or hands back) the ones it runs."""
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)


class Interview(SQLModel, table=True):
    """A text interview about a graded submission. The transcript and the replies by answer id are saved after
    every answer, so nothing answered is lost and a resent answer is never recorded twice."""

    id: int | None = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="user.id", index=True)
    submission_id: int | None = Field(default=None, foreign_key="submission.id", index=True)
    """The graded submission it is about; None for a role interview (no repository: interviewer/role.py)."""
    position_id: int | None = Field(default=None, foreign_key="position.id", index=True)
    """A role interview taken for a position: its organisation's managers see it, and the organisation pays."""
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    """The position's organisation (role interviews; a project interview's is its submission's)."""
    rubric_version_id: int | None = Field(default=None, foreign_key="rubricversion.id")
    """A role interview's rubric (its level per dimension)."""
    topics: str = Field(default="", max_length=400)
    """A role interview's topics, comma-separated; empty: every topic of its rubric."""
    status: str = Field(default="active", max_length=20)
    transcript: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False, server_default="[]"))
    replies: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False, server_default="{}"))
    state: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    """The session's whole state (interviewer.session.SessionState as JSON): topic, follow-ups, assessments."""
    revision: int = 0
    """Bumped by every save, which only succeeds on the revision it read: two server processes (a reconnect that
    lands on another one) can never both record an answer."""
    report: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    spent_usd: float = 0.0
    """Model spend of this interview, across every process that ran it (server/services/spend.py)."""
    reserved_usd: float = 0.0
    """Worst-case cost of its calls in flight."""
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class ScoreOverride(SQLModel, table=True):
    """A manager's change to one criterion's score, with the reason. Never edited or removed: the history is the
    list of these, and the original score stays in the report."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    path: str = Field(max_length=200)
    original: float | None = None
    score: float
    reason: str = Field(max_length=2000)
    by_user: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ReviewRequest(SQLModel, table=True):
    """A candidate asks for a human to review a result."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    candidate_id: int = Field(foreign_key="user.id")
    message: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
