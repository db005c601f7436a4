"""duplicate cases

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Likely duplicates handled, not only listed (Art. 15): the cases the bureau sends to two
departments, and the entry a merged one now leads to.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duplicate_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_a_id", sa.Integer(), nullable=False),
        sa.Column("dataset_b_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("keep_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by_department_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sent_by_id", sa.Integer(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_a_id"], ["datasets.id"], name=op.f("fk_duplicate_cases_dataset_a_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["dataset_b_id"], ["datasets.id"], name=op.f("fk_duplicate_cases_dataset_b_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["keep_id"], ["datasets.id"], name=op.f("fk_duplicate_cases_keep_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_department_id"],
            ["departments.id"],
            name=op.f("fk_duplicate_cases_proposed_by_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_id"], ["users.id"], name=op.f("fk_duplicate_cases_sent_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_duplicate_cases_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_cases")),
    )
    op.create_index("ix_duplicate_cases_dataset_a_id", "duplicate_cases", ["dataset_a_id"])
    op.create_index("ix_duplicate_cases_dataset_b_id", "duplicate_cases", ["dataset_b_id"])
    op.create_index(
        "uq_duplicate_cases_pair", "duplicate_cases", ["dataset_a_id", "dataset_b_id"], unique=True
    )
    # In place, without a foreign key: SQLite adds a constrained column only by rebuilding the
    # table, which the foreign keys pointing at datasets refuse (see 0008, 0012).
    op.add_column("datasets", sa.Column("merged_into_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("datasets", "merged_into_id")
    op.drop_table("duplicate_cases")
