"""oidc

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

Unified sign-in through OpenID Connect: linked identities and real-name level (issue 20, item 8).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linked_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("real_name_level", sa.Integer(), nullable=True),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_linked_identities_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linked_identities")),
        sa.UniqueConstraint("issuer", "subject", name="uq_linked_identities_issuer_subject"),
        sa.UniqueConstraint("user_id", "issuer", name="uq_linked_identities_user_issuer"),
    )
    op.create_index("ix_linked_identities_user_id", "linked_identities", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_linked_identities_user_id", table_name="linked_identities")
    op.drop_table("linked_identities")
