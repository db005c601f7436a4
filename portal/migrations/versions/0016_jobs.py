"""jobs and scheduled harvest sources

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

The job queue's rows (portal/models/jobs.py) and what the admin needs to run a harvest source
on a schedule: its schedule, a sealed CKAN token, when it was last queued.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state_run_after", "jobs", ["state", "run_after"])
    op.create_index("ix_jobs_key", "jobs", ["key"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    # Columns added in place (no batch rebuild: see 0008 — a rebuild on SQLite drops what the
    # datasets' foreign keys protect).
    op.add_column(
        "harvest_sources", sa.Column("schedule", sa.String(20), nullable=False, server_default="manual")
    )
    op.add_column(
        "harvest_sources", sa.Column("schedule_hour", sa.Integer(), nullable=False, server_default="2")
    )
    op.add_column(
        "harvest_sources", sa.Column("schedule_weekday", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "harvest_sources", sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("harvest_sources", sa.Column("token_sealed", sa.Text(), nullable=True))
    op.add_column("harvest_sources", sa.Column("last_queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in (
        "last_queued_at",
        "token_sealed",
        "enabled",
        "schedule_weekday",
        "schedule_hour",
        "schedule",
    ):
        op.drop_column("harvest_sources", column)
    op.drop_table("jobs")
