"""Server tests run against SQLite and a real PostgreSQL (a throwaway cluster), through Litestar's test client."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from server.app import create_app
from server.db.engine import database_url as database_url_of
from server.db.engine import session_factory
from server.db.models import User, utcnow
from server.services import accounts
from server.settings import Settings, load_settings
from tests.server.postgres import postgres_cluster

APPS = Path(__file__).parents[1] / "fixtures" / "apps"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix="viva-pg-"))  # not under pytest's 0700 tree: the postgres user must enter
    try:
        with postgres_cluster(base) as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'viva.db'}"
    admin = request.getfixturevalue("postgres_admin_url")
    name = f"viva_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(admin, name))
    return admin.rsplit("/", 1)[0] + "/" + name


def server_settings(database_url: str, data_dir: Path, **extra: str) -> Settings:
    return load_settings(
        {
            "VIVA_DATA_DIR": str(data_dir),
            "VIVA_DATABASE_URL": database_url,
            "VIVA_SUBMISSIONS_FIXTURES_DIR": str(APPS),
            "VIVA_SUBMISSIONS_STATIC_ONLY": "1",
            "VIVA_SERVER_JOB_LEASE_SECONDS": "6",
            **extra,
        }
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return server_settings(database_url, tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


@dataclass
class Identity:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the test's own event loop: the app's engine lives on the test client's loop (asyncpg connections
    belong to the loop that made them)."""
    engine = create_async_engine(database_url_of(settings), poolclass=NullPool)
    try:
        async with session_factory(engine)() as db:
            yield db
    finally:
        await engine.dispose()


async def make_identity(
    settings: Settings,
    role: str,
    *,
    organisation_id: int | None = None,
    email: str | None = None,
    accepted: bool = True,
) -> Identity:
    """A user made through the services (as an admin or an invitation would), with an API token."""
    async with database(settings) as db:
        user = await accounts.create_user(
            db,
            email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.org",
            password=PASSWORD,
            role=role,
            organisation_id=organisation_id,
        )
        if accepted:
            user.ai_notice_accepted_at = utcnow()
        token, _ = await accounts.create_api_token(db, user, "tests")
        await db.commit()
    return Identity(user, token)


async def make_organisation(settings: Settings, name: str = "Acme") -> int:
    async with database(settings) as db:
        organisation = await accounts.create_organisation(db, name)
        await db.commit()
    assert organisation.id is not None
    return organisation.id


async def wait_for(
    client: AsyncTestClient[Litestar], identity: Identity, submission_id: int, seconds: float = 60
) -> dict:
    """Poll until the grading finishes."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body = (await client.get(f"/api/submissions/{submission_id}", headers=identity.headers)).json()
        if body["status"] in ("done", "failed", "cancelled") or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.2)
