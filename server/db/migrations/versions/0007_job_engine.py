"""grading on many machines: job priority, organisation and engine id; the worker hosts table

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("engine_ref", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_job_organisation_id"), ["organisation_id"], unique=False)
    op.execute(
        "UPDATE job SET organisation_id = "
        "(SELECT organisation_id FROM submission WHERE submission.id = job.submission_id)"
    )
    op.create_table(
        "workerhost",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("engine", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("busy", sa.Integer(), nullable=False),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index(op.f("ix_workerhost_heartbeat_at"), "workerhost", ["heartbeat_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_workerhost_heartbeat_at"), table_name="workerhost")
    op.drop_table("workerhost")
    with op.batch_alter_table("job") as batch:
        batch.drop_index(batch.f("ix_job_organisation_id"))
        batch.drop_column("engine_ref")
        batch.drop_column("organisation_id")
        batch.drop_column("priority")
