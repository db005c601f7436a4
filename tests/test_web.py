"""Public pages show what is published and nothing else (rules.md 6)."""
from __future__ import annotations

import pytest

from harvest.run import Harvester
from harvest.sources import SpreadsheetSource
from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv


@pytest.fixture
def harvested(app, tmp_path):
    ctx = app.extensions["portal"]
    header, rows = PHARMACIES
    write_csv(tmp_path / "p.csv", header, rows)
    write_csv(tmp_path / "ids.csv", ["姓名", "身份证号"], [["张三", "11010519491231002X"]])
    cat = write_catalog(tmp_path / "c.csv", [
        entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv"),
        entry("371502-SCJ-0002", "企业信用风险分类结果", "有条件开放", file="p.csv", 开放条件="仅限监管用途"),
        entry("371502-SCJ-0003", "执法检查底稿", "不予开放", file="p.csv"),
        entry("371502-SCJ-0004", "公益岗位人员名单", file="ids.csv"),
    ])
    Harvester(ctx.sessions, ctx.storage).run(SpreadsheetSource(cat))
    return ctx


def test_home_counts_and_lists_only_public_data(client, harvested):
    page = client.get("/").get_data(as_text=True)
    assert "药品零售企业名录" in page and "企业信用风险分类结果" in page
    assert "执法检查底稿" not in page and "公益岗位人员名单" not in page
    assert "无条件开放数据 <strong>1</strong>" in page and "有条件开放数据 <strong>1</strong>" in page


@pytest.mark.parametrize("name", ["371502-scj-0003", "371502-scj-0004", "no-such-dataset"])
def test_not_open_held_and_unknown_datasets_are_not_found(client, harvested, name):
    assert client.get(f"/dataset/{name}").status_code == 404
    assert client.get(f"/dataset/{name}/download/1.csv").status_code == 404


def test_dataset_list_search_never_finds_hidden_entries(client, harvested):
    assert "执法检查底稿" not in client.get("/datasets?q=执法").get_data(as_text=True)
    assert "药品零售企业名录" in client.get("/datasets?q=药品").get_data(as_text=True)


def test_unconditional_data_downloads_and_conditional_does_not(client, harvested):
    page = client.get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert "企业名称" in page and "下载 CSV" in page
    link = page.split('href="')[[i for i, part in enumerate(page.split('href="')) if ".csv" in part[:80]][0]].split('"')[0]
    response = client.get(link)
    assert response.status_code == 200 and "聊城市鲁西大药房古楼店" in response.get_data(as_text=True)
    conditional = client.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert "仅限监管用途" in conditional and "法律依据" in conditional and "下载 CSV" not in conditional
    with harvested.sessions() as s:
        from portal.models import DataTable
        ids = [t.id for t in s.query(DataTable).all()]
    assert all(client.get(f"/dataset/371502-scj-0002/download/{i}.csv").status_code == 404 for i in ids)
