"""follows

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

Following datasets, departments, domains and saved searches; favourites; notice preferences (issue 20, item 1).
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("known", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "kind", "target"),
    )
    op.create_index("ix_follows_user_id", "follows", ["user_id"])
    op.create_index("ix_follows_target", "follows", ["target"])
    op.create_table(
        "favourites",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("user_id", "dataset_id"),
    )
    op.create_index("ix_favourites_dataset_id", "favourites", ["dataset_id"])
    op.create_table(
        "followed_states",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("open_class", sa.String(length=20), nullable=True),
        sa.Column("files_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("answered_reports", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("notice_mail", sa.String(length=10), server_default="instant", nullable=False)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=10), server_default="both", nullable=False))
        batch.add_column(sa.Column("digested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("digested_at")
        batch.drop_column("channel")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notice_mail")
    op.drop_table("followed_states")
    op.drop_table("favourites")
    op.drop_table("follows")
