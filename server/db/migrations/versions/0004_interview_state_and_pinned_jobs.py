"""interview state and revision; jobs pinned to the process holding a token

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interview") as batch:
        batch.add_column(sa.Column("state", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("pinned_to", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("pinned_to")
    with op.batch_alter_table("interview") as batch:
        batch.drop_column("revision")
        batch.drop_column("state")
