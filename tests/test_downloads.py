"""Downloads: every format, resumable, cacheable, Chinese names, attribution in the files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from portal import clock
from portal.models import Dataset, DataTable
from tests.helpers import downloads_of, table_of


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "parquet"])
def test_every_format_downloads_with_its_published_size_and_sha256(client, portal_data, fmt):
    t = table_of(portal_data, "371502-scj-0001")
    response = client.get(f"/dataset/371502-scj-0001/download/{t.id}.{fmt}")
    body = response.get_data()
    assert response.status_code == 200
    assert (
        len(body) == t.formats[fmt]["size"] and hashlib.sha256(body).hexdigest() == t.formats[fmt]["sha256"]
    )


def test_chinese_file_name_etag_and_last_modified(client, portal_data):
    t = table_of(portal_data, "371502-scj-0001")
    response = client.get(f"/dataset/371502-scj-0001/download/{t.id}.csv")
    disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("药品零售企业名录-")
    assert response.headers["ETag"].strip('"') == t.formats["csv"]["sha256"]
    assert response.headers["Last-Modified"] and response.headers["Accept-Ranges"] == "bytes"
    assert "聊城市鲁西大药房古楼店" in response.get_data().decode("utf-8")  # GBK source, UTF-8 out


def test_a_broken_download_resumes_with_range(client, portal_data):
    t = table_of(portal_data, "371502-scj-0001")
    url = f"/dataset/371502-scj-0001/download/{t.id}.csv"
    whole = client.get(url).get_data()
    part = client.get(url, headers={"Range": "bytes=10-", "If-Range": client.get(url).headers["ETag"]})
    assert part.status_code == 206 and part.get_data() == whole[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(whole) - 1}/{len(whole)}"


def test_conditional_requests_answer_304(client, portal_data):
    t = table_of(portal_data, "371502-scj-0001")
    url = f"/dataset/371502-scj-0001/download/{t.id}.parquet"
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_downloads_are_counted_once_per_download(client, portal_data):
    t = table_of(portal_data, "371502-scj-0001")
    url = f"/dataset/371502-scj-0001/download/{t.id}.csv"
    client.get(url)
    client.get(url, headers={"Range": "bytes=5-"})  # the rest of the same download
    client.head(url)
    for _ in range(5):  # a probe of one byte is not a download (the attack review: 30 counted)
        assert client.get(url, headers={"Range": "bytes=0-0"}).status_code == 206
    assert downloads_of(portal_data, "371502-scj-0001") == 1


def test_a_download_writes_nothing_and_every_one_is_counted_after_the_batch(client, portal_data):
    """Issue 22: a download is a read. Its count waits in the counters and reaches the day's row
    and the dataset's total in one batch: as many as were served, none twice."""
    from sqlalchemy import event, func

    from portal.models import DailyCounter

    t = table_of(portal_data, "371502-scj-0001")
    url = f"/dataset/371502-scj-0001/download/{t.id}.csv"
    with portal_data.sessions() as s:
        before = s.scalar(select(Dataset.download_count).where(Dataset.name == "371502-scj-0001"))
    writes: list[str] = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    engine = portal_data.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(7):
            assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert writes == []
    portal_data.counters.flush()
    portal_data.counters.flush()  # a second flush adds nothing
    with portal_data.sessions() as s:
        assert s.scalar(select(Dataset.download_count).where(Dataset.name == "371502-scj-0001")) == before + 7
        assert s.scalar(select(func.sum(DailyCounter.count)).where(DailyCounter.kind == "download")) == 7


def test_attribution_travels_in_parquet_xlsx_and_json(client, portal_data):
    from openpyxl import load_workbook

    t = table_of(portal_data, "371502-scj-0001")
    base = f"/dataset/371502-scj-0001/download/{t.id}"
    meta = pq.read_schema(io.BytesIO(client.get(f"{base}.parquet").get_data())).metadata
    assert meta[b"source_department"].decode() == "东昌府区市场监督管理局"
    assert "数据来源：东昌府区市场监督管理局《药品零售企业名录》" in meta[b"attribution"].decode()
    props = load_workbook(io.BytesIO(client.get(f"{base}.xlsx").get_data())).properties
    assert props.creator == "东昌府区市场监督管理局" and "药品零售企业名录" in props.description
    data = json.loads(client.get(f"{base}.json").get_data())
    assert data["source"]["dataset"] == "药品零售企业名录" and len(data["rows"]) == 3
    assert data["rows"][0]["企业名称"] == "聊城市鲁西大药房古楼店"


