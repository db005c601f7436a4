"""publication gate

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

The publication gate's verdicts: per version (scan_status, masking, purged_at), per table
(findings, problems, notes), per dataset (hold_details, the department's masking) and per
harvest report entry (details). Versions made before the gate keep scan_status NULL and are
not served until the next harvest has scanned them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("distributions", sa.Column("scan_status", sa.String(length=20), nullable=True))
    op.add_column("distributions", sa.Column("masking", sa.JSON(), nullable=True))
    op.add_column("distributions", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("data_tables", sa.Column("findings", sa.JSON(), nullable=True))
    op.add_column("data_tables", sa.Column("problems", sa.JSON(), nullable=True))
    op.add_column("data_tables", sa.Column("notes", sa.JSON(), nullable=True))
    op.add_column("datasets", sa.Column("hold_details", sa.JSON(), nullable=True))
    op.add_column("datasets", sa.Column("masking", sa.JSON(), nullable=True))
    op.add_column("harvest_job_entries", sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("harvest_job_entries", schema=None) as batch_op:
        batch_op.drop_column("details")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("masking")
        batch_op.drop_column("hold_details")
    with op.batch_alter_table("data_tables", schema=None) as batch_op:
        batch_op.drop_column("notes")
        batch_op.drop_column("problems")
        batch_op.drop_column("findings")
    with op.batch_alter_table("distributions", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.drop_column("masking")
        batch_op.drop_column("scan_status")
