"""override conditions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

The 开放条件 a department gives with its reclassification, shown with the legal basis it gave
on every public surface.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("override_conditions", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("override_conditions")
