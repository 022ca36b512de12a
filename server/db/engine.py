"""The async engine and sessions, and bringing the schema up to date with Alembic at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
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
