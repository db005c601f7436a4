"""company verification

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

Company accounts are verified by the bureau before they bid, one per credit code.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('company_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('company_verified_by_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:  # SQLite: a foreign key needs the rebuild
        batch_op.create_foreign_key(batch_op.f('fk_users_company_verified_by_id_users'), 'users',
                                    ['company_verified_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_company_verified_by_id_users'), type_='foreignkey')
        batch_op.drop_column('company_verified_by_id')
        batch_op.drop_column('company_verified_at')
