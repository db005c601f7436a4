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
        assert MigrationContext.configure(conn).get_current_revision() == "0011"


def test_processes_starting_at_once_migrate_once(settings):
    """Gunicorn workers start together; each runs the migrations: one migrates, the rest wait."""
    import subprocess
    import sys

    code = ("from portal.app import PortalContext; from portal.config import Settings; "
            f"PortalContext(Settings(instance_path={str(settings.instance_path)!r}, database_url={settings.database_url!r}))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
