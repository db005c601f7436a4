"""The database: one engine per settings, sessions made by a plain sessionmaker.

Plain SQLAlchemy (not Flask-SQLAlchemy) so that harvest/ and licenses/ run the same from a
view, the CLI or a test: they take a Session and never touch a Flask request.
"""

from __future__ import annotations

import fcntl
import functools
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _store_messages_as_their_source() -> None:
    """A Message (portal/messages.py) bound to a query is stored as its Chinese source, the
    language of the portal's records; it is put into the reader's words only when shown.
    Code says `.source` where it stores one; this keeps a forgotten one from failing a request."""
    import sqlite3

    from psycopg import adapters
    from psycopg.abc import Buffer
    from psycopg.types.string import StrDumper

    from .messages import Message

    class MessageDumper(StrDumper):
        def dump(self, obj: Message) -> Buffer | None:  # type: ignore[override]  # registered for Message only
            return super().dump(obj.source)

    sqlite3.register_adapter(Message, lambda message: message.source)
    adapters.register_dumper(Message, MessageDumper)


_store_messages_as_their_source()


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets web workers read while a harvest writes; foreign keys are off by default.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (the only way tables are made).

    Several processes start at once (gunicorn workers, a harvest beside the web): one
    migrates while the others wait — a PostgreSQL advisory lock, a file lock for SQLite —
    and then finds nothing left to do.
    """
    if _at_head(engine):  # the usual start: nothing to migrate, no migration script loaded
        return
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7240811)"))  # held until this transaction ends
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@functools.cache
def _heads() -> frozenset[str]:
    """The newest migration(s), read once per process from the scripts."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _at_head(engine: Engine) -> bool:
    """Whether the database's recorded revision is already the newest (no table yet: not)."""
    try:
        with engine.connect() as conn:
            current = frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        return False
    return current == _heads()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite's side of the migration lock (PostgreSQL's is an advisory lock in upgrade())."""
    with _sqlite_file_lock(engine, "migrate"):
        yield


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """One process at a time, on every machine that shares this database, for a short step at
    start (portal/deployment.py: the first node writes the deployment row and then the files
    folder's marker; another process must not look between the two). PostgreSQL: a session
    advisory lock; SQLite: a file lock beside the database."""
    if engine.dialect.name != "postgresql":
        with _sqlite_file_lock(engine, name):
            yield
        return
    key = zlib.crc32(name.encode()) & 0x7FFFFFFF
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _sqlite_file_lock(engine: Engine, name: str) -> Iterator[None]:
    """A lock file beside a SQLite database (nothing to lock for another database or in memory)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def throwaway(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions whose every commit is thrown away at the end: a dry run (a harvest that shows
    what it would change) runs the real code on them and publishes nothing.

    PostgreSQL: one connection in a transaction that is rolled back, each commit a savepoint
    (rows the dry run changes stay locked until it ends). SQLite: a copy of the database made
    with SQLite's backup API — pysqlite's savepoints cannot be trusted to roll back — deleted
    afterwards."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            outer = conn.begin()
            try:
                yield sessionmaker(
                    bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
                )
            finally:
                outer.rollback()
        return
    import tempfile

    database = engine.url.database
    with tempfile.TemporaryDirectory(prefix="dry-run-") as folder:
        copy_path = Path(folder) / "copy.db"
        source = sqlite3.connect(database or ":memory:")
        target = sqlite3.connect(copy_path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        copy = make_engine(f"sqlite:///{copy_path}")
        try:
            yield make_sessionmaker(copy)
        finally:
            copy.dispose()
