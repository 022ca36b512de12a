"""The async engine and sessions, and bringing the schema up to date with Alembic at start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from server.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(settings: Settings) -> str:
    if settings.database.url:
        return settings.database.url
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{settings.data_path / 'viva.db'}"


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the worker write progress while pages read; foreign keys are off by default in SQLite.
            # synchronous=NORMAL under WAL syncs at checkpoints, not every commit: a killed process loses nothing
            # committed (only a power cut can lose the last commits), and each interview answer's save stops
            # costing an fsync while hundreds of interviews write.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def upgrade(url: str) -> None:
    """Run every migration up to head (synchronously; call before the event loop serves requests)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def head_revision() -> str:
    """The newest migration's revision: the schema this code expects."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - only the worker's start asks

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "the migrations have a head"
    return head


async def wait_for_schema(url: str, timeout: float, *, engine_tables: bool = False) -> str | None:
    """Wait until the database's schema is at this code's head (the web process migrates it; a worker never does),
    and, with `engine_tables`, the job engine's tables exist. None when it is; else what is wrong after `timeout`."""
    deadline = time.monotonic() + timeout
    head = head_revision()
    engine = make_engine(url)
    problem = "the database could not be reached"
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
                    tables_there = True
                    if engine_tables:
                        found = await connection.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL"))
                        tables_there = bool(found.scalar())
                if current == head and tables_there:
                    return None
                problem = (
                    f"the database's schema is at {current}, this code needs {head}: start `viva serve` (it migrates)"
                    if current != head
                    else "the job engine's tables are not there yet: start `viva serve` (it creates them)"
                )
            except Exception as error:  # no table yet, or no server yet: both resolve once `viva serve` runs
                problem = f"the database is not ready: {type(error).__name__}: {str(error)[:200]}"
            if time.monotonic() >= deadline:
                return problem
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
