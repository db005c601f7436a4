"""Helpers the tests share (CONTRIBUTING.md): shared helpers live here, rows come from
tests/factories.py, fixtures from the conftest.py files, and no test module imports from
another test module or from a conftest (tests/test_layers.py checks it).

Sections: the run (database, ports, processes); pages and forms; licensing and tenders; files
and tables; the harvested world of `portal_data`; the publication gate's reading of every
public answer; the browser."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from harvest.sources import SpreadsheetSource
from portal.models import Base, Dataset, DataTable, Distribution, User
from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
# On PostgreSQL the suite also searches with PostgreSQL full-text search; on SQLite, Whoosh.
SEARCH_BACKEND = "postgres" if PG_URL else "whoosh"


# ---------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_nginx() -> None:
    """Debian's nginx, for the tests that put it in front of gunicorn: required under CI."""
    import pytest

    if not shutil.which("nginx"):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's nginx (apt-get install nginx-light)")
        pytest.skip("nginx is not installed")


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    import requests

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


# ---------------------------------------------------------------------- pages and forms


def hidden_fields(html: str) -> dict:
    """The hidden inputs of the first form on a page (CSRF token, nonce)."""
    return dict(re.findall(r'<input[^>]*name="(csrf_token|nonce)"[^>]*value="([^"]*)"', html))


def post_form(client, url: str, data: dict, page: str | None = None, **kw):
    """Fetch the form (or `page`), then post it with its hidden fields, as a browser would."""
    html = client.get(page or url).get_data(as_text=True)
    return client.post(url, data={**hidden_fields(html), **data}, **kw)


def login(client, email: str, password: str):
    return post_form(client, "/login", {"email": email, "password": password})


# ---------------------------------------------------------------------- licensing and tenders

SCENARIO = "用于城市药品供应保障分析，形成街道级监测看板"
SECURITY = "专人管理，加密存储，访问留痕，不联网传输原始数据"


def conditional(s) -> Dataset:
    """371502-scj-0002, the conditional dataset of `portal_data`."""
    return s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))


def submit(s, applicant, purpose="governance", fields=None, **kw):
    """An application for the conditional dataset, submitted by `applicant`."""
    import datetime as dt

    from licenses import applications as apps
    from portal import clock

    today = clock.today()
    [app] = apps.apply(
        s,
        applicant,
        apps.Request(
            datasets=[(conditional(s), fields)],
            purpose=purpose,
            scenario=SCENARIO,
            security_measures=SECURITY,
            period_from=today,
            period_until=today + dt.timedelta(days=180),
        ),
        **kw,
    )
    s.commit()
    return app


def approve(s, curator, app, fields=None, rows=None):
    import datetime as dt

    from licenses import applications as apps
    from portal import clock

    today = clock.today()
    item = app.items[0]
    apps.approve(
        s,
        curator,
        app,
        app.version,
        fields={item.id: fields} if fields else {},
        row_filters={item.id: rows} if rows else {},
        valid_from=today,
        valid_until=today + dt.timedelta(days=90),
    )
    s.commit()


def accept(s, applicant, app, site="http://portal.test"):
    from licenses import grants

    sha = hashlib.sha256(grants.agreement_for(app, site).encode()).hexdigest()
    grant = grants.accept(s, applicant, app, app.version, sha, site, ip="10.1.2.3")
    s.commit()
    return grant


def granted(portal_data, people, fields=None, rows=None):
    """people["applicant"] holds a grant for the conditional dataset, approved by people["curator"]."""
    with portal_data.sessions() as s:
        app = submit(s, s.get(User, people["applicant"][0]))
        approve(s, s.get(User, people["curator"][0]), app, fields=fields, rows=rows)
        grant = accept(s, s.get(User, people["applicant"][0]), app)
        grant.agreement.text  # loaded for the test to compare after the session  # noqa: B018
        return grant


def download_link(client, people) -> str:
    """The applicant's licensed download link, read from their /grants page after signing in."""
    _, email, password = people["applicant"]
    login(client, email, password)
    page = client.get("/grants").get_data(as_text=True)
    return re.search(r'href="(/grants/\d+/download/[^"]+)"', page).group(1)