def test_bundle_has_data_datapackage_and_dated_attribution(client, portal_data):
    t = table_of(portal_data, "371502-scj-0001")
    response = client.get(f"/dataset/371502-scj-0001/bundle/{t.id}.zip")
    zf = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(zf.namelist()) == ["ATTRIBUTION.txt", "data.csv", "datapackage.json"]
    attribution = zf.read("ATTRIBUTION.txt").decode()
    assert f"获取日期：{clock.today().isoformat()}" in attribution and "东昌府区市场监督管理局" in attribution
    package = json.loads(zf.read("datapackage.json"))
    resource = package["resources"][0]
    assert resource["path"] == "data.csv" and resource["hash"] == f"sha256:{t.formats['csv']['sha256']}"
    assert [f["name"] for f in resource["schema"]["fields"]] == [
        "企业名称",
        "所属街道",
        "许可证编号",
        "经营面积",
    ]
    assert resource["schema"]["fields"][3]["type"] == "number"
    assert hashlib.sha256(zf.read("data.csv")).hexdigest() == t.formats["csv"]["sha256"]
    import datetime as dt

    for entry in zf.infolist():  # dated in Beijing time, as a reader's file manager shows it
        assert abs(dt.datetime(*entry.date_time) - clock.now().replace(tzinfo=None)) < dt.timedelta(minutes=5)


def test_conditional_data_is_never_served(client, portal_data):
    t = table_of(portal_data, "371502-scj-0002")
    for fmt in ("csv", "xlsx", "json", "parquet"):
        assert client.get(f"/dataset/371502-scj-0002/download/{t.id}.{fmt}").status_code == 404
    assert client.get(f"/dataset/371502-scj-0002/bundle/{t.id}.zip").status_code == 404


def test_a_table_of_another_dataset_is_not_served_under_this_name(client, portal_data):
    other = table_of(portal_data, "371502-scj-0002")  # conditional data, asked for via an open dataset
    assert client.get(f"/dataset/371502-scj-0001/download/{other.id}.csv").status_code == 404
    assert client.get("/dataset/371502-scj-0001/download/1.exe").status_code == 404


def test_behind_nginx_the_portal_authorizes_and_nginx_sends(tmp_path, database_url, portal_data):
    """PORTAL_X_ACCEL_PREFIX: the answer carries X-Accel-Redirect to the stored file, no body."""
    from portal.app import create_app

    app = create_app(
        {
            "instance": portal_data.settings.instance_path,
            "database_url": database_url,
            "x_accel_prefix": "/_files",
        }
    )
    client = app.test_client()
    t = table_of(portal_data, "371502-scj-0001")
    response = client.get(f"/dataset/371502-scj-0001/download/{t.id}.csv")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["X-Accel-Redirect"] == "/_files/" + t.formats["csv"]["path"]
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert (
        client.get(f"/dataset/371502-scj-0002/download/{t.id}.csv").status_code == 404
    )  # still authorized first
    assert downloads_of(app.extensions["portal"], "371502-scj-0001") == 1  # its own counters
    app.extensions["portal"].engine.dispose()


def test_datapackage_json_validates_with_frictionless(live_server, portal_data):
    frictionless = pytest.importorskip("frictionless")
    import requests

    url = f"{live_server}/dataset/371502-scj-0001/datapackage.json"
    descriptor = requests.get(url, timeout=10).json()
    assert descriptor["resources"][0]["path"].startswith(live_server)
    assert descriptor["resources"][0]["schema"]["fields"][3] == {"name": "经营面积", "type": "number"}
    report = frictionless.validate(url)  # reads the package and every row of its CSV over HTTP
    assert report.valid, report.flatten(["type", "note"])
    assert (
        requests.get(f"{live_server}/dataset/371502-scj-0002/datapackage.json", timeout=10).status_code == 404
    )


