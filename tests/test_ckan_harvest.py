"""Harvests from the real CKAN 2.12 started by ../shared/ckan/start (CKAN_URL, CKAN_TOKEN)."""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy import select

import harvest.run
from harvest.run import Harvester
from harvest.sources import CkanSource
from portal.models import Dataset

pytestmark = pytest.mark.ckan


@pytest.fixture
def ckan():
    url, token = os.environ.get("CKAN_URL"), os.environ.get("CKAN_TOKEN")
    if not url or not token:
        if os.environ.get("PORTAL_REQUIRE_CKAN"):
            pytest.fail("CKAN_URL and CKAN_TOKEN must be set (../shared/ckan/start)")
        pytest.skip("no CKAN: run ../shared/ckan/start and export CKAN_URL and CKAN_TOKEN")
    from ckanapi import RemoteCKAN

    api = RemoteCKAN(url, apikey=token)
    # every test starts from an empty CKAN
    for pkg in api.action.package_search(q="*:*", rows=1000, include_private=True)["results"]:
        api.action.dataset_purge(id=pkg["id"])
    for org in api.action.organization_list():
        api.action.organization_purge(id=org)
    api.url, api.token = url, token
    return api


def add_dataset(api, name, *, org="dcf-jtysj", private=False, files=(), **extras):
    pkg = api.action.package_create(
        name=name,
        title=extras.pop("title", name),
        owner_org=org,
        private=private,
        notes=extras.pop("notes", ""),
        tags=[{"name": t} for t in extras.pop("tags", [])],
        extras=[{"key": k, "value": v} for k, v in extras.items()],
    )
    for filename, content, fmt in files:
        api.action.resource_create(
            package_id=pkg["id"], name=filename, format=fmt, upload=(filename, io.BytesIO(content))
        )
    return pkg


def xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
def fetches(monkeypatch):
    """Counts the files the harvester downloads, through the real fetch."""
    calls = []
    real = harvest.run.fetch_file

    def spy(ref, *a, **kw):
        calls.append(ref.name)
        return real(ref, *a, **kw)

    monkeypatch.setattr(harvest.run, "fetch_file", spy)
    return calls


@pytest.fixture
def filled(ckan):
    ckan.action.organization_create(name="dcf-jtysj", title="东昌府区交通运输局")
    stops = "站点名称,所属街道,经度,纬度\n东昌路口,古楼街道,115.98,36.45\n柳园路站,柳园街道,115.97,36.46\n".encode(
        "gbk"
    )
    add_dataset(
        ckan,
        "bus-stops",
        title="公交站点位置",
        notes="全区公交站点",
        tags=["公交", "站点"],
        files=[("公交站点.csv", stops, "CSV")],
        resource_code="371502-JTY-0001",
        open_class="无条件开放",
        domain="交通运输",
        update_cycle="每月",
        published="2024-05-01",
        legal_basis="",
    )
    add_dataset(
        ckan,
        "ride-hailing-orders",
        private=True,
        title="网约车订单统计",
        files=[("orders.xlsx", xlsx_bytes([["日期", "订单量"], ["2025-01-01", 3120]]), "XLSX")],
        resource_code="371502-JTY-0002",
        open_class="conditional",
        open_conditions="仅限城市治理用途",
        legal_basis="《网络预约出租汽车经营服务管理暂行办法》第二十七条",
    )
    add_dataset(
        ckan,
        "cctv-points",
        title="视频监控点位",
        files=[("points.csv", b"id\n1\n", "CSV")],
        resource_code="371502-JTY-0003",
        open_class="不予开放",
        legal_basis="《中华人民共和国保守国家秘密法》第九条",
    )
    add_dataset(
        ckan,
        "taxi-complaints",
        title="出租车投诉",
        files=[("c.csv", b"id\n1\n", "CSV")],
        resource_code="371502-JTY-0004",
        open_class="有条件开放",
    )
    return ckan


def harvest_ckan(ctx, api):
    return Harvester(ctx.sessions, ctx.storage).run(CkanSource(api.url, api.token))


def test_ckan_entries_land_in_their_classes(ctx, filled, fetches):
    report = harvest_ckan(ctx, filled)
    assert {e.source_id: (e.open_class, e.action) for e in report.entries} == {
        "bus-stops": ("unconditional", "created"),
        "ride-hailing-orders": ("conditional", "created"),
        "cctv-points": ("not_open", "created"),
        "taxi-complaints": ("conditional", "held"),
    }
    # the not-open file and the held entry's file were never downloaded
    assert sorted(fetches) == ["orders.xlsx", "公交站点.csv"]
    with ctx.sessions() as s:
        stops = s.scalar(select(Dataset).where(Dataset.name == "bus-stops"))
        assert (
            stops.title,
            stops.department.name,
            stops.resource_code,
            stops.domain,
            str(stops.published_date),
            sorted(stops.tags),
        ) == (
            "公交站点位置",
            "东昌府区交通运输局",
            "371502-JTY-0001",
            "交通运输",
            "2024-05-01",
            ["公交", "站点"],
        )
        [table] = stops.current_distributions[0].tables
        assert table.row_count == 2 and stops.current_distributions[0].encoding == "gb18030"
        private = s.scalar(select(Dataset).where(Dataset.name == "ride-hailing-orders"))
        assert private.status == "published" and private.current_distributions[0].tables[0].row_count == 1
        assert s.scalar(select(Dataset).where(Dataset.name == "cctv-points")).distributions == []


