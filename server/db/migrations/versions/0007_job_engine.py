"""grading on many machines: job priority, organisation and engine id; the worker hosts table; batches; private
repositories cloned by the web process

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
    op.create_table(
        "batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("attestation", sa.Text(), nullable=False),
        sa.Column("attested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["position_id"], ["position.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_batch_position_id"), "batch", ["position_id"], unique=False)
    op.create_index(op.f("ix_batch_organisation_id"), "batch", ["organisation_id"], unique=False)
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("prefetched", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch.create_index(batch.f("ix_submission_batch_id"), ["batch_id"], unique=False)
        batch.create_foreign_key("fk_submission_batch_id_batch", "batch", ["batch_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.drop_constraint("fk_submission_batch_id_batch", type_="foreignkey")
        batch.drop_index(batch.f("ix_submission_batch_id"))
        batch.drop_column("prefetched")
        batch.drop_column("batch_id")
    op.drop_index(op.f("ix_batch_organisation_id"), table_name="batch")
    op.drop_index(op.f("ix_batch_position_id"), table_name="batch")
    op.drop_table("batch")
    op.drop_index(op.f("ix_workerhost_heartbeat_at"), table_name="workerhost")
    op.drop_table("workerhost")
    with op.batch_alter_table("job") as batch:
        batch.drop_index(batch.f("ix_job_organisation_id"))
        batch.drop_column("engine_ref")
        batch.drop_column("organisation_id")
        batch.drop_column("priority")
