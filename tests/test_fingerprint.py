"""Traceable licensed files (issue 21, item 5): every licensed file carries its grant's
fingerprint without one data value changed, and the bureau's /admin/leaks page names the grant
of a leaked file — re-sorted, re-saved by pandas as XLSX or CSV, cut to 200 rows — and tells
two grants of the same dataset and the same fields apart. Everything through the real routes:
the holders download their ZIPs from /grants, the bureau posts the files to /admin/leaks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import zipfile
from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from licenses import applications as apps
from licenses import fingerprint
from portal import clock
from portal.catalog.rows import Scope, scoped_table
from portal.models import Dataset, DataTable, Distribution, LicensedFileHash, LicensedFileMark, User
from tests.catalogs import entry, write_csv
from tests.helpers import SCENARIO, SECURITY, accept, approve, harvest, login, post_form

COLUMNS = ["企业编号", "企业名称", "所属街道", "行业代码", "注册资本（万元）", "成立日期", "风险等级"]
STREETS = ["古楼街道", "新区街道", "柳园街道", "湖西街道", "道口铺街道", "闫寺街道", "凤凰街道", "北城街道"]
FIRMS = "371502-SCJ-0201"
OTHER = "371502-SCJ-0202"
ROWS = 600


def firm_rows(n: int, seed: int, prefix: str) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [
            f"{prefix}{i:05d}",
            f"聊城市{prefix}{i}商贸有限公司",
            rng.choice(STREETS),
            f"0{rng.randint(100, 999)}",  # a code with its leading zero
            f"{rng.randint(10, 99999) / 10:.1f}",
            (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 8000))).isoformat(),
            rng.choice("ABCD"),
        ]
        for i in range(n)
    ]


@pytest.fixture
def world(app, tmp_path, make_user):
    """A conditional dataset of 7 columns and 600 rows with three grants — two of all fields,
    one of all fields but only two streets' rows — and an unconditional dataset with the same
    columns and other rows; a bureau account."""
    ctx = app.extensions["portal"]
    src = tmp_path / "src"
    write_csv(src / "firms.csv", COLUMNS, firm_rows(ROWS, 1, "QY"))
    write_csv(src / "other.csv", COLUMNS, firm_rows(300, 2, "QZ"))
    harvest(
        ctx,
        src,
        [
            entry(FIRMS, "企业信用监管名录", "有条件开放", file="firms.csv", 开放条件="仅限监管用途"),
            entry(OTHER, "企业年报抽查名录", file="other.csv"),
        ],
    )
    holders = {k: make_user("company") for k in ("one", "two", "filtered")}
    curator = make_user(curator_of="dcf-scjgj")
    today = clock.today()
    grants = {}
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == FIRMS.lower()))
        for key, (uid, _email, _pw) in holders.items():
            [application] = apps.apply(
                s,
                s.get(User, uid),
                apps.Request(
                    [(ds, None)], "governance", SCENARIO, SECURITY, today, today + dt.timedelta(days=180)
                ),
            )
            s.commit()
            rows = {"所属街道": ["古楼街道", "新区街道"]} if key == "filtered" else None
            approve(s, s.get(User, curator[0]), application, rows=rows)
            grants[key] = accept(s, s.get(User, uid), application).licence_number
    return {"ctx": ctx, "holders": holders, "grants": grants, "bureau": make_user(bureau=True)}


def download(app, holder) -> zipfile.ZipFile:
    """The holder's licensed ZIP, through /grants and the signed link, as a browser gets it."""
    client = app.test_client()
    _uid, email, password = holder
    login(client, email, password)
    link = re.search(
        r'href="(/grants/\d+/download/[^"]+)"', client.get("/grants").get_data(as_text=True)
    ).group(1)
    response = client.get(link, follow_redirects=True)
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def source_table(ctx, fields=None, rows=None) -> pa.Table:
    """The dataset's served table, cut to a grant's scope: what the licensed files must hold."""
    with ctx.sessions() as s:
        table = s.scalar(
            select(DataTable).join(Distribution).join(Dataset).where(Dataset.name == FIRMS.lower())
        )
        path = ctx.storage.local_path(table.parquet_path)
    return scoped_table(pq.read_table(path), Scope(fields=fields, row_filter=rows))


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def in_source_order(header: list[str], rows: list, order: list[str]) -> list[tuple]:
    at = [header.index(c) for c in order]
    return sorted(tuple(r[i] for i in at) for r in rows)


def xlsx_cells(data: bytes) -> tuple[list[str], list[list]]:
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    return values[0], values[1:]