def make_tender(s, people, min_bids=2):
    """An open tender for the conditional dataset, opened by people["bureau"] an hour ago."""
    import datetime as dt

    from licenses import tenders as svc
    from portal.models import utcnow

    now = utcnow()
    tender = svc.open_tender(
        s,
        s.get(User, people["bureau"][0]),
        svc.TenderDraft(
            title="企业信用风险数据商业开发授权",
            datasets=[(conditional(s), None)],
            licence_months=12,
            territory="东昌府区",
            qualifications="依法设立的企业",
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(days=7),
            min_bids=min_bids,
        ),
    )
    s.commit()
    return tender


# ---------------------------------------------------------------------- files and tables


def table_counts(engine) -> dict[str, int]:
    """Rows in every table of the portal."""
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in Base.metadata.sorted_tables
        }


def files_of(root) -> dict[str, str]:
    """name -> sha256 of every data file under a files folder (not the scratch, the cache or the marker)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in (".scratch", ".cache", ".portal-deployment")
    }


def table_of(ctx, name) -> DataTable:
    """The (first) table of a dataset's current version."""
    with ctx.sessions() as s:
        return s.scalar(select(DataTable).join(Distribution).join(Dataset).where(Dataset.name == name))


def downloads_of(ctx, name) -> int:
    """A dataset's download count once the counters' pending batch is in (portal/counters.py)."""
    ctx.counters.flush()
    with ctx.sessions() as s:
        return s.scalar(select(Dataset.download_count).where(Dataset.name == name))


# ---------------------------------------------------------------------- the harvested world


def harvest_world(ctx, src: Path) -> None:
    """Harvest the catalog `portal_data` describes (tests/conftest.py) into `ctx`, writing its
    catalogs and data files into `src`."""
    header, rows = PHARMACIES
    write_csv(src / "p.csv", header, rows, "gbk")
    write_csv(src / "ids.csv", ["姓名", "身份证号"], [["张三", "11010519491231002X"]])
    write_csv(
        src / "stops.csv",
        ["站点名称", "所属街道", "经度", "纬度"],
        [[f"东昌路{i}号站", "古楼街道", f"115.9{i % 10}", f"36.4{i % 10}"] for i in range(45)],
    )
    scj = [
        entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv", 关键词="药店、许可"),
        entry("371502-SCJ-0002", "企业信用风险分类结果", "有条件开放", file="p.csv", 开放条件="仅限监管用途"),
        entry("371502-SCJ-0003", "执法检查底稿", "不予开放", file="p.csv"),
        entry("371502-SCJ-0004", "公益岗位人员名单", file="ids.csv"),
    ]
    jty = [
        entry(
            "371502-JTY-0001",
            "公交站点位置",
            file="stops.csv",
            dept="东昌府区交通运输局",
            dept_code="dcf-jtysj",
            数据领域="交通运输",
            发布日期="2025-06-01",
            更新周期="每日",
        ),
        entry(
            "371502-JTY-0002",
            "Bus routes",
            file="stops.csv",
            dept="东昌府区交通运输局",
            dept_code="dcf-jtysj",
            数据领域="交通运输",
            信息资源摘要="Bus routes and stops of the district",
        ),
    ]
    harvester = ctx.harvester()
    harvester.run(SpreadsheetSource(write_catalog(src / "scj.csv", scj)))
    jty_catalog = write_catalog(src / "jty.csv", jty)
    harvester.run(SpreadsheetSource(jty_catalog))
    write_catalog(jty_catalog, jty[:1])  # the English entry leaves the catalog: withdrawn
    harvester.run(SpreadsheetSource(jty_catalog))


# ---------------------------------------------------------------------- the publication gate
# Harvest a catalog, then read back every byte any public path answers — every format of every
# table of every version, bundles, previews, the data API, the CKAN API, DCAT and search — as a
# person or a program would get it.


