"""workers that drain: a job's hand-backs (not counted as attempts) and a worker host's draining flag

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("handed_back", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("workerhost") as batch:
        batch.add_column(sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("workerhost") as batch:
        batch.drop_column("draining")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("handed_back")