def plain(value):
    """A workbook's date cell comes back as a midnight datetime, a whole number as an int."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value.date() if isinstance(value, dt.datetime) and value.time() == dt.time(0) else value


class Bureau:
    def __init__(self, app, login_as):
        self.client = app.test_client()
        _uid, email, password = login_as
        login(self.client, email, password)

    def check(self, data: bytes, name: str, status: int = 200) -> str:
        response = post_form(
            self.client,
            "/admin/leaks",
            {"file": (io.BytesIO(data), name)},
            content_type="multipart/form-data",
        )
        assert response.status_code == status, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)


def leaks_of(zf: zipfile.ZipFile, fmt: str) -> dict[str, tuple[bytes, str]]:
    """What a holder passing the file on might send: the file itself, and the table re-sorted by
    a column (a stable sort, as Excel's), re-saved by pandas as XLSX and as CSV, and cut to 200
    rows — the first 200, and a random 200 kept in their order."""
    raw = zf.read(f"data.{fmt}")
    if fmt == "csv":
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        typed = pd.read_csv(io.BytesIO(raw))  # pandas' own guesses: 0512 becomes 512
    elif fmt == "parquet":
        df = typed = pd.read_parquet(io.BytesIO(raw))
    else:
        df = typed = pd.read_excel(io.BytesIO(raw), sheet_name=0)
    by_street = df.sort_values("所属街道", kind="stable")
    by_risk = typed.sort_values("风险等级", kind="stable", ascending=False)
    keep = sorted(random.Random(7).sample(range(len(by_street)), min(200, len(by_street))))

    def as_xlsx(frame: pd.DataFrame) -> bytes:
        out = io.BytesIO()
        frame.to_excel(out, index=False)
        return out.getvalue()

    return {
        "untouched": (raw, f"data.{fmt}"),
        "sorted-xlsx": (as_xlsx(by_street), "sorted.xlsx"),
        "sorted-csv": (by_street.to_csv(index=False).encode("utf-8-sig"), "sorted.csv"),
        "typed-sorted-csv-with-index": (by_risk.to_csv().encode("gbk"), "guessed.csv"),
        "head-200-csv": (by_street.head(200).to_csv(index=False).encode(), "head.csv"),
        "sample-200-xlsx": (as_xlsx(by_street.iloc[keep]), "sample.xlsx"),
    }


def test_each_licensed_file_names_its_grant_after_resorting_resaving_and_cutting(app, world):
    ctx, grants = world["ctx"], world["grants"]
    zips = {key: download(app, holder) for key, holder in world["holders"].items()}
    bureau = Bureau(app, world["bureau"])

    # Every file of every ZIP: the grant's own column order (never the dataset's), the same
    # values as the dataset's (only their order differs), the licence in the metadata.
    orders = {}
    for key, zf in zips.items():
        assert {"data.csv", "data.parquet", "data.xlsx"} <= set(zf.namelist())
        scope_rows = {"所属街道": ["古楼街道", "新区街道"]} if key == "filtered" else None
        source = source_table(ctx, rows=scope_rows)
        header, *rows = csv_rows(zf.read("data.csv"))
        orders[key] = header
        assert sorted(header) == sorted(COLUMNS) and header != COLUMNS
        expected_csv = csv_rows(_csv_bytes(source))
        assert in_source_order(header, rows, COLUMNS) == in_source_order(
            expected_csv[0], expected_csv[1:], COLUMNS
        )
        assert len(rows) == source.num_rows and (key == "filtered" or len(rows) == ROWS)
        parquet = pq.read_table(io.BytesIO(zf.read("data.parquet")))
        assert parquet.column_names == header
        assert parquet.schema.metadata[b"licence_number"].decode() == grants[key]
        assert (
            parquet.select(COLUMNS)
            .sort_by([(c, "ascending") for c in COLUMNS])
            .equals(source.sort_by([(c, "ascending") for c in COLUMNS]))
        )
        xhead, xrows = xlsx_cells(zf.read("data.xlsx"))
        assert xhead == header
        want = [
            [plain(v) for v in r] for r in zip(*(source.column(c).to_pylist() for c in header), strict=True)
        ]
        assert sorted(map(repr, ([plain(v) for v in r] for r in xrows))) == sorted(map(repr, want))
        assert (
            "0" + rows[0][header.index("行业代码")].lstrip("0") == rows[0][header.index("行业代码")]
        )  # kept as text
    assert len({tuple(o) for o in orders.values()}) == 3  # same dataset, same fields: three orders

    for key, zf in zips.items():
        others = [n for k, n in grants.items() if k != key]
        for fmt in ("csv", "parquet", "xlsx"):
            for variant, (data, name) in leaks_of(zf, fmt).items():
                page = bureau.check(data, name)
                where = f"{key} {fmt} {variant}"
                assert grants[key] in page, where
                assert not any(n in page for n in others), where
                if variant == "untouched":
                    assert "逐字节相同" in page and "确定" in page, where
                else:  # two layers agree: the grant's column order and its row order
                    assert (
                        "列的顺序与该授权的文件一致" in page and "相邻行的先后与该授权的文件一致" in page
                    ), where


def test_the_whole_zip_and_a_file_of_another_dataset(app, world):
    ctx, grants = world["ctx"], world["grants"]
    zf = download(app, world["holders"]["one"])
    bureau = Bureau(app, world["bureau"])
    with ctx.sessions() as s:
        served = s.scalars(select(LicensedFileHash.format)).all()
        assert Counter(served) == Counter({"csv": 1, "parquet": 1, "xlsx": 1, "zip": 1})
    # The ZIP as it was downloaded is named by its bytes.
    buffer = io.BytesIO()
    zf.fp.seek(0)
    buffer.write(zf.fp.read())
    page = bureau.check(buffer.getvalue(), "forwarded.zip")
    assert grants["one"] in page and "确定" in page

    # Another dataset's rows, even with the same column names and in grant one's own column
    # order (someone framing the holder), name no grant.
    header = csv_rows(zf.read("data.csv"))[0]
    public = app.test_client()
    with ctx.sessions() as s:
        table_id = s.scalar(
            select(DataTable.id).join(Distribution).join(Dataset).where(Dataset.name == OTHER.lower())
        )
    other = public.get(f"/dataset/{OTHER.lower()}/download/{table_id}.csv")
    assert other.status_code == 200
    frame = pd.read_csv(io.BytesIO(other.get_data()), dtype=str, keep_default_na=False)
    for data, name in (
        (other.get_data(), "other.csv"),
        (frame[header].to_csv(index=False).encode(), "framed.csv"),
    ):
        page = bureau.check(data, name)
        assert "没有授权与文件相符" in page, name
        assert not any(n in page for n in grants.values()), name

    # A column dropped: the order of those left and the rows matched in the dataset still
    # name the grant. Sorted by a unique key, the column order alone still points to it; with
    # the columns put back in the dataset's order as well, nothing is left to tell (the limit
    # the page states).
    mine = pd.read_csv(io.BytesIO(zf.read("data.csv")), dtype=str, keep_default_na=False)
    fewer = mine.drop(columns=["企业名称"]).sort_values("所属街道", kind="stable")
    page = bureau.check(fewer.to_csv(index=False).encode(), "fewer.csv")
    assert grants["one"] in page and "相邻行的先后与该授权的文件一致" in page and "6 列的顺序" in page
    by_id = mine.sort_values("企业编号")
    page = bureau.check(by_id.to_csv(index=False).encode(), "by-id.csv")
    assert grants["one"] in page and "可能：有证据指向" in page and "相邻行的先后与该授权的文件无关" in page
    page = bureau.check(by_id[COLUMNS].to_csv(index=False).encode(), "by-id-own-order.csv")
    assert "没有授权与文件相符" in page and not any(n in page for n in grants.values())

    # Not a table at all: a clear message, nothing named.
    assert "压缩文件已损坏" in bureau.check(b"PK\x03\x04broken", "x.xlsx", status=400)
    assert "文件是空的" in bureau.check(b"", "empty.csv", status=400)


def test_the_page_is_the_bureaus_and_every_check_is_audited(app, world):
    zf = download(app, world["holders"]["two"])
    holder = app.test_client()
    _uid, email, password = world["holders"]["two"]
    login(holder, email, password)
    assert holder.get("/admin/leaks").status_code == 403
    bureau = Bureau(app, world["bureau"])
    page = bureau.client.get("/admin/leaks").get_data(as_text=True)
    assert "泄露文件溯源" in page and "局限" in page and 'type="file"' in page
    bureau.check(zf.read("data.csv"), "data.csv")
    with world["ctx"].sessions() as s:
        from portal.models import AuditEvent

        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "leak_checked")).all()
        assert event.detail["named"] == {world["grants"]["two"]: "certain"}
    english = bureau.client.get("/admin/leaks?lang=en")
    assert "Trace a leaked file" in english.get_data(as_text=True)


def test_orders_are_given_once_and_differ_while_unused_ones_remain(world):
    """Three columns: five orders besides the dataset's own; a sixth grant shares one (and the
    page says column order cannot tell those two apart)."""
    from collections import Counter as C

    columns = ["a", "b", "c"]
    used: C[tuple[str, ...]] = C()
    for _ in range(5):
        order, reuse = fingerprint.choose_order(columns, used)
        assert reuse == 0 and tuple(order) != tuple(columns) and not used[tuple(order)]
        used[tuple(order)] += 1
    order, reuse = fingerprint.choose_order(columns, used)
    assert reuse == 1 and tuple(order) != tuple(columns)
    with world["ctx"].sessions() as s:
        assert s.scalars(select(LicensedFileMark)).all() == []  # made when a file is first built


def test_canonical_values_match_what_tools_write_back():
    c = fingerprint.canon
    assert c("0512") == c(512) == c(512.0) == "512"
    assert c("1.50") == c(1.5) == "1.5"
    assert (
        c("2015-03-07")
        == c(dt.date(2015, 3, 7))
        == c(dt.datetime(2015, 3, 7))
        == c("2015/3/7")
        == "2015-03-07"
    )
    assert c(" 古楼街道 ") == "古楼街道" and c(None) == c("") == c(float("nan")) == ""
    assert c("=HYPERLINK(1)") == "=HYPERLINK(1)" and c(True) == c("TRUE") == "true"


def _csv_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    return out.getvalue()
