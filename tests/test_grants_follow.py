"""Grants follow their datasets (issue 15, item 1), written from the grant holder's side: the
licensed ZIP link, a freshly signed link and the data API, through every change of state of
the dataset — withdrawn, held for a restriction, not open — and its return."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from sqlalchemy import select

from portal.catalog import curation
from portal.models import Dataset, Grant, OutboxMessage, RestrictionRequest, User
from tests.helpers import download_link, granted, login

NAME = "371502-scj-0002"


def _as(s, people, who):
    return s.get(User, people[who][0])


def _holder(app, people):
    client = app.test_client()
    _, email, password = people["applicant"]
    login(client, email, password)
    return client


def _api(client):
    return client.get(f"/api/data/{NAME}?limit=5")


def _notices(ctx, email: str) -> list[str]:
    with ctx.sessions() as s:
        return [m.subject for m in s.scalars(select(OutboxMessage).where(OutboxMessage.to == email))]


def test_withdrawal_suspends_the_grant_and_publishing_again_resumes_it(app, portal_data, people):
    ctx = portal_data
    grant = granted(portal_data, people)
    client = _holder(app, people)
    link = download_link(client, people)
    assert client.get(link, follow_redirects=True).status_code == 200 and _api(client).status_code == 200
    with ctx.sessions() as s:
        curation.withdraw(
            s, _as(s, people, "curator"), s.scalar(select(Dataset).where(Dataset.name == NAME)), "数据更正"
        )
        s.commit()
        assert s.get(Grant, grant.id).state() == "suspended"
    refused = client.get(link)
    assert refused.status_code == 403 and "暂停" in refused.get_data(as_text=True)
    assert _api(client).status_code == 404
    grants_page = client.get("/grants").get_data(as_text=True)
    assert "已暂停" in grants_page and f"/grants/{grant.id}/download/" not in grants_page
    assert any("授权暂停" in subject for subject in _notices(ctx, people["applicant"][1]))
    with ctx.sessions() as s:
        curation.publish(s, _as(s, people, "curator"), s.scalar(select(Dataset).where(Dataset.name == NAME)))
        s.commit()
        assert s.get(Grant, grant.id).state() == "valid"
    assert client.get(link, follow_redirects=True).status_code == 200 and _api(client).status_code == 200
    assert any("授权恢复" in subject for subject in _notices(ctx, people["applicant"][1]))


def test_a_restriction_to_not_open_suspends_then_ends_the_grant(app, portal_data, people):
    ctx = portal_data
    grant = granted(portal_data, people)
    client = _holder(app, people)
    link = download_link(client, people)
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == NAME))
        assert (
            curation.reclassify(
                s,
                ctx.storage,
                _as(s, people, "curator"),
                ds,
                "not_open",
                "《中华人民共和国数据安全法》第三十八条",
                "涉及企业商业秘密",
            )
            == "pending"
        )
        s.commit()
        assert s.get(Grant, grant.id).state() == "suspended"  # held while the bureau decides
    assert client.get(link).status_code == 403 and _api(client).status_code == 404
    with ctx.sessions() as s:
        request = s.scalar(select(RestrictionRequest))
        curation.decide_restriction(s, ctx.storage, _as(s, people, "bureau"), request, True)
        s.commit()
        ended = s.get(Grant, grant.id)
        assert ended.state() == "revoked" and "不予开放" in ended.revoke_reason
    refused = client.get(link)  # its files are gone: refused with the reason, not a 500
    assert refused.status_code == 403 and "不予开放" in refused.get_data(as_text=True)
    assert _api(client).status_code == 404
    assert any("授权已终止" in subject for subject in _notices(ctx, people["applicant"][1]))
    assert any("授权已终止" in subject for subject in _notices(ctx, people["bureau"][1]))
    page = client.get(f"/licences/{grant.licence_number}").get_data(as_text=True)
    assert "不予开放" in page


def test_the_catalog_making_the_dataset_not_open_ends_the_grant(app, portal_data, people, tmp_path):
    from harvest.sources import SpreadsheetSource
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

    grant = granted(portal_data, people)
    header, rows = PHARMACIES
    write_csv(tmp_path / "src2/p.csv", header, rows, "gbk")
    catalog = write_catalog(
        tmp_path / "src2/scj.csv",
        [entry("371502-SCJ-0002", "企业信用风险分类结果", "不予开放", file="p.csv")],
    )
    portal_data.harvester().run(SpreadsheetSource(catalog))
    with portal_data.sessions() as s:
        assert s.get(Grant, grant.id).state() == "revoked"
    client = _holder(app, people)
    assert "不予开放" in client.get("/grants").get_data(as_text=True)


def test_the_licensed_zip_holds_every_granted_table(app, portal_data, people, tmp_path):
    from openpyxl import Workbook

    from harvest.sources import SpreadsheetSource
    from tests.catalogs import entry, write_catalog

    wb = Workbook()
    wb.active.title = "企业"
    wb.active.append(["企业名称", "风险等级"])
    wb.active.append(["聊城市鲁西化工有限公司", "A"])
    second = wb.create_sheet("检查")
    second.append(["企业名称", "检查次数"])
    second.append(["聊城市鲁西化工有限公司", 3])
    (tmp_path / "src3").mkdir()
    wb.save(tmp_path / "src3/book.xlsx")
    portal_data.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "src3/scj.csv",
                [
                    entry(
                        "371502-SCJ-0002",
                        "企业信用风险分类结果",
                        "有条件开放",
                        file="book.xlsx",
                        开放条件="仅限监管用途",
                    )
                ],
            )
        )
    )
    granted(portal_data, people)
    client = _holder(app, people)
    response = client.get(download_link(client, people), follow_redirects=True)
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.get_data())).namelist()
    assert {"企业/data.csv", "企业/data.parquet", "检查/data.csv", "检查/data.parquet"} <= set(names), names


def test_a_reclassification_carries_its_basis_and_conditions_to_every_public_surface(
    app, portal_data, people, tmp_path
):
    """Restricting a published dataset to conditional with a new basis and conditions: after
    the bureau approves, the page, the CKAN API, DCAT and the open list show them, and a later
    harvest keeps them."""
    from harvest.sources import SpreadsheetSource
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

    ctx = portal_data
    basis, conditions = "《中华人民共和国数据安全法》第三十八条", "仅限药品供应保障分析，不得向第三方提供"
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        assert (
            curation.reclassify(
                s,
                ctx.storage,
                _as(s, people, "curator"),
                ds,
                "conditional",
                basis,
                "涉及经营信息",
                conditions=conditions,
            )
            == "pending"
        )
        s.commit()
        curation.decide_restriction(
            s, ctx.storage, _as(s, people, "bureau"), s.scalar(select(RestrictionRequest)), True
        )
        s.commit()
    client = app.test_client()

    def shown() -> dict[str, str]:
        return {
            "page": client.get("/dataset/371502-scj-0001").get_data(as_text=True),
            "ckan": client.get("/api/3/action/package_show?id=371502-scj-0001").get_data(as_text=True),
            "dcat": client.get("/dataset/371502-scj-0001.ttl").get_data(as_text=True),
            "list": client.get("/department/dcf-scjgj/lists/conditional.csv").get_data().decode("utf-8-sig"),
        }

    import json

    for where, text in shown().items():
        text = (
            json.loads(text)["result"]["extras"] and json.dumps(json.loads(text), ensure_ascii=False)
            if where == "ckan"
            else text
        )
        assert basis in text and conditions in text, where
    header, rows = PHARMACIES
    write_csv(tmp_path / "again/p.csv", header, rows, "gbk")
    ctx.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "again/scj.csv", [entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv")]
            )
        )
    )
    assert all(basis in text and conditions in text for where, text in shown().items() if where != "ckan")


def test_the_bureau_sees_each_grants_use_and_reports_are_reminded_once(app, portal_data, people):
    import datetime as dt

    from licenses import grants as svc
    from portal import clock

    grant = granted(portal_data, people)
    client = _holder(app, people)
    client.get(download_link(client, people), follow_redirects=True)  # one licensed download
    with portal_data.sessions() as s:
        g = s.get(Grant, grant.id)
        g.report_every_months = 1  # a report a month: due within the grant's 90 days
        s.commit()
        due = svc.next_report_due(g)
        assert (
            svc.remind(s, due - dt.timedelta(days=3), site_url="https://data.dongchangfu.gov.cn") == 1
        )  # the holder
        reminder = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert "https://data.dongchangfu.gov.cn/grants" in reminder.body  # where to report (PORTAL_BASE_URL)
        assert svc.remind(s, due - dt.timedelta(days=2)) == 0  # once only
        overdue = svc.remind(s, due + dt.timedelta(days=1))  # after: the holder and the bureau
        s.commit()
        assert overdue == 2 and svc.remind(s, due + dt.timedelta(days=2)) == 0
    assert any("即将" not in m and "逾期" in m for m in _notices(portal_data, people["bureau"][1]))
    bureau = app.test_client()
    _, email, password = people["bureau"]
    login(bureau, email, password)
    page = bureau.get(f"/admin/licensing/grants/{grant.id}").get_data(as_text=True)
    assert grant.licence_number in page and "授权下载与接口调用" in page and clock.today().isoformat() in page
    assert client.get(f"/admin/licensing/grants/{grant.id}").status_code == 403
    public = app.test_client().get("/evaluation?period=" + str(clock.today().year)).get_data(as_text=True)
    assert "东昌府区市场监督管理局" in public and "按期办结率" in public


def test_a_grant_over_two_datasets_is_suspended_for_both_when_one_is_withdrawn(
    app, portal_data, people, tmp_path
):
    from harvest.sources import SpreadsheetSource
    from licenses import applications as apps
    from portal import clock
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv
    from tests.helpers import SCENARIO, SECURITY, accept

    header, rows = PHARMACIES
    write_csv(tmp_path / "two/p.csv", header, rows, "gbk")
    portal_data.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "two/scj.csv",
                [
                    entry(
                        "371502-SCJ-0002",
                        "企业信用风险分类结果",
                        "有条件开放",
                        file="p.csv",
                        开放条件="仅限监管用途",
                    ),
                    entry("371502-SCJ-0005", "企业年报", "有条件开放", file="p.csv", 开放条件="仅限监管用途"),
                ],
            )
        )
    )
    with portal_data.sessions() as s:
        both = [s.scalar(select(Dataset).where(Dataset.name == n)) for n in (NAME, "371502-scj-0005")]
        [application] = apps.apply(
            s,
            _as(s, people, "applicant"),
            apps.Request(
                datasets=[(d, None) for d in both],
                purpose="governance",
                scenario=SCENARIO,
                security_measures=SECURITY,
                period_from=clock.today(),
                period_until=clock.today() + dt.timedelta(days=60),
            ),
        )
        s.commit()
        apps.approve(
            s,
            _as(s, people, "curator"),
            application,
            application.version,
            fields={},
            row_filters={},
            valid_from=clock.today(),
            valid_until=clock.today() + dt.timedelta(days=30),
        )
        s.commit()
        accept(s, _as(s, people, "applicant"), application)
    client = _holder(app, people)
    assert client.get("/api/data/371502-scj-0005?limit=2").status_code == 200
    with portal_data.sessions() as s:
        curation.withdraw(
            s, _as(s, people, "curator"), s.scalar(select(Dataset).where(Dataset.name == NAME)), "更正"
        )
        s.commit()
    assert client.get("/api/data/371502-scj-0005?limit=2").status_code in (403, 404)


def test_the_conditions_a_department_types_cannot_carry_personal_data(portal_data, people):
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        with pytest.raises(curation.CurationError, match="个人信息"):
            curation.reclassify(
                s,
                portal_data.storage,
                _as(s, people, "curator"),
                ds,
                "conditional",
                "《中华人民共和国数据安全法》第三十八条",
                "",
                conditions="请联系张伟13912345678申请",
            )
