"""form submissions

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Forms whose work was done, by their nonce (portal/models/forms.py): a form posted twice is
refused by the database, whichever node and however close together the two posts arrive.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_submissions",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_form_submissions_done_at", "form_submissions", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_form_submissions_done_at", table_name="form_submissions")
    op.drop_table("form_submissions")
