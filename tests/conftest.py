"""Fixtures: a real database (SQLite by default; PostgreSQL when PORTAL_TEST_DATABASE_URL
names one), a real instance folder, and the real CKAN from ../shared/ckan when CKAN_URL is set."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from portal.config import Settings
from portal.context import PortalContext
from portal.db import make_engine, upgrade

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
# On PostgreSQL the suite also searches with PostgreSQL full-text search; on SQLite, Whoosh.
SEARCH_BACKEND = "postgres" if PG_URL else "whoosh"


@pytest.fixture(autouse=True)
def _quick_password_hashing(monkeypatch):
    """scrypt costs ~70 ms a hash by design; the suite hashes hundreds of passwords.
    test_accounts.py::test_passwords_are_stored_with_scrypt checks the real setting."""
    from portal import accounts

    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


def pytest_report_header(config) -> str:
    return f"database: {PG_URL or 'SQLite (a new file per test)'}; search backend: {SEARCH_BACKEND}"


@pytest.fixture(scope="session")
def _postgres_ready():
    """Start PostgreSQL runs from an empty schema, migrated once; tests then truncate."""
    if not PG_URL:
        return None
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("DROP SCHEMA IF EXISTS portal_search CASCADE"))  # the search backend's table
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    engine = make_engine(PG_URL)
    upgrade(engine)
    engine.dispose()
    return PG_URL


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


@pytest.fixture
def database_url(tmp_path: Path, _postgres_ready, _sqlite_template) -> str:
    if not _postgres_ready:
        import shutil

        shutil.copyfile(_sqlite_template, tmp_path / "portal.db")
        return f"sqlite:///{tmp_path / 'portal.db'}"
    engine = create_engine(_postgres_ready)
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('public', 'portal_search') "
            "AND tablename <> 'alembic_version'")).scalars().all()
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _postgres_ready


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
    return Settings(instance_path=tmp_path / "instance", database_url=database_url,
                    search_backend=SEARCH_BACKEND, **files_store)


@pytest.fixture
def ctx(settings: Settings) -> PortalContext:
    context = PortalContext(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def app(settings: Settings, files_store: dict):
    from portal.app import create_app

    app = create_app({"instance": settings.instance_path, "database_url": settings.database_url, **files_store,
                      "search_backend": settings.search_backend, "TESTING": True})
    yield app
    app.extensions["portal"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def portal_data(app, tmp_path):
    """A harvested catalog with one dataset of every kind, indexed for search.

    371502-scj-0001 药品零售企业名录        unconditional, GBK CSV, 3 rows
    371502-scj-0002 企业信用风险分类结果    conditional
    371502-scj-0003 执法检查底稿            not open
    371502-scj-0004 公益岗位人员名单        held (ID numbers)
    371502-jty-0001 公交站点位置            unconditional, other department, 45 rows
    371502-jty-0002 Bus routes (English)    unconditional, withdrawn by a second harvest
    """
    from harvest.sources import SpreadsheetSource
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

    ctx = app.extensions["portal"]
    header, rows = PHARMACIES
    write_csv(tmp_path / "src/p.csv", header, rows, "gbk")
    write_csv(tmp_path / "src/ids.csv", ["姓名", "身份证号"], [["张三", "11010519491231002X"]])
    write_csv(tmp_path / "src/stops.csv", ["站点名称", "所属街道", "经度", "纬度"],
              [[f"东昌路{i}号站", "古楼街道", f"115.9{i % 10}", f"36.4{i % 10}"] for i in range(45)])
    scj = [entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv", 关键词="药店、许可"),
           entry("371502-SCJ-0002", "企业信用风险分类结果", "有条件开放", file="p.csv", 开放条件="仅限监管用途"),
           entry("371502-SCJ-0003", "执法检查底稿", "不予开放", file="p.csv"),
           entry("371502-SCJ-0004", "公益岗位人员名单", file="ids.csv")]
    jty = [entry("371502-JTY-0001", "公交站点位置", file="stops.csv", dept="东昌府区交通运输局", dept_code="dcf-jtysj",
                 数据领域="交通运输", 发布日期="2025-06-01", 更新周期="每日"),
           entry("371502-JTY-0002", "Bus routes", file="stops.csv", dept="东昌府区交通运输局", dept_code="dcf-jtysj",
                 数据领域="交通运输", 信息资源摘要="Bus routes and stops of the district")]
    harvester = ctx.harvester()
    harvester.run(SpreadsheetSource(write_catalog(tmp_path / "src/scj.csv", scj)))
    jty_catalog = write_catalog(tmp_path / "src/jty.csv", jty)
    harvester.run(SpreadsheetSource(jty_catalog))
    write_catalog(jty_catalog, jty[:1])  # the English entry leaves the catalog: withdrawn
    harvester.run(SpreadsheetSource(jty_catalog))
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


# ---------------------------------------------------------------------- accounts

def hidden_fields(html: str) -> dict:
    """The hidden inputs of the first form on a page (CSRF token, nonce)."""
    import re

    return dict(re.findall(r'<input[^>]*name="(csrf_token|nonce)"[^>]*value="([^"]*)"', html))


def post_form(client, url: str, data: dict, page: str | None = None, **kw):
    """Fetch the form (or `page`), then post it with its hidden fields, as a browser would."""
    html = client.get(page or url).get_data(as_text=True)
    return client.post(url, data={**hidden_fields(html), **data}, **kw)


@pytest.fixture
def make_user(app):
    """Create users straight through the service (verified unless told otherwise)."""
    from portal import accounts
    from portal.models import Department, utcnow

    ctx = app.extensions["portal"]
    counter = {"n": 0}

    def make(kind="citizen", *, bureau=False, curator_of=None, verified=True, researcher_verified=False,
             company_verified=True, password="Long-enough-pass-1", **extra):
        counter["n"] += 1
        with ctx.sessions() as s:
            reg = accounts.Registration(email=extra.pop("email", f"user{counter['n']}@example.cn"), password=password,
                                        name=extra.pop("name", f"用户{counter['n']}"), kind=kind,
                                        company_name="聊城市鲁西化工有限公司" if kind == "company" else None,
                                        credit_code=extra.pop("credit_code", None) or (
                                            _credit_code(counter["n"]) if kind == "company" else None),
                                        institution="聊城大学" if kind == "researcher" else None)
            user = accounts.register(s, reg)
            user.is_bureau = bureau
            if verified:
                user.email_verified_at = utcnow()
            if researcher_verified:
                user.researcher_verified_at = utcnow()
            if kind == "company" and company_verified and verified:
                user.company_verified_at = utcnow()
            if curator_of:
                dept = s.query(Department).filter_by(code=curator_of).one_or_none()
                if dept is None:
                    dept = Department(code=curator_of, name=f"部门{curator_of}")
                    s.add(dept)
                user.curator_department = dept
            s.commit()
            return user.id, reg.email, password
    return make


def _credit_code(n: int) -> str:
    """A valid 统一社会信用代码 of its own for each company the tests make (one company, one code)."""
    from stdnum.cn import uscc

    body = f"91371500MA3C{n:05d}"
    return body + uscc.calc_check_digit(body)


def login(client, email: str, password: str):
    return post_form(client, "/login", {"email": email, "password": password})


@pytest.fixture
def granted_world(portal_data, make_user):
    """A company holding a grant for two fields of 371502-scj-0002; returns its login."""
    from portal.models import User
    from tests.test_licensing import accept, approve, submit

    applicant, curator = make_user("company"), make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:
        app_ = submit(s, s.get(User, applicant[0]))
        approve(s, s.get(User, curator[0]), app_, fields=["企业名称", "所属街道"])
        accept(s, s.get(User, applicant[0]), app_)
    return applicant
