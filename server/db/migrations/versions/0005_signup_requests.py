"""sign-ups confirmed by an emailed link

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signuprequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("invite_code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signuprequest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signuprequest_code_hash"), ["code_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_signuprequest_email"), ["email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signuprequest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signuprequest_email"))
        batch_op.drop_index(batch_op.f("ix_signuprequest_code_hash"))
    op.drop_table("signuprequest")
