"""`VIVA_SERVER_DEMO=1` (what `make run` sets): a demo organisation with a manager, a candidate and an open
position, created on first start; the passwords are printed once and stored only as hashes."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db.models import Organisation, User
from server.services import accounts
from server.services.catalogue import create_position, default_rubric
from server.settings import Settings

MANAGER_EMAIL = "manager@demo.viva.localhost"
CANDIDATE_EMAIL = "candidate@demo.viva.localhost"


async def ensure_demo(settings: Settings, factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as db:
        if (await db.exec(select(User).where(User.email == MANAGER_EMAIL))).first() is not None:
            return
        organisation = Organisation(name="Demo organisation")
        db.add(organisation)
        await db.flush()
        manager_password, candidate_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        manager = await accounts.create_user(
            db,
            email=MANAGER_EMAIL,
            password=manager_password,
            role="manager",
            organisation_id=organisation.id,
            name="Demo manager",
        )
        await accounts.create_user(
            db, email=CANDIDATE_EMAIL, password=candidate_password, role="candidate", name="Demo candidate"
        )
        rubric = await default_rubric(db, settings.grading.default_rubric)
        assert rubric.id is not None
        position = await create_position(db, manager, "AI engineer (demo)", rubric.id)
        await db.commit()
    url = settings.server.public_url
    print(
        f"\nViva demo, created once (these passwords are not shown again):\n"
        f"  manager    {MANAGER_EMAIL}  {manager_password}\n"
        f"  candidate  {CANDIDATE_EMAIL}  {candidate_password}\n"
        f"  invite link for candidates: {url}/join/{position.invite_code}\n"
        f"Open {url}/login and sign in as either.\n",
        flush=True,
    )
