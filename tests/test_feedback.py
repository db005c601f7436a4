"""The public's voice: error reports answered publicly by the provider, ratings, data requests
routed by the bureau and answered by the department, the showcase with licence checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import clock
from portal.models import DataRequest, ErrorReport, ShowcaseItem
from tests.helpers import login, post_form


@pytest.fixture
def people(portal_data, make_user):
    return {
        "citizen": make_user(),
        "scj": make_user(curator_of="dcf-scjgj"),
        "jty": make_user(curator_of="dcf-jtysj"),
        "bureau": make_user(bureau=True),
    }


def as_(app, who):
    client = app.test_client()
    login(client, *who[1:])
    return client


def test_an_error_report_is_answered_publicly_by_the_provider(app, portal_data, people):
    citizen = as_(app, people["citizen"])
    post_form(
        citizen,
        "/dataset/371502-scj-0001/errors",
        {"text": "鲁西大药房古楼店已于今年停业"},
        page="/dataset/371502-scj-0001",
    )
    page = app.test_client().get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert "鲁西大药房古楼店已于今年停业" in page and "核实中，期限" in page
    with portal_data.sessions() as s:
        report = s.scalar(select(ErrorReport))
        assert report.deadline > clock.today()
    other = as_(app, people["jty"])
    assert (
        post_form(
            other, f"/console/errors/{report.id}", {"answer": "不是我们的"}, page="/console"
        ).status_code
        == 404
    )
    scj = as_(app, people["scj"])
    assert "鲁西大药房古楼店已于今年停业" in scj.get("/console/feedback").get_data(as_text=True)
    assert "鲁西大药房古楼店已于今年停业" not in other.get("/console/feedback").get_data(as_text=True)
    post_form(
        scj, f"/console/errors/{report.id}", {"answer": "已核实，下次更新时删除该条记录"}, page="/console"
    )
    assert "已核实，下次更新时删除该条记录" in app.test_client().get("/dataset/371502-scj-0001").get_data(
        as_text=True
    )


def test_anonymous_users_cannot_post_and_hidden_datasets_take_no_reports(app, portal_data, people):
    anonymous = app.test_client()
    response = post_form(
        anonymous, "/dataset/371502-scj-0001/errors", {"text": "匿名的纠错内容"}, page="/register"
    )
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    citizen = as_(app, people["citizen"])
    assert (
        post_form(
            citizen,
            "/dataset/371502-scj-0003/errors",
            {"text": "不予开放的数据"},
            page="/dataset/371502-scj-0001",
        ).status_code
        == 404
    )


def test_ratings_one_per_user(app, portal_data, people):
    citizen = as_(app, people["citizen"])
    post_form(
        citizen,
        "/dataset/371502-scj-0001/rating",
        {"stars": "2", "comment": "字段太少"},
        page="/dataset/371502-scj-0001",
    )
    post_form(
        citizen,
        "/dataset/371502-scj-0001/rating",
        {"stars": "5", "comment": "更新后很好用"},
        page="/dataset/371502-scj-0001",
    )
    page = app.test_client().get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert "平均评分 5.0 / 5（1）" in page and "更新后很好用" in page and "字段太少" not in page
    assert "评分为 1–5 星" in post_form(
        citizen,
        "/dataset/371502-scj-0001/rating",
        {"stars": "9"},
        page="/dataset/371502-scj-0001",
        follow_redirects=True,
    ).get_data(as_text=True)


def test_data_requests_routed_by_the_bureau_and_answered_by_the_department(app, portal_data, people):
    citizen = as_(app, people["citizen"])
    post_form(
        citizen, "/requests", {"title": "公共充电桩位置", "description": "用于新能源车主查找附近充电桩"}
    )
    with portal_data.sessions() as s:
        request_id = s.scalar(select(DataRequest.id))
    assert (
        post_form(
            citizen, f"/requests/{request_id}/route", {"department": "dcf-jtysj"}, page="/requests"
        ).status_code
        == 403
    )
    bureau = as_(app, people["bureau"])
    post_form(bureau, f"/requests/{request_id}/route", {"department": "dcf-jtysj"}, page="/requests")
    scj = as_(app, people["scj"])
    assert (
        post_form(scj, f"/requests/{request_id}/answer", {"answer": "不归我们"}, page="/console").status_code
        == 403
    )
    jty = as_(app, people["jty"])
    assert "公共充电桩位置" in jty.get("/console/feedback").get_data(as_text=True)
    post_form(jty, f"/requests/{request_id}/answer", {"answer": "已列入明年开放计划"}, page="/console")
    public = app.test_client().get("/requests").get_data(as_text=True)
    assert "公共充电桩位置" in public and "东昌府区交通运输局" in public and "已列入明年开放计划" in public


def test_showcase_checks_licence_numbers(app, portal_data, people):
    citizen = as_(app, people["citizen"])
    post_form(
        citizen,
        "/showcase",
        {
            "title": "药店地图",
            "description": "在地图上查找附近药店和营业信息",
            "url": "https://example.cn/map",
            "datasets": "371502-scj-0001",
            "attribution": "数据来源：东昌府区市场监督管理局《药品零售企业名录》，获取日期：2026-11-21",
            "licence_number": "DCFL-2026-123456789",
        },
    )
    assert "药店地图" not in app.test_client().get("/showcase").get_data(as_text=True)  # pending review
    bureau = as_(app, people["bureau"])
    with portal_data.sessions() as s:
        item_id = s.scalar(select(ShowcaseItem.id).where(ShowcaseItem.title == "药店地图"))
    post_form(bureau, f"/admin/showcase/{item_id}/approve", {}, page="/admin/showcase")
    page = app.test_client().get("/showcase").get_data(as_text=True)
    assert "药店地图" in page and "无此授权" in page
    bad = post_form(
        citizen,
        "/showcase",
        {"title": "药店地图二", "description": "一个没有署名的应用介绍", "attribution": ""},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "请写明数据来源和获取日期" in bad
