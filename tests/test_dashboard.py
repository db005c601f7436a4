"""The bureau's dashboard, evaluation export, audit search and export, harvest jobs, duplicates."""

from __future__ import annotations

import csv
import io

import pytest

from harvest.sources import SpreadsheetSource
from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv
from tests.helpers import login


@pytest.fixture
def bureau(app, portal_data, make_user):
    client = app.test_client()
    login(client, *make_user(bureau=True)[1:])
    return client


def test_dashboard_draws_charts_from_real_figures(app, bureau, portal_data, make_user):
    app.test_client().get("/dataset/371502-scj-0001/download/1.csv")  # a download today
    page = bureau.get("/admin/").get_data(as_text=True)
    assert (
        page.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 2
    )  # the two charts (icons are aria-hidden)
    assert "东昌府区市场监督管理局" in page and "东昌府区交通运输局" in page
    assert "部门评价" in page and "开放率" in page
    assert "<title>近 30 天下载量（含授权下载）</title>" in page
    curator = app.test_client()
    login(curator, *make_user(curator_of="dcf-scjgj")[1:])
    assert curator.get("/admin/").status_code == 403


def test_evaluation_export(bureau):
    rows = list(csv.reader(io.StringIO(bureau.get("/admin/evaluation.csv").get_data().decode("utf-8-sig"))))
    header, body = rows[0], {r[1]: r for r in rows[1:]}
    assert header[:5] == ["部门", "代码", "目录条目", "已开放", "开放率"]
    # 市场监管: 4 entries, 2 published (unconditional + conditional); 1 held (ID numbers), 1 not open
    assert body["dcf-scjgj"][2:6] == ["4", "2", "50.0%", "1"]


def test_audit_search_and_export(app, bureau, make_user):
    _, email, _ = make_user(email="someone@example.cn")
    client = app.test_client()
    login(client, email, "Wrong-password-9")
    page = bureau.get("/admin/audit", query_string={"action": "login_failed"}).get_data(as_text=True)
    assert (
        "登录失败" in page and "someone@example.cn" in page and ">login_failed<" not in page
    )  # words, not codes
    by_actor = bureau.get("/admin/audit", query_string={"actor": "someone@"}).get_data(as_text=True)
    assert "注册" in by_actor
    exported = (
        bureau.get("/admin/audit.csv", query_string={"action": "login_failed"}).get_data().decode("utf-8-sig")
    )
    lines = exported.strip().splitlines()
    assert lines[0].startswith("编号,时间（北京时间）,操作,action") and len(lines) == 2
    assert (
        "登录失败,login_failed" in lines[1] and "+08:00" in lines[1]
    )  # words beside codes, Beijing time with its offset


def test_harvest_jobs_and_their_reports(bureau, portal_data):
    page = bureau.get("/admin/harvest").get_data(as_text=True)
    assert "目录电子表格" in page and "暂缓 1" in page and "已完成" in page
    job = bureau.get("/admin/harvest", query_string={"job": 1}).get_data(as_text=True)
    assert "身份证号" in job  # the held entry and its reason


def test_likely_duplicates_across_departments(bureau, portal_data, tmp_path):
    header, rows = PHARMACIES
    write_csv(tmp_path / "dup/p.csv", header, rows)
    catalog = write_catalog(
        tmp_path / "dup/c.csv",
        [
            entry(
                "371502-YBJ-0001",
                "药品零售企业名录",
                file="p.csv",
                dept="东昌府区医疗保障局",
                dept_code="dcf-ybj",
            )
        ],
    )
    portal_data.harvester().run(SpreadsheetSource(catalog))
    page = bureau.get("/admin/duplicates").get_data(as_text=True)
    assert "东昌府区医疗保障局" in page and "东昌府区市场监督管理局" in page and "100%" in page
