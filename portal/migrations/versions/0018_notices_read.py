"""notices read

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

When the recipient read a message on the account page (the header counts the unread ones).
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "read_at")
