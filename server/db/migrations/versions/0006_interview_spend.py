"""interview spend in the database: per interview and per organisation; an interview rubric per position; role
interviews (no submission)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
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
        batch.alter_column("submission_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("position_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rubric_version_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("topics", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False, server_default="")
        )
        batch.create_index(batch.f("ix_interview_position_id"), ["position_id"], unique=False)
        batch.create_index(batch.f("ix_interview_organisation_id"), ["organisation_id"], unique=False)
        batch.create_foreign_key("fk_interview_organisation", "organisation", ["organisation_id"], ["id"])
        batch.create_foreign_key("fk_interview_position", "position", ["position_id"], ["id"])
        batch.create_foreign_key("fk_interview_rubric_version", "rubricversion", ["rubric_version_id"], ["id"])
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
        batch.drop_constraint("fk_interview_rubric_version", type_="foreignkey")
        batch.drop_constraint("fk_interview_position", type_="foreignkey")
        batch.drop_constraint("fk_interview_organisation", type_="foreignkey")
        batch.drop_index(batch.f("ix_interview_organisation_id"))
        batch.drop_index(batch.f("ix_interview_position_id"))
        batch.drop_column("topics")
        batch.drop_column("rubric_version_id")
        batch.drop_column("organisation_id")
        batch.drop_column("position_id")
        batch.alter_column("submission_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("reserved_usd")
        batch.drop_column("spent_usd")
    op.drop_table("organisationspend")
