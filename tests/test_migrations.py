"""Tables come only from Alembic migrations, and the migrations match the models."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.models import Base


def test_migrations_match_the_models(ctx):
    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(ctx):
    from portal.db import upgrade

    upgrade(ctx.engine)  # a second upgrade at head changes nothing and does not fail
    with ctx.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0007"
