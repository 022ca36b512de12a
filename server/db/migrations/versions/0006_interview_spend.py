"""interview spend in the database: per interview and per organisation; an interview rubric per position

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisationspend",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("organisation_id"),
    )
    with op.batch_alter_table("interview") as batch:
        batch.add_column(sa.Column("spent_usd", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("position") as batch:
        batch.add_column(sa.Column("interview_rubric_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_position_interview_rubric_version", "rubricversion", ["interview_rubric_version_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("position") as batch:
        batch.drop_constraint("fk_position_interview_rubric_version", type_="foreignkey")
        batch.drop_column("interview_rubric_version_id")
    with op.batch_alter_table("interview") as batch:
        batch.drop_column("reserved_usd")
        batch.drop_column("spent_usd")
    op.drop_table("organisationspend")
