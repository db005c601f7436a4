"""Conditional data: routes, transitions, deadlines, agreements, grants, licensed downloads,
licence checks, follow-up — on the real database, through the services and the web."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import zipfile

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from licenses import applications as apps
from licenses import grants
from licenses.errors import Conflict, LicenceError
from portal import clock
from portal.models import (
    Agreement,
    AppendOnlyError,
    Application,
    ApplicationEvent,
    Dataset,
    Grant,
    LicensedDownload,
    OutboxMessage,
    User,
)
from tests.helpers import (
    SCENARIO,
    SECURITY,
    accept,
    approve,
    conditional,
    download_link,
    granted,
    login,
    post_form,
    submit,
)

TODAY = clock.today()


def user(s, people, who) -> User:
    return s.get(User, people[who][0])


# ---------------------------------------------------------------------- routes


def test_purpose_decides_the_route(portal_data, people):
    with portal_data.sessions() as s:
        consent = submit(s, user(s, people, "applicant"), "innovation")
        assert (consent.route, consent.status) == ("consent", "submitted")
        assert consent.deadline > TODAY and "工作日" in str(consent.deadline_words)
        tender = submit(s, user(s, people, "applicant"), "commercial")
        assert (tender.route, tender.status, tender.deadline) == ("tender", "interest", None)
        research = submit(s, user(s, people, "verified"), "research")
        assert (research.route, research.status) == ("research", "submitted")


def test_research_route_needs_a_verified_institution(portal_data, people):
    with portal_data.sessions() as s:
        with pytest.raises(LicenceError, match="经大数据局认证"):
            submit(s, user(s, people, "researcher"), "research")
        with pytest.raises(LicenceError, match="经大数据局认证"):
            submit(s, user(s, people, "applicant"), "research")


@pytest.mark.parametrize("name", ["371502-scj-0001", "371502-scj-0003"])  # unconditional, not open
def test_only_conditional_data_is_applied_for(portal_data, people, name):
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == name))
        with pytest.raises(LicenceError):
            apps.apply(
                s,
                user(s, people, "applicant"),
                apps.Request(
                    [(ds, None)], "governance", SCENARIO, SECURITY, TODAY, TODAY + dt.timedelta(days=30)
                ),
            )


# ---------------------------------------------------------------------- transitions

ACTIONS = {
    "request_info": lambda s, p, a: apps.request_info(
        s, user(s, p, "curator"), a, a.version, "请补充安全措施说明"
    ),
    "answer": lambda s, p, a: apps.answer(s, user(s, p, "applicant"), a, a.version, "已补充：双人复核"),
    "approve": lambda s, p, a: approve(s, user(s, p, "curator"), a),
    "refuse": lambda s, p, a: apps.refuse(
        s, user(s, p, "curator"), a, a.version, "用途与开放条件不符，不予同意"
    ),
    "withdraw": lambda s, p, a: apps.withdraw(s, user(s, p, "applicant"), a, a.version),
    "accept": lambda s, p, a: accept(s, user(s, p, "applicant"), a),
}
REACH = {  # how to bring a fresh application into each state
    "submitted": [],
    "info_requested": ["request_info"],
    "approved": ["approve"],
    "refused": ["refuse"],
    "withdrawn": ["withdraw"],
    "granted": ["approve", "accept"],
}
ALLOWED = {
    "submitted": {"request_info", "approve", "refuse", "withdraw"},
    "info_requested": {"answer", "refuse", "withdraw"},
    "approved": {"withdraw", "accept"},
    "refused": set(),
    "withdrawn": set(),
    "granted": set(),
}
TRANSITIONS = [(state, action) for state in REACH for action in ACTIONS]


@pytest.mark.parametrize("state,action", TRANSITIONS, ids=[f"{s}-{a}" for s, a in TRANSITIONS])
def test_every_transition_is_allowed_or_refused(portal_data, people, state, action):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        for step in REACH[state]:
            ACTIONS[step](s, people, app)
            s.commit()
        assert app.status == state
        if action in ALLOWED[state]:
            ACTIONS[action](s, people, app)
            s.commit()
            assert app.status != state
        else:
            with pytest.raises(LicenceError):
                ACTIONS[action](s, people, app)
            s.rollback()
            assert s.get(Application, app.id).status == state


def test_a_refusal_needs_reasons_and_shows_them(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        with pytest.raises(LicenceError, match="应当说明理由"):
            apps.refuse(s, user(s, people, "curator"), app, app.version, "不行")
        s.rollback()
        apps.refuse(s, user(s, people, "curator"), app, app.version, "申请用途超出开放条件载明的监管用途")
        s.commit()
        assert app.decision_note == "申请用途超出开放条件载明的监管用途"
        assert [e.action for e in app.events] == ["submitted", "refuse"]


def test_only_the_providers_curators_decide_and_only_the_applicant_acts(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        for who in ("other_curator", "bureau", "stranger", "applicant"):
            with pytest.raises(PermissionError):
                apps.refuse(s, user(s, people, who), app, app.version, "理由足够长的不同意意见")
        for who in ("curator", "stranger"):
            with pytest.raises(PermissionError):
                apps.withdraw(s, user(s, people, who), app, app.version)


def test_two_curators_deciding_at_once_exactly_one_stands(portal_data, people, make_user):
    second_curator = make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:
        app_id = submit(s, user(s, people, "applicant")).id
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(curator_id, decision):
        with portal_data.sessions() as s:
            app, curator = s.get(Application, app_id), s.get(User, curator_id)
            version = app.version
            barrier.wait()
            try:
                if decision == "approve":
                    apps.approve(
                        s,
                        curator,
                        app,
                        version,
                        fields={},
                        row_filters={},
                        valid_from=TODAY,
                        valid_until=TODAY + dt.timedelta(days=30),
                    )
                else:
                    apps.refuse(s, curator, app, version, "同一时间的另一个决定：不同意")
                s.commit()
                outcomes.append(decision)
            except Conflict:
                outcomes.append("conflict")
            except Exception as exc:  # SQLite may report the race as a lock; it must still lose cleanly
                s.rollback()
                outcomes.append(f"lost:{type(exc).__name__}")

    threads = [
        threading.Thread(target=decide, args=(people["curator"][0], "approve")),
        threading.Thread(target=decide, args=(second_curator[0], "refuse")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o in ("approve", "refuse")]
    assert len(winners) == 1, outcomes
    with portal_data.sessions() as s:
        app = s.get(Application, app_id)
        assert app.status == {"approve": "approved", "refuse": "refused"}[winners[0]]
        assert [e.action for e in app.events] == ["submitted", winners[0]]


def test_answering_a_request_for_information_counts_the_deadline_again(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"), today=TODAY - dt.timedelta(days=40))
        assert app.deadline < TODAY  # overdue: flagged to the bureau
        assert app in apps.overdue(s)
        apps.request_info(s, user(s, people, "curator"), app, app.version, "请说明数据保存位置")
        apps.answer(s, user(s, people, "applicant"), app, app.version, "保存在单位内网服务器")
        s.commit()
        assert app.status == "submitted" and app.deadline > TODAY and app not in apps.overdue(s)


# ---------------------------------------------------------------------- agreements and grants


def test_acceptance_stores_the_agreement_unchangeable_and_issues_a_grant(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        approve(s, user(s, people, "curator"), app, fields=["企业名称", "所属街道"])
        grant = accept(s, user(s, people, "applicant"), app)
        agreement = grant.agreement
        for clause in (
            "东昌府区市场监督管理局",
            "聊城市鲁西化工有限公司",
            "企业名称、所属街道",
            "城市治理",
            "不得将数据提供、转让或出售给任何第三方",
            "注明数据来源和获取日期",
            "开发利用情况报告",
            "No third-party transfer",
            "2026-11-v2",
            "不得用于商业开发",
        ):
            assert clause in agreement.text, clause
        assert (agreement.accepted_by_id, agreement.accepted_ip, agreement.template_version) == (
            people["applicant"][0],
            "10.1.2.3",
            "2026-11-v2",
        )
        assert re.fullmatch(r"DCFL-\d{4}-\d{8}[0-9X]", grant.licence_number)
        assert grant.state() == "valid" and grant.valid_until == TODAY + dt.timedelta(days=90)
        agreement.text = "改过的协议"
        with pytest.raises(AppendOnlyError):
            s.commit()
    with portal_data.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE agreements SET text = 'x'"))
        conn.commit()


def test_an_agreement_that_changed_under_the_applicant_is_not_accepted(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        approve(s, user(s, people, "curator"), app)
        with pytest.raises(LicenceError, match="协议内容已更新"):
            grants.accept(s, user(s, people, "applicant"), app, app.version, "0" * 64, "http://portal.test")


def test_revocation_needs_reasons_and_the_right_people(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        approve(s, user(s, people, "curator"), app)
        grant = accept(s, user(s, people, "applicant"), app)
        for who in ("other_curator", "applicant", "stranger"):
            with pytest.raises(PermissionError):
                grants.revoke(s, user(s, people, who), grant, "违反协议向第三方提供数据")
        with pytest.raises(LicenceError):
            grants.revoke(s, user(s, people, "bureau"), grant, "违约")
        grants.revoke(s, user(s, people, "bureau"), grant, "违反协议向第三方提供数据")
        s.commit()
        assert grant.state() == "revoked"


def test_missing_usage_reports_are_listed_for_the_bureau(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        approve(s, user(s, people, "curator"), app)
        grant = accept(s, user(s, people, "applicant"), app)
        grant.valid_from = TODAY - dt.timedelta(days=220)  # in force for 7 months, no report yet
        grant.valid_until = TODAY + dt.timedelta(days=400)
        s.commit()
        assert [g.id for g, _ in grants.missing_reports(s)] == [grant.id]
        grants.report_usage(s, user(s, people, "applicant"), grant, "街道药店分布看板", "区卫健委内部系统")
        s.commit()
        assert grants.missing_reports(s) == []
        assert [g.id for g, _ in grants.missing_reports(s, TODAY + dt.timedelta(days=200))] == [grant.id]
        with pytest.raises(PermissionError):
            grants.report_usage(s, user(s, people, "stranger"), grant, "冒名报告内容", "别处")


# ---------------------------------------------------------------------- through the web


def test_licensed_download_holds_only_the_granted_fields_and_rows(app, portal_data, people):
    grant = granted(
        portal_data, people, fields=["企业名称", "所属街道"], rows={"所属街道": ["古楼街道", "新区街道"]}
    )
    client = app.test_client()
    response = client.get(download_link(client, people), follow_redirects=True)
    assert response.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(zf.namelist()) == [
        "AGREEMENT.txt",
        "ATTRIBUTION.txt",
        "data.csv",
        "data.parquet",
        "data.xlsx",
        "datapackage.json",
    ]
    csv_lines = zf.read("data.csv").decode().splitlines()
    # The two granted fields, in the grant's own order (licenses/fingerprint.py: with two
    # columns, the one order that is not the dataset's).
    assert csv_lines[0] == '"所属街道","企业名称"' and len(csv_lines) == 3
    assert "柳园街道" not in zf.read("data.csv").decode() and "许可证编号" not in zf.read("data.csv").decode()
    table = pq.read_table(io.BytesIO(zf.read("data.parquet")))
    assert table.column_names == ["所属街道", "企业名称"] and table.num_rows == 2
    assert table.schema.metadata[b"licence_number"].decode() == grant.licence_number
    attribution = zf.read("ATTRIBUTION.txt").decode()
    for expected in (
        "东昌府区市场监督管理局",
        "企业信用风险分类结果",
        grant.licence_number,
        "城市治理",
        str(grant.valid_until),
        f"/licences/{grant.licence_number}",
        TODAY.isoformat(),
    ):
        assert expected in attribution
    assert zf.read("AGREEMENT.txt").decode() == grant.agreement.text
    with portal_data.sessions() as s:
        [logged] = s.scalars(select(LicensedDownload)).all()
        assert logged.rows == 2 and logged.bytes == len(response.get_data())
    response.close()
    leftovers = portal_data.storage.cache_path("licensed")
    assert not leftovers.exists() or not any(leftovers.iterdir())  # made for one download, not kept


def test_download_links_refused_for_others_tampering_expiry_and_revocation(
    app, portal_data, people, monkeypatch
):
    grant = granted(portal_data, people)
    owner = app.test_client()
    link = download_link(owner, people)
    other = app.test_client()
    _, email, password = people["stranger"]
    login(other, email, password)
    assert other.get(link).status_code == 403  # another user's link
    assert app.test_client().get(link).status_code == 302  # anonymous: log in first
    assert owner.get(link[:-3] + "xyz").status_code == 403  # tampered
    monkeypatch.setattr(grants, "LINK_MAX_AGE", -1)
    assert owner.get(link).status_code == 403  # expired link
    monkeypatch.setattr(grants, "LINK_MAX_AGE", 900)
    assert owner.get(link, follow_redirects=True).status_code == 200
    with portal_data.sessions() as s:
        g = s.get(Grant, grant.id)
        g.valid_until = TODAY - dt.timedelta(days=1)
        s.commit()
    assert "授权已过期" in owner.get(link).get_data(as_text=True)  # expired grant
    with portal_data.sessions() as s:
        g = s.get(Grant, grant.id)
        g.valid_until = TODAY + dt.timedelta(days=10)
        grants.revoke(s, s.get(User, people["bureau"][0]), g, "违反协议约定的用途使用数据")
        s.commit()
    assert "授权已撤销" in owner.get(link).get_data(as_text=True)  # revoked: stops at once


def test_the_public_licence_page(app, portal_data, people):
    grant = granted(portal_data, people)
    client = app.test_client()
    page = client.get(f"/licences/{grant.licence_number}").get_data(as_text=True)
    assert "有效" in page and "企业信用风险分类结果" in page and "城市治理" in page
    assert client.get("/licences/DCFL-2026-000000000").status_code == 404
    with portal_data.sessions() as s:
        grants.revoke(
            s, s.get(User, people["curator"][0]), s.get(Grant, grant.id), "数据用于协议之外的商业用途"
        )
        s.commit()
    page = client.get(f"/licences/{grant.licence_number}").get_data(as_text=True)
    assert "已撤销" in page and "数据用于协议之外的商业用途" in page


def test_applications_are_private_to_applicant_provider_and_bureau(app, portal_data, people):
    with portal_data.sessions() as s:
        application = submit(s, user(s, people, "applicant"))
    for who, status in [
        ("applicant", 200),
        ("curator", 200),
        ("bureau", 200),
        ("other_curator", 404),
        ("stranger", 404),
    ]:
        client = app.test_client()
        login(client, *people[who][1:])
        assert client.get(f"/applications/{application.id}").status_code == status, who
    client = app.test_client()
    login(client, *people["other_curator"][1:])
    response = post_form(
        client,
        f"/applications/{application.id}/decide",
        {"decision": "refuse", "note": "别的部门想替人做决定", "version": "1"},
        page="/account",
    )
    assert response.status_code == 404


def test_apply_through_the_web_and_notifications(app, portal_data, people):
    client = app.test_client()
    login(client, *people["applicant"][1:])
    response = post_form(
        client,
        "/apply?dataset=371502-scj-0002",
        {
            "dataset": "371502-scj-0002",
            "purpose": "social",
            "scenario": SCENARIO,
            "security": SECURITY,
            "period_from": TODAY.isoformat(),
            "period_until": (TODAY + dt.timedelta(days=60)).isoformat(),
            "fields_371502-scj-0002": ["企业名称"],
        },
    )
    assert response.status_code == 302
    mine = client.get("/applications").get_data(as_text=True)
    assert "待审核" in mine and "企业信用风险分类结果" in mine
    with portal_data.sessions() as s:
        application = s.scalar(select(Application))
        assert application.items[0].fields_requested == ["企业名称"]
        to = {m.to for m in s.scalars(select(OutboxMessage))}
        assert people["applicant"][1] in to and people["curator"][1] in to
    bad = post_form(
        client,
        "/apply?dataset=371502-scj-0002",
        {
            "dataset": "371502-scj-0002",
            "purpose": "social",
            "scenario": "短",
            "security": SECURITY,
            "all_fields_371502-scj-0002": "1",
            "period_from": TODAY.isoformat(),
            "period_until": TODAY.isoformat(),
        },
    )
    assert bad.status_code == 400 and "请具体说明使用场景" in bad.get_data(as_text=True)


def test_history_events_are_unchangeable(portal_data, people):
    with portal_data.sessions() as s:
        submit(s, user(s, people, "applicant"))
        event = s.scalar(select(ApplicationEvent))
        event.note = "改写历史"
        with pytest.raises(AppendOnlyError):
            s.commit()


def test_a_second_accept_of_the_same_agreement_does_nothing(portal_data, people):
    with portal_data.sessions() as s:
        app = submit(s, user(s, people, "applicant"))
        approve(s, user(s, people, "curator"), app)
        accept(s, user(s, people, "applicant"), app)
        with pytest.raises(LicenceError):
            accept(s, user(s, people, "applicant"), app)
        s.rollback()
        assert len(s.scalars(select(Agreement)).all()) == 1 and len(s.scalars(select(Grant)).all()) == 1


def test_the_same_dataset_twice_in_one_application_is_refused(portal_data, people):
    with portal_data.sessions() as s:
        ds = conditional(s)
        with pytest.raises(LicenceError, match="同一数据集只能申请一次"):
            apps.apply(
                s,
                user(s, people, "applicant"),
                apps.Request(
                    [(ds, None), (ds, ["企业名称"])],
                    "governance",
                    SCENARIO,
                    SECURITY,
                    TODAY,
                    TODAY + dt.timedelta(days=30),
                ),
            )


def test_each_step_notifies_the_applicant_on_the_account_page(app, portal_data, people):
    with portal_data.sessions() as s:
        application = submit(s, user(s, people, "applicant"))
        apps.refuse(
            s, user(s, people, "curator"), application, application.version, "用途与开放条件不符，不予同意"
        )
        from licenses import notify

        notify.application_step(s, application, "refuse", "http://portal.test")
        s.commit()
    client = app.test_client()
    login(client, *people["applicant"][1:])
    assert "申请未获同意" in client.get("/account").get_data(as_text=True)


def test_a_second_pending_application_for_the_same_dataset_and_purpose_is_refused(portal_data, people):
    with portal_data.sessions() as s:
        first = submit(s, user(s, people, "applicant"))
        with pytest.raises(apps.LicenceError, match=first.number):
            submit(s, user(s, people, "applicant"))
        s.rollback()
        submit(
            s, user(s, people, "applicant"), purpose="innovation"
        )  # another purpose is another application
        apps.withdraw(s, user(s, people, "applicant"), first, first.version)
        s.commit()
        submit(s, user(s, people, "applicant"))  # once withdrawn, the applicant may apply again


def test_the_bureau_enters_the_published_schedule_and_open_deadlines_are_recounted(app, portal_data, people):
    """A deadline counted into 2027 before the schedule was published (statutory holidays only)
    moves when the bureau enters it; both sides are told; an entered year is the calendar."""
    from portal.models import ApplicationEvent, OutboxMessage

    submitted = dt.date(2026, 12, 24)
    with portal_data.sessions() as s:
        [application] = apps.apply(
            s,
            user(s, people, "applicant"),
            apps.Request(
                datasets=[(conditional(s), None)],
                purpose="governance",
                scenario=SCENARIO,
                security_measures=SECURITY,
                period_from=max(submitted, clock.today()),
                period_until=max(submitted, clock.today()) + dt.timedelta(days=90),
            ),
            today=submitted,
        )
        s.commit()
        assert application.deadline == dt.date(2027, 1, 8) and "尚未公布" in str(application.deadline_words)
        number = application.number
    client = app.test_client()
    _, email, password = people["bureau"]
    login(client, email, password)
    # a schedule that leaves out statutory holidays is refused, not half-entered
    resp = post_form(
        client,
        "/admin/calendar",
        {"year": "2027", "holidays": "2027-01-01\n2027-01-04", "workdays": "2027-01-09"},
        follow_redirects=True,
    )
    assert "不完整" in resp.get_data(as_text=True) and "2027-02-05" in resp.get_data(as_text=True)
    # a made-up complete one, written as the notice writes it: 4 January off as well,
    # Saturday 9 January a make-up working day
    holidays = (
        "2027年1月1日、2027-1-4；2027-02-05至2027-02-11；2027-04-05；2027-05-01至2027-05-05；"
        "2027-06-09；2027-09-15；2027-10-01至2027-10-07"
    )
    resp = post_form(
        client,
        "/admin/calendar",
        {"year": "2027", "holidays": holidays, "workdays": "2027-01-09"},
        follow_redirects=True,
    )
    assert "重新核定办理期限 1 件" in resp.get_data(as_text=True)
    with portal_data.sessions() as s:
        application = s.scalar(select(Application).where(Application.number == number))
        # 25, 28–31 Dec = 5; 1 and 4 Jan off; 5–8 Jan = 9; Sat 9 Jan (make-up) = 10
        assert application.deadline == dt.date(2027, 1, 9) and "已按公布的 2027 年节假日安排" in str(
            application.deadline_words
        )
        assert s.scalar(select(ApplicationEvent).where(ApplicationEvent.action == "deadline_recounted"))
        told = {
            m.to
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("办理期限已重新核定%")))
        }
        assert {people["applicant"][1], people["curator"][1]} <= told
    from portal.workdays import add_working_days, load_schedule

    with portal_data.sessions() as s:
        counted = add_working_days(dt.date(2027, 1, 7), 2, load_schedule(s))
        assert counted.date == dt.date(2027, 1, 9) and "官方" not in counted.note and "已计入" in counted.note
    assert "2027-01-04" in client.get("/admin/calendar").get_data(as_text=True)


def test_sensitive_data_gets_fifteen_working_days_and_a_written_refusal(app, portal_data, people):
    """Jiangsu Art. 18: a dataset the department marks as touching secrets or privacy."""
    client = app.test_client()
    _, email, password = people["curator"]
    login(client, email, password)
    post_form(
        client,
        "/console/datasets/371502-scj-0002/sensitive",
        {"sensitive": "1"},
        page="/console/datasets/371502-scj-0002",
    )
    submitted = dt.date(2026, 11, 2)  # a Monday with no holiday for three weeks
    with portal_data.sessions() as s:
        assert conditional(s).sensitive
        [application] = apps.apply(
            s,
            user(s, people, "applicant"),
            apps.Request(
                datasets=[(conditional(s), None)],
                purpose="governance",
                scenario=SCENARIO,
                security_measures=SECURITY,
                period_from=clock.today(),
                period_until=clock.today() + dt.timedelta(days=90),
            ),
            today=submitted,
        )
        s.commit()
        assert application.deadline == dt.date(2026, 11, 23) and "15 个工作日" in str(
            application.deadline_words
        )
        apps.refuse(
            s,
            user(s, people, "curator"),
            application,
            application.version,
            "涉及企业商业秘密，暂不具备提供条件",
        )
        s.commit()
        app_id = application.id
    page = client.get(f"/applications/{app_id}").get_data(as_text=True)
    assert f"/applications/{app_id}/decision" in page
    decision = client.get(f"/applications/{app_id}/decision").get_data(as_text=True)
    for words in ("不予提供公共数据决定书", "涉及企业商业秘密", "第十八条", "东昌府区市场监督管理局", "打印"):
        assert words in decision
    pdf = client.get(f"/applications/{app_id}/decision.pdf")
    assert pdf.status_code == 200 and pdf.get_data().startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf.get_data())).pages[0].extract_text()
    assert "不予提供公共数据决定书" in text and "涉及企业商业秘密" in text
    stranger = app.test_client()
    _, email, password = people["stranger"]
    login(stranger, email, password)
    assert stranger.get(f"/applications/{app_id}/decision").status_code in (403, 404)


def test_the_same_application_posted_twice_at_once_is_made_once(portal_data, people):
    barrier = threading.Barrier(2)
    outcomes = []

    def apply_now():
        with portal_data.sessions() as s:
            applicant = user(s, people, "applicant")
            ds = conditional(s)
            barrier.wait()
            try:
                apps.apply(
                    s,
                    applicant,
                    apps.Request(
                        datasets=[(ds, None)],
                        purpose="governance",
                        scenario=SCENARIO,
                        security_measures=SECURITY,
                        period_from=TODAY,
                        period_until=TODAY + dt.timedelta(days=30),
                    ),
                )
                s.commit()
                outcomes.append("made")
            except apps.LicenceError:
                s.rollback()
                outcomes.append("refused")
            except Exception as exc:  # SQLite may report the wait as a lock: it must still lose cleanly
                s.rollback()
                outcomes.append(f"lost:{type(exc).__name__}")

    threads = [threading.Thread(target=apply_now) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("made") == 1, outcomes
    with portal_data.sessions() as s:
        assert len(s.scalars(select(Application)).all()) == 1


def test_a_curators_move_to_tender_is_not_undone_by_applying_again(portal_data, people):
    with portal_data.sessions() as s:
        first = submit(s, user(s, people, "applicant"))
        apps.to_tender(
            s, user(s, people, "curator"), first, first.version, "付费选址产品属于商业开发，须公开招标"
        )
        s.commit()
        with pytest.raises(apps.LicenceError, match=first.number):
            submit(s, user(s, people, "applicant"))


def test_nothing_is_approved_or_accepted_for_a_dataset_that_left_public_view(portal_data, people):
    from portal.catalog import curation

    with portal_data.sessions() as s:
        app_ = submit(s, user(s, people, "applicant"))
        waiting = submit(s, user(s, people, "applicant"), purpose="innovation")
        approve(s, user(s, people, "curator"), app_)
        curation.withdraw(s, user(s, people, "curator"), conditional(s), "数据更正")
        s.commit()
        with pytest.raises(apps.LicenceError, match="目前不是可提供"):
            accept(s, user(s, people, "applicant"), app_)
        s.rollback()
        with pytest.raises(apps.LicenceError, match="目前不是可提供"):
            approve(s, user(s, people, "curator"), waiting)
