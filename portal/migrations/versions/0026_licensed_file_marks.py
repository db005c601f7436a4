"""licensed file marks

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08

Traceable licensed files (issue 21, item 5): each grant's column order and row-order key per
table shape, and the sha256 of every licensed file served (licenses/fingerprint.py).
New tables only: no referenced table is rebuilt.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licensed_file_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("columns_key", sa.String(length=64), nullable=False),
        sa.Column("column_order", sa.JSON(), nullable=False),
        sa.Column("order_key", sa.String(length=64), nullable=False),
        sa.Column("reuse", sa.Integer(), nullable=False),
        sa.Column("row_seed", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_licensed_file_marks_grant_id_grants")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["application_items.id"],
            name=op.f("fk_licensed_file_marks_item_id_application_items"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_licensed_file_marks_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licensed_file_marks")),
        sa.UniqueConstraint(
            "grant_id", "item_id", "columns_key", name="uq_licensed_file_marks_grant_item_columns"
        ),
        sa.UniqueConstraint(
            "dataset_id", "columns_key", "order_key", "reuse", name="uq_licensed_file_marks_order"
        ),
    )
    op.create_index(op.f("ix_licensed_file_marks_grant_id"), "licensed_file_marks", ["grant_id"])
    op.create_index(op.f("ix_licensed_file_marks_dataset_id"), "licensed_file_marks", ["dataset_id"])
    op.create_table(
        "licensed_file_hashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_licensed_file_hashes_grant_id_grants")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["application_items.id"],
            name=op.f("fk_licensed_file_hashes_item_id_application_items"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_licensed_file_hashes_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licensed_file_hashes")),
    )
    op.create_index(op.f("ix_licensed_file_hashes_grant_id"), "licensed_file_hashes", ["grant_id"])
    op.create_index(op.f("ix_licensed_file_hashes_sha256"), "licensed_file_hashes", ["sha256"])


def downgrade() -> None:
    op.drop_table("licensed_file_hashes")
    op.drop_table("licensed_file_marks")
