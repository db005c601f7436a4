"""data dictionaries

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Each column of a dataset described (portal/models/catalog.py FieldDescription): from the
catalog's 信息项, or edited by the department in the console.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_descriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("unit", sa.String(length=50), nullable=True),
        sa.Column("codes", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_field_descriptions_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_descriptions")),
    )
    op.create_index("ix_field_descriptions_dataset_id", "field_descriptions", ["dataset_id"])
    op.create_index(
        "uq_field_descriptions_dataset_name", "field_descriptions", ["dataset_id", "name"], unique=True
    )


def downgrade() -> None:
    op.drop_table("field_descriptions")
