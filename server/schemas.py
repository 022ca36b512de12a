"""The API's shapes: msgspec Structs in and out (the tables never leave the services)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import PathParameter, QueryParameter

from server.db.models import Position, RubricVersion, Submission, User

ID_MAX = 2**63 - 1
"""The largest id a database integer column holds; larger ones in a request are refused with 400, not 500."""
PathId = Annotated[int, PathParameter(ge=1, le=ID_MAX)]
QueryId = Annotated[int, QueryParameter(ge=1, le=ID_MAX)]
OptionalQueryId = Annotated[int | None, QueryParameter(ge=1, le=ID_MAX)]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="items per page")]
Offset = Annotated[int, QueryParameter(ge=0, le=ID_MAX, description="items to skip")]
BodyId = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
Email = Annotated[str, msgspec.Meta(max_length=320)]
Password = Annotated[str, msgspec.Meta(max_length=1000)]
Name = Annotated[str, msgspec.Meta(max_length=200)]
T = TypeVar("T")


class SignUp(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    name: Name = ""
    invite_code: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class SignUpConfirm(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(max_length=100)]


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class ResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(max_length=100)]
    password: Password


class AcceptInvitation(msgspec.Struct, forbid_unknown_fields=True):
    password: Password
    name: Name = ""


class NewInvitation(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: Annotated[str, msgspec.Meta(max_length=20)] = "manager"


class NewOrganisation(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    manager_email: Email


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=100)]


class NewRubric(msgspec.Struct, forbid_unknown_fields=True):
    source: Annotated[str, msgspec.Meta(max_length=256_000)]


class NewPosition(msgspec.Struct, forbid_unknown_fields=True):
    title: Name
    rubric_version_id: BodyId
    interview_rubric_version_id: BodyId | None = None
    """The interview rubric and version its candidates are interviewed with; None: the server's default."""


class InterviewRubricChoice(msgspec.Struct, forbid_unknown_fields=True):
    interview_rubric_version_id: BodyId | None = None
    """None (or left out): the server's default interview rubric."""


class JoinPosition(msgspec.Struct, forbid_unknown_fields=True):
    invite_code: Annotated[str, msgspec.Meta(max_length=100)]


class NewSubmission(msgspec.Struct, forbid_unknown_fields=True):
    target: Annotated[str, msgspec.Meta(max_length=500)]
    position_id: BodyId | None = None
    token: Annotated[str, msgspec.Meta(max_length=400)] | None = None
    """A token for a private repository: used for the clone, kept in memory until then, stored nowhere."""


class Regrade(msgspec.Struct, forbid_unknown_fields=True):
    rubric_version_id: BodyId


class UserOut(msgspec.Struct):
    id: int
    email: str
    name: str
    role: str
    organisation_id: int | None
    ai_notice_accepted: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        assert user.id is not None
        return cls(
            user.id, user.email, user.name, user.role, user.organisation_id, user.ai_notice_accepted_at is not None
        )


class SessionOut(msgspec.Struct):
    user: UserOut
    csrf_token: str


class TokenOut(msgspec.Struct):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    token: str | None = None
    """Only in the answer that created it."""


class RubricOut(msgspec.Struct):
    id: int
    key: str
    version: int
    title: str
    content_hash: str
    builtin: bool
    used: bool
    created_at: datetime
    source: str | None = None

    @classmethod
    def of(cls, row: RubricVersion, *, with_source: bool = False) -> RubricOut:
        assert row.id is not None
        return cls(
            row.id,
            row.key,
            row.version,
            row.title,
            row.content_hash,
            row.organisation_id is None,
            row.used,
            row.created_at,
            row.source if with_source else None,
        )


class PositionOut(msgspec.Struct):
    id: int
    title: str
    organisation_id: int
    rubric_version_id: int
    open: bool
    invite_code: str | None = None
    """Managers see it (to share the link); candidates do not need it."""
    interview_rubric_version_id: int | None = None

    @classmethod
    def of(cls, row: Position, *, manager: bool) -> PositionOut:
        assert row.id is not None
        return cls(
            row.id,
            row.title,
            row.organisation_id,
            row.rubric_version_id,
            row.open,
            row.invite_code if manager else None,
            row.interview_rubric_version_id,
        )


class SubmissionOut(msgspec.Struct):
    id: int
    candidate_id: int
    position_id: int | None
    target: str
    rubric_version_id: int
    status: str
    score: float | None
    coverage: float | None
    error: str
    created_at: datetime
    finished_at: datetime | None
    progress: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, row: Submission, progress: dict[str, Any] | None = None) -> SubmissionOut:
        assert row.id is not None
        return cls(
            row.id,
            row.candidate_id,
            row.position_id,
            row.target,
            row.rubric_version_id,
            row.status,
            row.score,
            row.coverage,
            row.error,
            row.created_at,
            row.finished_at,
            progress or {},
        )


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class OutboxOut(msgspec.Struct):
    id: int
    recipient: str
    subject: str
    body: str
    created_at: datetime
    sent_at: datetime | None
    error: str


class ErrorBody(msgspec.Struct):
    status: int
    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorOut(msgspec.Struct):
    error: ErrorBody
