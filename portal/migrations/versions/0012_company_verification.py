"""company verification

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

Company accounts are verified by the bureau before they bid, one per credit code.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("company_verified_at", sa.DateTime(timezone=True), nullable=True))
    # The verifying bureau user's id, without a foreign key: SQLite adds a constrained column
    # only by rebuilding the table, which the foreign keys pointing at users refuse.
    op.add_column("users", sa.Column("company_verified_by_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("company_verified_by_id")
        batch_op.drop_column("company_verified_at")
