"""sensitive datasets

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

Datasets touching state secrets, commercial secrets or personal privacy (Jiangsu Art. 18):
15 working days for requests, refusals as written decisions.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "datasets", sa.Column("sensitive", sa.Boolean(), nullable=False, server_default=sa.text("false"))
    )


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("sensitive")