def test_many_readers_fetching_a_new_bundle_at_once_all_get_it_whole(app, portal_data):
    """The first bundle of the day is built by a `bundle` job, queued by whichever request comes
    first (one job for all); the others are told to come back (202) until it is there, and then
    every reader gets the same whole file."""
    import io
    import zipfile
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    with portal_data.sessions() as s:
        table = (
            s.scalar(select(Dataset).where(Dataset.name == "371502-jty-0001"))
            .current_distributions[0]
            .tables[0]
        )

    def fetch(_):
        import time

        client = app.test_client()
        for _attempt in range(100):
            answer = client.get(f"/dataset/371502-jty-0001/bundle/{table.id}.zip")
            if answer.status_code != 202:
                return answer
            assert answer.headers["Retry-After"] and "正在准备" in answer.get_data(as_text=True)
            time.sleep(0.1)
        return answer

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fetch, range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    for answer in answers:
        names = zipfile.ZipFile(io.BytesIO(answer.get_data())).namelist()
        assert sorted(names) == ["ATTRIBUTION.txt", "data.csv", "datapackage.json"]


def test_files_open_right_in_excel_and_in_programs(client, portal_data):
    """A person's CSV opens in Excel (UTF-8 with a BOM); a program's CSV is plain UTF-8 with
    the published sha256; one clean Content-Type; an ASCII file name that says what it is."""
    t = table_of(portal_data, "371502-scj-0001")
    for_excel = client.get(f"/dataset/371502-scj-0001/download/{t.id}.excel.csv")
    body = for_excel.get_data()
    assert for_excel.status_code == 200 and body.startswith(b"\xef\xbb\xbf")
    assert body[3:].decode("utf-8").splitlines()[0] == "企业名称,所属街道,许可证编号,经营面积"
    assert for_excel.headers["Content-Type"] == "text/csv; charset=utf-8"
    plain = client.get(f"/dataset/371502-scj-0001/download/{t.id}.csv")
    assert plain.headers["Content-Type"] == "text/csv; charset=utf-8" and not plain.get_data().startswith(
        b"\xef\xbb\xbf"
    )
    assert body[3:] == plain.get_data()
    with portal_data.sessions() as s:
        version = clock.local(s.get(DataTable, t.id).distribution.fetched_at).date().isoformat()
    for response in (for_excel, plain):
        disposition = response.headers["Content-Disposition"]
        assert f"filename=371502-scj-0001-{version}.csv" in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"药品零售企业名录-{version}.csv"
    lists = client.get("/department/dcf-scjgj/lists/unconditional.csv")
    assert "filename=dcf-scjgj-unconditional-" in lists.headers["Content-Disposition"]
    page = client.get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert f"/download/{t.id}.excel.csv" in page and "CSV（Excel 打开）" in page


def test_the_xlsx_states_its_source_on_its_first_sheet(client, portal_data):
    from openpyxl import load_workbook

    t = table_of(portal_data, "371502-scj-0001")
    workbook = load_workbook(
        io.BytesIO(client.get(f"/dataset/371502-scj-0001/download/{t.id}.xlsx").get_data())
    )
    assert workbook.sheetnames == ["数据来源", "数据"]
    first_line = [c for c in next(workbook["数据来源"].iter_rows(values_only=True))]
    assert (
        "数据来源：东昌府区市场监督管理局《药品零售企业名录》" in first_line[1]
        and "获取日期" in first_line[1]
    )
    rows = list(workbook["数据"].iter_rows(values_only=True))
    assert rows[0] == ("企业名称", "所属街道", "许可证编号", "经营面积") and len(rows) == 4


def test_an_old_clients_file_name_keeps_no_stray_dash_of_the_chinese_words():
    from portal.storage import attachment_header

    assert "filename=SQ20261206-2F13B1.pdf;" in attachment_header("决定书-SQ20261206-2F13B1.pdf")
    assert "filename=download.csv;" in attachment_header("药店.csv")  # nothing ASCII left: still a name
