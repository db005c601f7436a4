"""Fixtures: a real database (SQLite by default; PostgreSQL when PORTAL_TEST_DATABASE_URL
names one), a real instance folder, and the real CKAN from ../shared/ckan when CKAN_URL is set.

Every test has a database and an instance folder of its own, copied from ones made once per
session: the migrated, empty database, or — for a test standing on `portal_data` — the harvested
world (`_world`). Helpers are in tests/helpers.py, rows in tests/factories.py."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from portal.config import Settings
from portal.context import PortalContext
from portal.db import make_engine, upgrade
from tests import factories
from tests.helpers import PG_URL, SEARCH_BACKEND, accept, approve, harvest_world, login, submit

# Jobs (mail among them) run in the process that commits them, right after the commit, unless a
# test sets up a real queue (tests/test_jobs.py runs `portal worker` processes on SQLite and Redis).
os.environ.setdefault("PORTAL_QUEUE", "inline")


@pytest.fixture(autouse=True)
def _quick_password_hashing(monkeypatch):
    """scrypt costs ~70 ms a hash by design; the suite hashes hundreds of passwords.
    test_accounts.py::test_passwords_are_stored_with_scrypt checks the real setting."""
    from portal import accounts

    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture(autouse=True, scope="session")
def _compiled_once():
    """Every test makes an app of its own (a database of its own), and each new app compiled again
    what does not change between them: every template (Jinja's templates are cached per app) and two
    Python functions per URL rule (Werkzeug builds them when a rule is bound to an app's map). Over
    the suite's ~700 apps that was a third of its CPU time. Here both are compiled once per session:
    Jinja through a bytecode cache shared by every app (keyed by the template's name and checked
    against its source, as Jinja's own caches are; its key does not hold the environment's
    options, which is safe here because every app is made by create_app with the same
    extensions), Werkzeug's URL builders kept by everything they are made from. Nothing a test
    sees changes: the same templates render the same pages, the same rules build the same URLs."""
    from flask import Flask

    options = Flask.jinja_options
    Flask.jinja_options = {**options, "bytecode_cache": _SharedBytecode()}
    undo = _share_url_builders()
    yield
    Flask.jinja_options = options
    undo()


class _SharedBytecode(BytecodeCache):
    """Jinja's bytecode cache, kept in memory for the session."""

    def __init__(self) -> None:
        self.codes: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if (code := self.codes.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self.codes[bucket.key] = bucket.bytecode_to_string()


def _share_url_builders():
    """Werkzeug's Rule._compile_builder, remembered by the rule's text, parts and defaults (a rule
    with a default for one of its variables is built as Werkzeug builds it: that default goes
    through the map's converter). Returns the undo."""
    from werkzeug.routing.rules import Rule

    real = getattr(Rule, "_compile_builder", None)
    if real is None:  # another Werkzeug: nothing to share
        return lambda: None
    built: dict = {}

    def compile_builder(self, append_unknown=True):
        defaults = self.defaults or {}
        if any(dynamic and data in defaults for dynamic, data in self._trace):
            return real(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(sorted(defaults)), append_unknown)
        if key not in built:
            built[key] = real(self, append_unknown)
        return built[key]

    Rule._compile_builder = compile_builder

    def undo() -> None:
        Rule._compile_builder = real

    return undo


def pytest_report_header(config) -> str:
    where = f"{PG_URL} (a copy of it per test)" if PG_URL else "SQLite (a new file per test)"
    return f"database: {where}; search backend: {SEARCH_BACKEND}"


@pytest.fixture(scope="session")
def _postgres_ready():
    """Start PostgreSQL runs from an empty schema, migrated once: each test gets a copy of it."""
    if not PG_URL:
        yield None
        return
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("DROP SCHEMA IF EXISTS portal_search CASCADE"))  # the search backend's table
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    engine = make_engine(PG_URL)
    upgrade(engine)
    engine.dispose()
    yield PG_URL
    _PG_COPIES.close()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path | None:
    """SQLite runs migrate once: each test starts from a copy of this migrated, empty file
    (running every migration per test was a large share of the suite's time)."""
    if PG_URL:
        return None
    path = tmp_path_factory.mktemp("template") / "portal.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


# The fixtures that stand on the harvested catalog (`portal_data`): a test asking for one of them,
# even through another fixture, starts from a copy of that catalog, harvested once per session.
WORLD_FIXTURES = frozenset({"portal_data", "granted_world"})
_COPIED = pytest.StashKey[bool]()


@pytest.fixture
def database_url(request, tmp_path: Path, files_store: dict, _postgres_ready, _sqlite_template) -> str:
    """A database of the test's own, copied from the migrated, empty one: on SQLite a file, on
    PostgreSQL a database made from it as a template. A test that stands on `portal_data` (with the local
    files folder) gets a copy of the session's harvested world instead: database, instance
    folder and source files (see `_world`)."""
    if not files_store and WORLD_FIXTURES & set(request.fixturenames):
        world: World = request.getfixturevalue("_world")
        request.node.stash[_COPIED] = True
        url = world.copy_to(tmp_path)
        if url.startswith("postgresql"):
            request.addfinalizer(lambda: _PG_COPIES.drop(url))
        return url
    if not _postgres_ready:
        shutil.copyfile(_sqlite_template, tmp_path / "portal.db")
        return f"sqlite:///{tmp_path / 'portal.db'}"
    # A copy of the migrated, empty database: faster than emptying one (TRUNCATE of every table
    # took 0.7 s a test, CREATE DATABASE … TEMPLATE 0.2 s on an idle server), made while the
    # test before ran.
    url = _PG_COPIES.take(_pg_name(PG_URL))
    request.addfinalizer(lambda: _PG_COPIES.drop(url))
    return url


class World:
    """The harvested catalog `portal_data` describes, built once in `root`: root/src (the
    catalogs and data files harvested), root/instance (data files, Whoosh index, secret key and
    the files folder's deployment marker) and the database — root/portal.db on SQLite, a
    template database on PostgreSQL. A test gets a copy of all three: its own portal, as if it
    had harvested it itself (the harvest sources point into its own src folder; the deployment
    gets an identity of its own, so page caches in Redis never mix)."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def copy_to(self, folder: Path) -> str:
        shutil.copytree(self.root / "src", folder / "src")
        shutil.copytree(self.root / "instance", folder / "instance", symlinks=True)
        if self.url.startswith("sqlite"):
            shutil.copyfile(self.root / "portal.db", folder / "portal.db")
            url = f"sqlite:///{folder / 'portal.db'}"
        else:
            url = _PG_COPIES.take(_pg_name(self.url))
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE harvest_sources SET location = replace(location, :old, :new)"),
                {"old": str(self.root / "src"), "new": str(folder / "src")},
            )
            conn.execute(text("UPDATE deployment SET identity = :identity"), {"identity": uuid.uuid4().hex})
        engine.dispose()
        return url


def _pg_name(url: str) -> str:
    return str(make_url(url).database)


def _pg_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


class _PgCopies:
    """PostgreSQL databases for the tests, each made from a template (the migrated, empty
    database or the world) one test ahead, in a thread, while the test before runs: on a busy
    server CREATE DATABASE … TEMPLATE takes 0.5–2 s. Dropped (WITH (FORCE): a test's server
    processes may still hold connections) in the same thread after the test. Named
    `<suite database>_<n>`; CREATE and DROP DATABASE are sent from the server's maintenance
    database `postgres`, since a connection to a template would keep it from being copied."""

    def __init__(self) -> None:
        self.ahead: dict[str, Future] = {}
        self.numbers = itertools.count(1)
        self.worker: ThreadPoolExecutor | None = None
        self.engine = None

    def _run(self, *statements: str) -> None:
        if self.engine is None:
            self.engine = create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    def _make(self, template: str) -> str:
        name = f"{_pg_name(PG_URL)}_{next(self.numbers)}"
        self._run(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
        )
        return name

    def take(self, template: str) -> str:
        """The URL of a new copy of `template`, and the next one started."""
        if self.worker is None:
            self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-copies")
        made = self.ahead.pop(template, None)
        name = made.result() if made is not None else self._make(template)
        self.ahead[template] = self.worker.submit(self._make, template)
        return _pg_url(name)

    def drop(self, url: str) -> None:
        assert self.worker is not None
        self.worker.submit(self._run, f'DROP DATABASE IF EXISTS "{_pg_name(url)}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the copies made ahead; wait for every drop."""
        for made in self.ahead.values():
            self._run(f'DROP DATABASE IF EXISTS "{made.result()}" WITH (FORCE)')
        self.ahead.clear()
        if self.worker is not None:
            self.worker.shutdown(wait=True)
            self.worker = None

    def drop_now(self, name: str) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_PG_COPIES = _PgCopies()


@pytest.fixture(scope="session")
def _world(tmp_path_factory, _postgres_ready, _sqlite_template) -> World:
    """The harvested world, built on first use: on SQLite from the migrated template; on
    PostgreSQL in a template database of its own (`<suite database>_world`), from which each
    test's database is made (CREATE DATABASE … TEMPLATE, the search index included: it is the
    schema portal_search of the same database)."""
    root = tmp_path_factory.mktemp("world")
    if _postgres_ready:
        url = _pg_url(_pg_name(PG_URL) + "_world")
        _PG_COPIES.drop_now(_pg_name(url))
        _PG_COPIES._run(f'CREATE DATABASE "{_pg_name(url)}"')
    else:
        shutil.copyfile(_sqlite_template, root / "portal.db")
        url = f"sqlite:///{root / 'portal.db'}"
    ctx = PortalContext(
        Settings(instance_path=root / "instance", database_url=url, search_backend=SEARCH_BACKEND)
    )
    harvest_world(ctx, root / "src")
    ctx.engine.dispose()
    world = World(root, url)
    yield world
    if _postgres_ready:
        _PG_COPIES.close()  # nothing is being copied from it any more
        _PG_COPIES.drop_now(_pg_name(url))


@pytest.fixture
def files_store() -> dict:
    """Where the data files go: {} is the local folder (the default); a test module overrides
    this fixture to put them elsewhere (tests/test_object_storage.py: a bucket on S3)."""
    return {}


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free loopback port (tests/test_object_storage.py, tests/test_two_nodes.py)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """A new bucket per test. Credentials and region come from the standard AWS variables,
    as a production machine may give them; the endpoint from PORTAL_FILES_OPTIONS."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "portal-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "portal-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"portal-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name


@pytest.fixture
def settings(tmp_path: Path, database_url: str, files_store: dict) -> Settings:
    return Settings(
        instance_path=tmp_path / "instance",
        database_url=database_url,
        search_backend=SEARCH_BACKEND,
        queue="inline",
        **files_store,
    )


@pytest.fixture
def ctx(settings: Settings) -> PortalContext:
    context = PortalContext(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def app(settings: Settings, files_store: dict):
    from portal.app import create_app

    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            **files_store,
            "search_backend": settings.search_backend,
            "TESTING": True,
        }
    )
    yield app
    app.extensions["portal"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def portal_data(request, app, tmp_path):
    """A harvested catalog with one dataset of every kind, indexed for search (a copy of the
    session's, or harvested here when the files are elsewhere: tests/test_object_storage.py).

    371502-scj-0001 药品零售企业名录        unconditional, GBK CSV, 3 rows
    371502-scj-0002 企业信用风险分类结果    conditional
    371502-scj-0003 执法检查底稿            not open
    371502-scj-0004 公益岗位人员名单        held (ID numbers)
    371502-jty-0001 公交站点位置            unconditional, other department, 45 rows
    371502-jty-0002 Bus routes (English)    unconditional, withdrawn by a second harvest

    The catalogs and files harvested are in tmp_path/src (scj.csv, jty.csv, p.csv, ids.csv, stops.csv).
    """
    ctx = app.extensions["portal"]
    if not request.node.stash.get(_COPIED, False):
        harvest_world(ctx, tmp_path / "src")
    return ctx


@pytest.fixture
def live_server(app):
    """The app on a real socket (for ckanapi and the browser)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


# ---------------------------------------------------------------------- people


@pytest.fixture
def make_user(app):
    """make_user(kind="citizen", bureau=, curator_of=, verified=, …) → (id, email, password):
    users made straight through the service (tests/factories.py `user`), verified unless told otherwise."""
    ctx = app.extensions["portal"]
    counter = {"n": 0}

    def make(kind="citizen", **options):
        counter["n"] += 1
        with ctx.sessions() as s:
            made = factories.user(
                s, kind, n=counter["n"], **{"credit": options.pop("credit_code", None), **options}
            )
            s.commit()
            return made.id, made.email, options.get("password", factories.PASSWORD)

    return make


class AuthActions:
    """Signing in and out through the pages, as flaskr's tutorial does: `auth.login(email, password)`."""

    def __init__(self, client) -> None:
        self._client = client

    def login(self, email: str, password: str = factories.PASSWORD):
        return login(self._client, email, password)

    def logout(self):
        from tests.helpers import post_form

        return post_form(self._client, "/logout", {}, page="/account")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def people(portal_data, make_user):
    """The licensing cast on `portal_data`: (id, email, password) by role (tests/test_tenders.py has a cast of its own)."""
    return {
        "applicant": make_user("company"),
        "curator": make_user(curator_of="dcf-scjgj"),
        "other_curator": make_user(curator_of="dcf-jtysj"),
        "bureau": make_user(bureau=True),
        "researcher": make_user("researcher"),
        "verified": make_user("researcher", researcher_verified=True),
        "stranger": make_user("citizen"),
    }


@pytest.fixture
def granted_world(portal_data, make_user):
    """A company holding a grant for two fields of 371502-scj-0002; returns its login."""
    from portal.models import User

    applicant, curator = make_user("company"), make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:
        app_ = submit(s, s.get(User, applicant[0]))
        approve(s, s.get(User, curator[0]), app_, fields=["企业名称", "所属街道"])
        accept(s, s.get(User, applicant[0]), app_)
    return applicant
