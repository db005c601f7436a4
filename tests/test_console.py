"""The department console: own department only; opening up at once, restricting through the
bureau; edits and reclassifications that survive harvests; withdraw and publish; freshness."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from harvest.sources import SpreadsheetSource
from portal import clock
from portal.models import Dataset, RestrictionRequest
from tests.catalogs import entry, write_catalog
from tests.helpers import login, post_form


@pytest.fixture
def curators(portal_data, make_user):
    return {
        "scj": make_user(curator_of="dcf-scjgj"),
        "jty": make_user(curator_of="dcf-jtysj"),
        "bureau": make_user(bureau=True),
        "citizen": make_user(),
    }


def client_for(app, who):
    client = app.test_client()
    login(client, *who[1:])
    return client


def get(portal_data, name) -> Dataset:
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        ds.distributions, ds.classification_events  # noqa: B018
        return ds


def test_a_curator_sees_and_changes_only_their_department(app, portal_data, curators):
    scj = client_for(app, curators["scj"])
    home = scj.get("/console").get_data(as_text=True)
    assert "药品零售企业名录" in home and "公交站点位置" not in home
    assert "公益岗位人员名单" in home and "身份证号" in home  # held, with why and what fixes it
    assert scj.get("/console/datasets/371502-jty-0001").status_code == 404
    response = post_form(
        scj, "/console/datasets/371502-jty-0001/withdraw", {"reason": "不是我们的"}, page="/console"
    )
    assert response.status_code == 404 and get(portal_data, "371502-jty-0001").status == "published"
    for who in ("citizen", "bureau"):
        assert client_for(app, curators[who]).get("/console").status_code == 403
    assert scj.get("/admin/restrictions").status_code == 403


def test_opening_up_takes_effect_at_once_and_survives_the_harvest(app, portal_data, curators, tmp_path):
    scj = client_for(app, curators["scj"])
    # 371502-scj-0003 is not open (internal); the department opens it to conditional
    response = post_form(
        scj,
        "/console/datasets/371502-scj-0003/reclassify",
        {"open_class": "conditional", "legal_basis": "《数据安全法》第三十八条", "reason": "可按申请提供"},
        page="/console/datasets/371502-scj-0003",
    )
    assert response.status_code == 302
    ds = get(portal_data, "371502-scj-0003")
    # it was never fetched (not open): it waits for the next harvest, which fetches and publishes it
    assert (ds.open_class, ds.status) == ("conditional", "held") and "采集" in ds.hold_reason
    catalog = tmp_path / "src/scj.csv"
    portal_data.harvester().run(SpreadsheetSource(catalog))
    ds = get(portal_data, "371502-scj-0003")
    assert (ds.open_class, ds.status) == ("conditional", "published") and ds.current_distributions
    assert [e.actor.split(" ")[0] for e in ds.classification_events][-2:] == ["user", "harvest"]
    assert scj.get("/dataset/371502-scj-0003").status_code == 200


def test_restricting_needs_the_bureau_and_hides_the_dataset_meanwhile(app, portal_data, curators):
    scj = client_for(app, curators["scj"])
    post_form(
        scj,
        "/console/datasets/371502-scj-0001/reclassify",
        {"open_class": "conditional", "legal_basis": "《个人信息保护法》第十三条", "reason": "含经营者信息"},
        page="/console/datasets/371502-scj-0001",
    )
    public = app.test_client()
    assert public.get("/dataset/371502-scj-0001").status_code == 404
    assert 'href="/dataset/371502-scj-0001"' not in public.get("/search?q=药品").get_data(as_text=True)
    assert get(portal_data, "371502-scj-0001").open_class == "unconditional"  # not yet changed
    bureau = client_for(app, curators["bureau"])
    with portal_data.sessions() as s:
        request_id = s.scalar(select(RestrictionRequest.id))
    assert "含经营者信息" in bureau.get("/admin/restrictions").get_data(as_text=True)
    post_form(
        bureau, f"/admin/restrictions/{request_id}", {"decision": "approve"}, page="/admin/restrictions"
    )
    ds = get(portal_data, "371502-scj-0001")
    assert (ds.open_class, ds.status) == ("conditional", "published")
    page = public.get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert "申请使用" in page and "/download/" not in page


def test_a_rejected_restriction_restores_the_dataset(app, portal_data, curators):
    scj = client_for(app, curators["scj"])
    post_form(
        scj,
        "/console/datasets/371502-scj-0001/reclassify",
        {"open_class": "not_open", "legal_basis": "《保守国家秘密法》第九条"},
        page="/console/datasets/371502-scj-0001",
    )
    bureau = client_for(app, curators["bureau"])
    with portal_data.sessions() as s:
        request_id = s.scalar(select(RestrictionRequest.id))
    post_form(
        bureau,
        f"/admin/restrictions/{request_id}",
        {"decision": "reject", "note": "依据不适用"},
        page="/admin/restrictions",
    )
    ds = get(portal_data, "371502-scj-0001")
    assert (ds.open_class, ds.status, ds.class_override) == ("unconditional", "published", None)
    assert 'href="/dataset/371502-scj-0001"' in app.test_client().get("/search?q=药品").get_data(as_text=True)


def test_restricting_to_not_open_purges_the_files(app, portal_data, curators):
    folder = portal_data.storage.local_path(
        get(portal_data, "371502-scj-0002").distributions[0].original_path
    ).parent
    scj = client_for(app, curators["scj"])
    post_form(
        scj,
        "/console/datasets/371502-scj-0002/reclassify",
        {"open_class": "not_open", "legal_basis": "《统计法》第三十九条"},
        page="/console/datasets/371502-scj-0002",
    )
    bureau = client_for(app, curators["bureau"])
    with portal_data.sessions() as s:
        request_id = s.scalar(select(RestrictionRequest.id))
    post_form(
        bureau, f"/admin/restrictions/{request_id}", {"decision": "approve"}, page="/admin/restrictions"
    )
    ds = get(portal_data, "371502-scj-0002")
    assert ds.status == "internal"
    # the pharmacies file is shared with 371502-scj-0001 by content, but stored per dataset
    assert not folder.exists()


def test_a_restriction_needs_a_legal_basis(app, portal_data, curators):
    scj = client_for(app, curators["scj"])
    response = post_form(
        scj,
        "/console/datasets/371502-scj-0001/reclassify",
        {"open_class": "conditional", "legal_basis": "无"},
        page="/console/datasets/371502-scj-0001",
        follow_redirects=True,
    )
    assert "须写明法律依据" in response.get_data(as_text=True)
    assert get(portal_data, "371502-scj-0001").status == "published"


def test_edits_survive_harvests_and_show_beside_the_catalog(app, portal_data, curators, tmp_path):
    scj = client_for(app, curators["scj"])
    post_form(
        scj,
        "/console/datasets/371502-scj-0001/edit",
        {
            "title": "东昌府区药店名录",
            "summary": "全区药品零售企业及其地址",
            "tags": "药店, 医保",
            "title_en": "Pharmacies of Dongchangfu",
        },
        page="/console/datasets/371502-scj-0001",
    )
    catalog = tmp_path / "src/scj.csv"
    rows = [entry("371502-SCJ-0001", "药品零售企业名录（2025版）", file="p.csv")]
    write_catalog(catalog, rows)  # the catalog changes the title: the department's edit stays
    portal_data.harvester().run(SpreadsheetSource(catalog))
    ds = get(portal_data, "371502-scj-0001")
    assert (ds.title, ds.tags) == ("东昌府区药店名录", ["药店", "医保"])
    console = scj.get("/console/datasets/371502-scj-0001").get_data(as_text=True)
    assert "目录原文：药品零售企业名录（2025版）" in console
    found = app.test_client().get("/search?q=药店").get_data(as_text=True)
    assert 'href="/dataset/371502-scj-0001"' in found and "东昌府区<mark>药店</mark>名录" in found
    post_form(
        scj,
        "/console/datasets/371502-scj-0001/edit",
        {"title": "", "summary": "", "tags": ""},
        page="/console/datasets/371502-scj-0001",
    )
    assert get(portal_data, "371502-scj-0001").title == "药品零售企业名录（2025版）"


def test_withdraw_and_publish_again(app, portal_data, curators):
    scj = client_for(app, curators["scj"])
    post_form(
        scj,
        "/console/datasets/371502-scj-0001/withdraw",
        {"reason": "数据核对中"},
        page="/console/datasets/371502-scj-0001",
    )
    assert app.test_client().get("/dataset/371502-scj-0001").status_code == 404
    post_form(scj, "/console/datasets/371502-scj-0001/publish", {}, page="/console/datasets/371502-scj-0001")
    assert app.test_client().get("/dataset/371502-scj-0001").status_code == 200
    events = get(portal_data, "371502-scj-0001").classification_events
    assert [e.to_status for e in events][-2:] == ["withdrawn", "published"]


def test_entries_not_updated_within_their_cycle_are_flagged(app, portal_data, curators):
    from portal.catalog.curation import stale

    ds = get(portal_data, "371502-scj-0001")  # 每月, fetched today
    assert stale(ds) is None
    assert "每月" in stale(ds, clock.today() + dt.timedelta(days=60))


def test_held_entries_not_fixed_within_15_working_days_are_flagged(app, portal_data, curators):
    from portal.catalog.curation import overdue_fix

    ds = get(portal_data, "371502-scj-0004")  # held today (ID numbers)
    assert overdue_fix(ds) is None
    due = overdue_fix(ds, clock.today() + dt.timedelta(days=40))
    assert due is not None and due > clock.today()
    assert overdue_fix(get(portal_data, "371502-scj-0001"), clock.today() + dt.timedelta(days=40)) is None