def luhn_complete(body: str) -> str:
    """`body` with the check digit that makes it a valid bank card number."""
    for d in "0123456789":
        digits = body + d
        total = sum(
            (int(c) * 2 - 9 if int(c) * 2 > 9 else int(c) * 2) if i % 2 else int(c)
            for i, c in enumerate(reversed(digits))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError


CARD = luhn_complete("622202123456789012")


def harvest(ctx, folder, entries, name="catalog.csv"):
    report = ctx.harvester().run(SpreadsheetSource(write_catalog(folder / name, entries)))
    from portal.search.sync import sync

    sync(ctx.sessions, ctx.search)
    return report


def text_of(body: bytes, content_type: str) -> str:
    """What a reader sees in an answer: CSV/JSON/HTML as text, XLSX cells, Parquet rows, and
    every file in a ZIP."""
    if body[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            names = zf.namelist()
            if "xl/workbook.xml" in names:
                from openpyxl import load_workbook

                wb = load_workbook(io.BytesIO(body), read_only=True)
                return "\n".join(
                    str(c) for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for c in r
                )
            return "\n".join(text_of(zf.read(n), "") for n in names)
    if body[:4] == b"PAR1":
        import pyarrow.parquet as pq

        return str(pq.read_table(io.BytesIO(body)).to_pylist())
    return body.decode("utf-8", errors="replace")


def public_answers(client, ctx) -> dict[str, str]:
    """url -> text of every 200 answer a stranger can get about any dataset, whatever its
    status: the ids of all tables of all versions are tried, not only the linked ones."""
    with ctx.sessions() as s:
        datasets = s.scalars(select(Dataset)).all()
        tables = s.execute(
            select(Dataset.name, Dataset.title, DataTable.id, DataTable.position)
            .join(Distribution, Distribution.dataset_id == Dataset.id)
            .join(DataTable, DataTable.distribution_id == Distribution.id)
        ).all()
        names = [(d.name, d.title) for d in datasets]
    urls = [
        "/",
        "/search?q=",
        "/lists",
        "/catalog.ttl",
        "/api/3/action/package_search?rows=1000",
        "/api/3/action/current_package_list_with_resources?limit=1000",
    ]
    for name, title in names:
        urls += [
            f"/dataset/{name}",
            f"/dataset/{name}?preview=2",
            f"/api/3/action/package_show?id={name}",
            f"/api/data/{name}?limit=1000",
            f"/api/data/{name}?limit=1000&format=csv",
            f"/api/data/{name}/fields",
            f"/dataset/{name}/datapackage.json",
            f"/search?q={title[:2]}",
        ]  # a word of the title: the page repeats the query itself
    for name, _title, table_id, _formats in tables:
        urls += [f"/dataset/{name}/download/{table_id}.{fmt}" for fmt in ("csv", "xlsx", "json", "parquet")]
        urls += [
            f"/dataset/{name}/bundle/{table_id}.zip",
            f"/api/data/{name}?table={table_id}&limit=1000",
            f"/api/3/action/resource_show?id={table_id}-csv",
        ]
    answers = {}
    for url in dict.fromkeys(urls):
        resp = client.get(url)
        if resp.status_code == 302 and "download" in url:  # an object store's signed link
            resp = client.get(resp.headers["Location"])
        if resp.status_code == 200:
            answers[url] = text_of(resp.get_data(), resp.content_type or "")
    return answers


def leaks(client, ctx, secrets: list[str]) -> dict[str, list[str]]:
    """Which planted values any public answer holds (compared without spaces and dashes)."""

    def bare(text: str) -> str:
        return text.replace(" ", "").replace("-", "").replace("\u3000", "")

    found: dict[str, list[str]] = {}
    for url, text in public_answers(client, ctx).items():
        hits = [v for v in secrets if bare(v) in bare(text)]
        if hits:
            found[url] = hits
    return found


def dataset(ctx, name):
    from sqlalchemy.orm import selectinload

    with ctx.sessions() as s:
        return s.scalar(
            select(Dataset)
            .where(Dataset.name == name)
            .options(selectinload(Dataset.distributions).selectinload(Distribution.tables))
        )


# ---------------------------------------------------------------------- the browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = (1366, 900)
PHONE = (390, 844)  # a phone of today, in CSS pixels
SHOTS = ROOT / "docs" / "screenshots"


def shot(page, name: str) -> None:
    """With PORTAL_SCREENSHOTS=1, the page as it is now, saved to docs/screenshots/<name>.png."""
    if os.environ.get("PORTAL_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(p, base: str, email: str, password: str) -> None:
    """Sign in through the login form of the portal at `base`."""
    p.goto(base + "/login")
    p.get_by_label("邮箱").fill(email)
    p.get_by_label("密码").fill(password)
    p.get_by_role("button", name="登录").click()
    p.wait_for_url("**/account")


def sideways_overflow(page) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


# Chinese characters and the full-width punctuation that comes with them (，。：「」（）…).
CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


# An English sentence may quote the catalog's words: file “名录.csv”, column “身份证号”.
QUOTED = re.compile(r"“[^”]*”")


def chinese_interface_text(page) -> list[str]:
    """The words of an English page that are still Chinese — text, hidden text for screen readers,
    labels, placeholders and titles — leaving out the catalog's own words, which the templates
    mark lang="zh-CN" (titles, departments, domains, table data), and what people wrote
    themselves (names, a query), marked translate="no"."""
    found = page.evaluate("""() => {
        const out = [];
        const catalog = n => n.closest && n.closest('[lang^="zh"], [translate="no"], script, style, template');
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            if (!catalog(n.parentElement) && n.textContent.trim()) out.push(n.textContent.trim());
        }
        for (const e of document.body.querySelectorAll('[aria-label], [placeholder], [title], [alt], input[type=submit]')) {
            if (catalog(e)) continue;
            for (const a of ['aria-label', 'placeholder', 'title', 'alt', 'value']) {
                const v = e.getAttribute(a);
                if (v && (a !== 'value' || e.type === 'submit')) out.push(v);
            }
        }
        return out;
    }""")
    return [text for text in found if CHINESE.search(QUOTED.sub("", text))]


# ---------------------------------------------------------------------- mail


class _SMTPHandler(socketserver.StreamRequestHandler):
    """A real SMTP conversation. `server.refuse` connections are answered 451 at MAIL FROM,
    `server.stall` connections are left hanging after the message's last line (a worker killed
    while it waits); every message accepted is kept in `server.messages`."""

    def handle(self) -> None:
        server = self.server
        with server.lock:
            server.connections += 1
            refuse, stall = server.refuse > 0, server.stall > 0
            server.refuse -= refuse
            server.stall -= stall
        self.wfile.write(b"220 test ESMTP\r\n")
        data, in_data = [], False
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace")
            if in_data:
                if line.rstrip("\r\n") != ".":
                    data.append(line)
                    continue
                in_data = False
                if stall:
                    server.stalled.set()
                    time.sleep(60)
                    return
                server.messages.append("".join(data))
                self.wfile.write(b"250 queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == "MAIL" and refuse:
                self.wfile.write(b"451 try again later\r\n")
            elif verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@contextlib.contextmanager
def smtp_server():
    """A mail server on a free loopback port; `.url` is its PORTAL_SMTP_URL."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.messages, server.connections, server.refuse, server.stall = [], 0, 0, 0
    server.lock, server.stalled = threading.Lock(), threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"smtp://127.0.0.1:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()


# ---------------------------------------------------------------- the data sandbox (issue 21)

SANDBOX_DATASET = "371502-mzj-0888"
# 广平乡 has 3 records: below k=10, its cells are suppressed.
SANDBOX_STREETS = {"古楼街道": 120, "柳园街道": 90, "新区街道": 60, "广平乡": 3}


def _sandbox_id_number(rng) -> str:
    from stdnum.cn import ric

    body = f"371502{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(100, 999)}"
    return body + ric.calc_check_digit(body)


def sandbox_rows() -> list[list[str]]:
    import random

    rng = random.Random(21)
    surnames, given = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
    rows = []
    for street, n in SANDBOX_STREETS.items():
        for _i in range(n):
            rows.append(
                [
                    rng.choice(surnames) + rng.choice(given) + rng.choice(given),
                    _sandbox_id_number(rng),
                    street,
                    str(rng.randint(600, 2400)),
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                ]
            )
    rng.shuffle(rows)
    return rows


SANDBOX_HEADER = ["姓名", "身份证号", "所属街道", "月补贴金额", "发放日期"]


def make_sandbox_world(portal_data, tmp_path, make_user) -> dict:
    """A conditional dataset of 273 people; a researcher applies, the civil-affairs curator
    approves it for sandbox delivery, the researcher accepts."""
    import datetime as dt

    from licenses import applications as apps
    from portal import clock

    write_csv(tmp_path / "src" / "relief.csv", SANDBOX_HEADER, sandbox_rows())
    harvest(
        portal_data,
        tmp_path / "src",
        [
            entry(
                "371502-MZJ-0888",
                "困难群众救助发放明细（沙箱）",
                "有条件开放",
                file="relief.csv",
                dept="东昌府区民政局",
                dept_code="dcf-mzj",
                开放条件="仅限社会救助研究，须签订数据使用协议",
            )
        ],
    )
    applicant, curator = make_user("company"), make_user(curator_of="dcf-mzj")
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == SANDBOX_DATASET))
        assert ds is not None and ds.is_public, "the dataset is published as conditional"
        today = clock.today()
        [app] = apps.apply(
            s,
            s.get(User, applicant[0]),
            apps.Request(
                datasets=[(ds, None)],
                purpose="governance",
                scenario="分析各街道救助覆盖情况，用于优化救助资源配置。",
                security_measures="专人专机，数据不出本单位网络，用后删除。",
                period_from=today,
                period_until=today + dt.timedelta(days=180),
            ),
        )
        s.commit()
        apps.approve(
            s,
            s.get(User, curator[0]),
            app,
            app.version,
            fields={},
            row_filters={},
            valid_from=today,
            valid_until=today + dt.timedelta(days=90),
            delivery="sandbox",
        )
        s.commit()
        grant = accept(s, s.get(User, applicant[0]), app)
        return {
            "applicant": applicant,
            "curator": curator,
            "grant_id": grant.id,
            "licence": grant.licence_number,
        }


def kept_in_worker(app, readers: bool = False) -> list[str]:
    """The texts this worker keeps rendered (portal/fragments.py): the parts kept for every
    reader, or (readers=True) the parts a signed-in reader's own ({% mine %}, keyed by them)."""
    out = []
    for key, (_g, _e, _n, value) in list(app.extensions["portal"].fragments._entries.items()):
        if (key[0][0] == "mine") != readers:
            continue
        if isinstance(value, tuple):  # a data API answer (body, headers, type)
            value = value[0].decode() if isinstance(value[0], bytes) else value[0]
        out.extend(value.values() if isinstance(value, dict) else [str(value)])
    return out


def counted_calls(ctx, **where) -> int:
    """Downloads and API calls in the statistics table (DailyCounter), summed over `where`."""
    from portal.models import DailyCounter

    with ctx.sessions() as s:
        query = select(func.coalesce(func.sum(DailyCounter.count), 0))
        for name, value in where.items():
            query = query.where(getattr(DailyCounter, name) == value)
        return int(s.scalar(query))


def empty_redis(url: str):
    """A Redis database emptied for the test (the test is skipped where no Redis runs)."""
    import pytest
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    return client


@contextlib.contextmanager
def another_process(app, settings):
    """The harvest, the CLI or another worker: its own engine and sessions on the same instance
    (and the same Redis when there is one)."""
    from portal.config import Settings
    from portal.context import PortalContext

    other = PortalContext(
        Settings(
            instance_path=settings.instance_path,
            database_url=settings.database_url,
            search_backend=settings.search_backend,
            redis_url=app.extensions["portal"].settings.redis_url,
        )
    )
    try:
        yield other
    finally:
        other.engine.dispose()
