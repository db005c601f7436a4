"""Fixtures: a real database (SQLite by default; PostgreSQL when PORTAL_TEST_DATABASE_URL
names one), a real instance folder, and the real CKAN from ../shared/ckan when CKAN_URL is set."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from portal.app import PortalContext
from portal.config import Settings
from portal.db import make_engine, upgrade

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")


def pytest_report_header(config) -> str:  # noqa: ANN001
    return f"database: {PG_URL or 'SQLite (a new file per test)'}"


@pytest.fixture(scope="session")
def _postgres_ready():
    """Start PostgreSQL runs from an empty schema, migrated once; tests then truncate."""
    if not PG_URL:
        return None
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    engine = make_engine(PG_URL)
    upgrade(engine)
    engine.dispose()
    return PG_URL


@pytest.fixture
def database_url(tmp_path: Path, _postgres_ready) -> str:
    if not _postgres_ready:
        return f"sqlite:///{tmp_path / 'portal.db'}"
    engine = create_engine(_postgres_ready)
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'")).scalars().all()
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _postgres_ready


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(instance_path=tmp_path / "instance", database_url=database_url)


@pytest.fixture
def ctx(settings: Settings) -> PortalContext:
    context = PortalContext(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def app(settings: Settings):  # noqa: ANN201
    from portal.app import create_app

    app = create_app({"instance": settings.instance_path, "database_url": settings.database_url,
                      "TESTING": True})
    yield app
    app.extensions["portal"].engine.dispose()


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()
