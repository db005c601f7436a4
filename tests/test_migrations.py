"""Tables come only from Alembic migrations, and the migrations match the models."""

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.models import Base


def test_migrations_match_the_models(ctx):
    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(ctx):
    from alembic.script import ScriptDirectory

    from portal.db import alembic_config, upgrade

    upgrade(ctx.engine)  # a second upgrade at head changes nothing and does not fail
    head = ScriptDirectory.from_config(alembic_config(str(ctx.engine.url))).get_current_head()
    with ctx.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head


def test_processes_starting_at_once_migrate_once(settings):
    """Gunicorn workers start together; each runs the migrations: one migrates, the rest wait."""
    import subprocess
    import sys

    code = (
        "from portal.context import PortalContext; from portal.config import Settings; "
        f"PortalContext(Settings(instance_path={str(settings.instance_path)!r}, database_url={settings.database_url!r}))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_an_instance_with_data_upgrades_in_place(tmp_path):
    """The gate's migrations add columns to tables that hold rows and foreign keys: SQLite
    must alter them in place (a batch rebuild drops the table, which foreign keys refuse)."""
    from alembic import command
    from sqlalchemy import text

    from portal.db import alembic_config, make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO departments (code, name, created_at) VALUES ('dcf-x', '东昌府区某局', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO datasets (name, title, summary, department_id, tags, source_fields, edits, status, source_ref, "
                "download_count, search_dirty, created_at, updated_at) VALUES ('371502-x-0001', '停车场', '', 1, '[]', '{}', "
                "'{}', 'published', 'x', 0, 1, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO distributions (dataset_id, source_name, media_format, sha256, size, original_path, fetched_at) "
                "VALUES (1, 'd.csv', 'csv', 'ab', 1, 'x/ab/original.csv', '2026-01-01')"
            )
        )
        conn.execute(
            text(  # rows pointing at users: no migration may rebuild the users table
                "INSERT INTO users (email, password_hash, name, kind, is_bureau, session_version, created_at) "
                "VALUES ('a@example.cn', 'x', '甲', 'company', 0, 1, '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (at, actor_id, action, detail) VALUES ('2026-01-01', 1, 'login', '{}')"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT title, sensitive FROM datasets")).one() == ("停车场", 0)
        assert conn.execute(text("SELECT email, company_verified_at FROM users")).one() == (
            "a@example.cn",
            None,
        )
        assert (
            conn.execute(text("SELECT scan_status FROM distributions")).scalar() is None
        )  # not served until harvested
        # the synonym list for search, seeded with common public-service aliases (0013)
        seeded = dict(conn.execute(text("SELECT term, expansions FROM search_synonyms")).all())
        assert (
            len(seeded) > 50
            and json.loads(seeded["打疫苗"]) == ["预防接种"]
            and json.loads(seeded["户口"]) == ["户籍"]
        )
    engine.dispose()
