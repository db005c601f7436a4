"""sandbox

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06

The data sandbox (issue 21): a grant's delivery (file or sandbox), a dataset's sandbox settings
(sandbox only, k), sandbox queries with their results, release requests.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place (no batch rebuild): SQLite's foreign keys refuse dropping a referenced table.
    op.add_column(
        "applications", sa.Column("delivery", sa.String(length=10), server_default="file", nullable=False)
    )
    op.add_column(
        "grants", sa.Column("delivery", sa.String(length=10), server_default="file", nullable=False)
    )
    op.add_column(
        "datasets", sa.Column("sandbox_only", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column(
        "datasets", sa.Column("sandbox_k", sa.Integer(), server_default=sa.text("10"), nullable=False)
    )
    op.create_table(
        "sandbox_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("raw_result", sa.JSON(), nullable=True),
        sa.Column("cells", sa.JSON(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], name=op.f("fk_sandbox_queries_grant_id_grants")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["application_items.id"], name=op.f("fk_sandbox_queries_item_id_application_items")
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_sandbox_queries_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sandbox_queries_user_id_users")),
        sa.ForeignKeyConstraint(
            ["table_id"], ["data_tables.id"], name=op.f("fk_sandbox_queries_table_id_data_tables")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_queries")),
    )
    op.create_index(op.f("ix_sandbox_queries_grant_id"), "sandbox_queries", ["grant_id"])
    op.create_index(op.f("ix_sandbox_queries_dataset_id"), "sandbox_queries", ["dataset_id"])
    op.create_index(op.f("ix_sandbox_queries_status"), "sandbox_queries", ["status"])
    op.create_table(
        "sandbox_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["query_id"], ["sandbox_queries.id"], name=op.f("fk_sandbox_releases_query_id_sandbox_queries")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_sandbox_releases_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_sandbox_releases_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_releases")),
    )
    op.create_index(op.f("ix_sandbox_releases_query_id"), "sandbox_releases", ["query_id"])
    op.create_index(op.f("ix_sandbox_releases_status"), "sandbox_releases", ["status"])


def downgrade() -> None:
    op.drop_table("sandbox_releases")
    op.drop_table("sandbox_queries")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("sandbox_k")
        batch.drop_column("sandbox_only")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("delivery")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("delivery")
