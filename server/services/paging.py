"""One way to page a list: a count of the whole query and one slice of it, in a stable order."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")


async def paged(
    db: AsyncSession, query: SelectOfScalar[T], *order: Any, limit: int, offset: int
) -> tuple[list[T], int]:
    total = (await db.exec(select(func.count()).select_from(query.order_by(None).subquery()))).one()
    rows = (await db.exec(query.order_by(*order).offset(offset).limit(limit))).all()
    return list(rows), int(total)
