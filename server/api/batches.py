"""Batch grading for a position: a list of repositories handed in by a manager (server/services/batches.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import User
from server.schemas import Limit, Offset, Page, PathId
from server.services import batches
from server.services.catalogue import managed_position
from server.web import client_address, state_of

MANAGER = {"access": "manager"}


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=batches.MAX_TEXT)]
    """A CSV (a header naming repository/url, email and name columns) or lines of `URL [email] [name]`."""
    attest: bool = False
    """The manager confirms the candidates agreed to automated grading (batches.ATTESTATION); required."""


class BatchOut(msgspec.Struct):
    id: int
    total: int
    finished: int
    counts: dict[str, int]
    attestation: str
    created_at: datetime


@post("/api/positions/{position_id:int}/batches", opt=MANAGER, status_code=202)
async def create_batch(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    position_id: PathId,
    data: JSONBody[BatchIn],
) -> BatchOut:
    """Queue a grading for every repository in the list, behind candidates' own gradings. One bad line refuses the
    batch with every problem listed by line; nothing is queued then."""
    state = state_of(request)
    state.limiter.hit("submission", client_address(request), state.settings.limits.submissions_per_minute)
    batch = await batches.create_batch(
        db, state.queue, state.settings, user, position_id, text=data.text, attested=data.attest
    )
    await db.commit()
    return BatchOut(batch.id or 0, batch.total, 0, {"queued": batch.total}, batch.attestation, batch.created_at)


@get("/api/positions/{position_id:int}/batches", opt=MANAGER)
async def list_batches(
    db: NamedDependency[AsyncSession],
    user: NamedDependency[User],
    position_id: PathId,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[BatchOut]:
    """The position's batches, newest first, with their gradings counted by status."""
    await managed_position(db, user, position_id)
    rows, total = await batches.batch_progress(db, position_id, limit=limit, offset=offset)
    items = [
        BatchOut(row["id"], row["total"], row["finished"], row["counts"], row["attestation"], row["created_at"])
        for row in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


ROUTES = [create_batch, list_batches]