def test_ckan_reharvest_downloads_nothing_and_changes_nothing(ctx, filled, fetches):
    harvest_ckan(ctx, filled)
    fetches.clear()
    report = harvest_ckan(ctx, filled)
    assert fetches == []
    assert report.counts == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "withdrawn": 0,
        "held": 1,
        "failed": 0,
    }


def test_ckan_changed_resource_and_deleted_dataset(ctx, filled, fetches):
    harvest_ckan(ctx, filled)
    pkg = filled.action.package_show(id="bus-stops")
    new = "站点名称,所属街道\n东昌路口,古楼街道\n光岳路站,新区街道\n兴华路站,湖西街道\n".encode()
    filled.action.resource_patch(id=pkg["resources"][0]["id"], upload=("公交站点.csv", io.BytesIO(new)))
    filled.action.package_delete(id="ride-hailing-orders")
    report = harvest_ckan(ctx, filled)
    by = {e.source_id: e.action for e in report.entries}
    assert by["bus-stops"] == "updated" and by["ride-hailing-orders"] == "withdrawn"
    with ctx.sessions() as s:
        stops = s.scalar(select(Dataset).where(Dataset.name == "bus-stops"))
        assert [d.tables[0].row_count for d in stops.distributions] == [2, 3]
        assert stops.distributions[0].superseded_at is not None


def test_messy_department_files_through_the_real_ckan_put_nothing_personal_in_public(
    app, client, ckan, live_server
):
    """A careless department and a hostile catalog on the internal CKAN: a titled CSV with
    mobile numbers, a bank-card workbook with a merged title, a titled workbook with a two-row
    header that must arrive whole, a placeholder basis, and resource links to the portal's own
    login page and to a host nobody listed."""
    from openpyxl import Workbook

    from tests.helpers import CARD, leaks

    ctx = app.extensions["portal"]
    ckan.action.organization_create(name="dcf-mzj", title="东昌府区民政局")
    titled = "东昌府区助残志愿者名册（2025年）\n姓名,联系电话,所属街道\n张伟,13912345678,古楼街道\n".encode(
        "gbk"
    )
    add_dataset(
        ckan, "volunteers", org="dcf-mzj", files=[("名册.csv", titled, "CSV")], open_class="无条件开放"
    )
    wb = Workbook()
    wb.active.append(["救助资金发放表"])
    wb.active.merge_cells("A1:C1")
    wb.active.append(["户名", "银行卡号", "金额"])
    wb.active.append(["刘洋", CARD, 300])
    cards = io.BytesIO()
    wb.save(cards)
    add_dataset(
        ckan,
        "relief-payments",
        org="dcf-mzj",
        files=[("发放表.xlsx", cards.getvalue(), "XLSX")],
        open_class="无条件开放",
    )
    wb = Workbook()
    ws = wb.active
    ws.append(["东昌府区养老服务机构名录"])
    ws.merge_cells("A1:D1")
    ws.append(["机构名称", "联系方式", None, "床位数"])
    ws.merge_cells("B2:C2")
    ws.merge_cells("A2:A3")
    ws.merge_cells("D2:D3")
    ws.append([None, "电话", "传真", None])
    ws.append(["东昌府区颐养中心", "0635-8211234", "0635-8211235", 120])
    whole = io.BytesIO()
    wb.save(whole)
    add_dataset(
        ckan,
        "eldercare",
        org="dcf-mzj",
        files=[("名录.xlsx", whole.getvalue(), "XLSX")],
        open_class="无条件开放",
    )
    add_dataset(
        ckan,
        "unfounded",
        org="dcf-mzj",
        files=[("x.csv", b"a\n1\n", "CSV")],
        open_class="有条件开放",
        legal_basis="待定",
    )
    for name, url in (("login-page", f"{live_server}/login"), ("elsewhere", "http://10.0.0.1/secret.csv")):
        pkg = ckan.action.package_create(
            name=name, owner_org="dcf-mzj", extras=[{"key": "open_class", "value": "无条件开放"}]
        )
        ckan.action.resource_create(package_id=pkg["id"], name=f"{name}.csv", format="CSV", url=url)
    report = Harvester(ctx.sessions, ctx.storage).run(CkanSource(ckan.url, ckan.token))
    from portal.search.sync import sync

    sync(ctx.sessions, ctx.search)
    actions = {e.source_id: (e.action, e.reason) for e in report.entries}
    assert actions["volunteers"][0] == "held" and "手机号码" in actions["volunteers"][1]
    assert actions["relief-payments"][0] == "held" and "银行卡号" in actions["relief-payments"][1]
    assert actions["eldercare"][0] == "created", actions["eldercare"]
    assert actions["unfounded"][0] == "held" and "待定" in actions["unfounded"][1]
    for name in ("login-page", "elsewhere"):
        assert actions[name][0] == "failed" and "拒绝" in actions[name][1], actions[name]
    with ctx.sessions() as s:
        table = (
            s.scalar(select(Dataset).where(Dataset.name == "eldercare")).current_distributions[0].tables[0]
        )
        assert [f["name"] for f in table.schema] == ["机构名称", "联系方式_电话", "联系方式_传真", "床位数"]
        assert table.row_count == 1
    assert leaks(client, ctx, ["13912345678", CARD, "忘记密码"]) == {}
