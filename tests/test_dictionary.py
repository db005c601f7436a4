"""Data dictionaries (数据项: 中文名、说明、单位、代码表): read from the catalog's 信息项, edited by the
department in the console, and read back from every surface a reader or a program meets — the
dataset page, datapackage.json, the data API's /fields, DCAT — and kept through the next harvest."""

from __future__ import annotations

import json

from harvest.dictionary import parse_items
from harvest.sources import SpreadsheetSource
from portal.demo import CATALOG_HEADER
from portal.search.sync import sync
from tests.catalogs import entry, write_csv
from tests.helpers import post_form

ITEMS = "qymc：企业名称｜登记的企业全称；zt：经营状态｜｜｜1=存续，2=注销；zczb：注册资本｜｜万元"


def _harvest(ctx, folder, items=ITEMS):
    write_csv(
        folder / "firms.csv", ["qymc", "zt", "zczb"], [["东昌府区甲公司", "1", "100"], ["乙公司", "2", "50"]]
    )
    row = entry("DCF-DICT-001", "企业登记信息", file="firms.csv")
    path = write_csv(
        folder / "catalog.csv",
        [*CATALOG_HEADER, "信息项"],
        [[*(row.get(h, "") for h in CATALOG_HEADER), items]],
    )
    report = ctx.harvester().run(SpreadsheetSource(path))
    sync(ctx.sessions, ctx.search)
    return report


def test_items_are_read_in_the_shapes_departments_write():
    assert parse_items("企业名称;许可证号") == [
        {"name": "企业名称", "title": None, "description": None, "unit": None, "codes": None},
        {"name": "许可证号", "title": None, "description": None, "unit": None, "codes": None},
    ]
    [status] = parse_items("zt: 状态 | 经营状态 | | 1=存续、2=注销")
    assert status["title"] == "状态" and status["codes"] == [["1", "存续"], ["2", "注销"]]


def _surfaces(client, name="dcf-dict-001") -> dict:
    page = client.get(f"/dataset/{name}").get_data(as_text=True)
    package = client.get(f"/dataset/{name}/datapackage.json").get_json()
    api = client.get(f"/api/data/{name}/fields").get_json()
    ttl = client.get(f"/dataset/{name}.ttl").get_data(as_text=True)
    return {
        "page": page,
        "package": {f["name"]: f for f in package["resources"][0]["schema"]["fields"]},
        "api": {f["name"]: f for f in api["tables"][0]["fields"]},
        "ttl": ttl,
    }


def test_the_catalogs_items_reach_every_surface(app, client):
    ctx = app.extensions["portal"]
    report = _harvest(ctx, ctx.settings.instance_path.parent / "src")
    assert report.counts["created"] == 1, report.as_dict()
    seen = _surfaces(client)
    assert "企业名称" in seen["page"] and "登记的企业全称" in seen["page"] and "万元" in seen["page"]
    assert "1=存续" in seen["page"]
    status = seen["package"]["zt"]
    assert status["title"] == "经营状态" and status["constraints"]["enum"] == ["1", "2"]
    assert "1=存续" in status["description"]
    assert seen["package"]["zczb"]["description"] == "单位：万元"
    assert seen["api"]["qymc"]["title"] == "企业名称" and seen["api"]["zt"]["codes"] == [
        ["1", "存续"],
        ["2", "注销"],
    ]
    assert "dcf-dict-001/datapackage.json" in seen["ttl"] and "conformsTo" in seen["ttl"]


def test_a_departments_edit_reaches_every_surface_and_survives_the_next_harvest(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    folder = ctx.settings.instance_path.parent / "src"
    _harvest(ctx, folder)
    _, email, password = make_user(curator_of="dcf-scjgj")
    auth.login(email, password)
    url = "/console/datasets/dcf-dict-001"
    page = client.get(url).get_data(as_text=True)
    names = {v: k.removeprefix("name-") for k, v in _hidden_names(page).items()}
    i = names["zczb"]
    response = post_form(
        client,
        f"{url}/dictionary",
        {
            f"name-{i}": "zczb",
            f"title-{i}": "注册资本（人民币）",
            f"description-{i}": "营业执照登记的注册资本",
            f"unit-{i}": "万元",
            f"codes-{i}": "",
        },
        page=url,
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert "已保存 1 个数据项的说明" in body, body[body.find("<main") :][:1500]
    seen = _surfaces(client)
    assert "注册资本（人民币）" in seen["page"] and "营业执照登记的注册资本" in seen["page"]
    assert seen["package"]["zczb"]["title"] == "注册资本（人民币）"
    assert seen["api"]["zczb"]["description"] == "营业执照登记的注册资本"

    # The catalog changes its words for every column; the department's column keeps its own.
    _harvest(ctx, folder, items=ITEMS.replace("注册资本", "资本").replace("企业名称", "名称"))
    seen = _surfaces(client)
    assert seen["package"]["zczb"]["title"] == "注册资本（人民币）"
    assert seen["package"]["qymc"]["title"] == "名称"


def test_personal_data_in_a_description_is_refused(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _harvest(ctx, ctx.settings.instance_path.parent / "src")
    _, email, password = make_user(curator_of="dcf-scjgj")
    auth.login(email, password)
    url = "/console/datasets/dcf-dict-001"
    names = {
        v: k.removeprefix("name-") for k, v in _hidden_names(client.get(url).get_data(as_text=True)).items()
    }
    i = names["qymc"]
    response = post_form(
        client,
        f"{url}/dictionary",
        {f"name-{i}": "qymc", f"description-{i}": "联系人张三 13812345678"},
        page=url,
        follow_redirects=True,
    )
    assert "不得含个人信息" in response.get_data(as_text=True)
    assert "13812345678" not in json.dumps(client.get("/dataset/dcf-dict-001/datapackage.json").get_json())


def _hidden_names(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'name="(name-\d+)" value="([^"]*)"', html))


def test_the_dictionary_reaches_the_licensed_zip(app, portal_data, people):
    """A conditional dataset's column descriptions travel in the licensed ZIP's datapackage.json,
    for the granted columns only."""
    import io
    import zipfile

    from sqlalchemy import select

    from portal.catalog import dictionary
    from portal.models import Dataset, User
    from tests.helpers import download_link, granted

    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        dictionary.edit(
            s,
            s.get_one(User, people["curator"][0]),
            ds,
            {
                "企业名称": {"title": "市场主体名称", "description": "营业执照登记的名称"},
                "所属街道": {"title": "街道", "codes": "01=古楼街道，02=新区街道"},
            },
        )
        s.commit()
    granted(portal_data, people, fields=["企业名称", "所属街道"])
    client = app.test_client()
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(download_link(client, people), follow_redirects=True).get_data())
    )
    package = json.loads(archive.read("datapackage.json"))
    fields = {f["name"]: f for f in package["resources"][0]["schema"]["fields"]}
    assert set(fields) == {"企业名称", "所属街道"}
    assert fields["企业名称"]["title"] == "市场主体名称" and "营业执照" in fields["企业名称"]["description"]
    assert fields["所属街道"]["constraints"]["enum"] == ["01", "02"]
