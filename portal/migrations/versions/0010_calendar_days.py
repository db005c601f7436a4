"""calendar days

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

The official holiday schedule the bureau enters when the State Council publishes it, and
what each application's deadline is counted from (so it can be recounted).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("workday", sa.Boolean(), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by_id"], ["users.id"], name=op.f("fk_calendar_days_entered_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_days")),
        sa.UniqueConstraint("day", name=op.f("uq_calendar_days_day")),
    )
    op.add_column("applications", sa.Column("deadline_start", sa.Date(), nullable=True))
    op.add_column("applications", sa.Column("deadline_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("deadline_days")
        batch_op.drop_column("deadline_start")
    op.drop_table("calendar_days")
