"""counters

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

Batched daily counters for public statistics; per-token API quotas (issue 20, items 4 and 7).
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_counters",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("dataset_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind", "dataset_id", "token_id"),
    )
    op.create_index("ix_daily_counters_dataset_day", "daily_counters", ["dataset_id", "day"])
    op.create_index("ix_daily_counters_token_day", "daily_counters", ["token_id", "day"])
    op.create_table(
        "counter_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_counter_batches_flushed_at", "counter_batches", ["flushed_at"])
    op.add_column("api_tokens", sa.Column("daily_quota", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("daily_quota")
    op.drop_index("ix_counter_batches_flushed_at", table_name="counter_batches")
    op.drop_table("counter_batches")
    op.drop_index("ix_daily_counters_token_day", table_name="daily_counters")
    op.drop_index("ix_daily_counters_dataset_day", table_name="daily_counters")
    op.drop_table("daily_counters")
