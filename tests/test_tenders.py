"""Tenders: sealed bids (in code and at rest), receipts, late/duplicate/unqualified bids,
evaluation with the tie rule, failed tenders, award → standstill → agreement → grant."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile

import pytest
from sqlalchemy import select, text

from licenses import grants
from licenses import tenders as svc
from licenses.errors import LicenceError, Sealed
from portal import clock
from portal.models import Bid, Dataset, Grant, Tender, User, utcnow
from portal.workdays import add_working_days
from tests.helpers import login, make_tender, post_form

NOW = utcnow()
PLAN = "建设药品供应链分析平台，面向连锁药店提供选址服务"


@pytest.fixture
def people(portal_data, make_user):
    return {
        "bureau": make_user(bureau=True),
        "curator": make_user(curator_of="dcf-scjgj"),
        "other_curator": make_user(curator_of="dcf-jtysj"),
        "a": make_user("company", name="甲公司"),
        "b": make_user("company", name="乙公司"),
        "c": make_user("company", name="丙公司"),
        "citizen": make_user("citizen"),
        "unverified": make_user("company", verified=False),
    }


def u(s, people, who) -> User:
    user = s.get(User, people[who][0])
    if who in ("a", "b", "c"):
        user.company_name = {
            "a": "聊城甲数据科技有限公司",
            "b": "聊城乙信息技术有限公司",
            "c": "聊城丙软件有限公司",
        }[who]
    return user


def secret(app) -> str:
    return app.config["SECRET_KEY"]


def bid(s, app, people, who, tender, plan=PLAN, price="50", now=None) -> Bid:
    made = svc.submit_bid(
        s,
        secret(app),
        u(s, people, who),
        tender,
        {
            "plan": plan,
            "security": "等保三级机房，专人管理",
            "public_value": "免费向社区药房开放",
            "price": price,
        },
        now=now,
    )
    s.commit()
    return made


def close_window(s, tender) -> None:
    tender.closes_at = utcnow() - dt.timedelta(seconds=1)
    s.commit()


def test_opening_a_tender_checks_scope_and_weights(app, portal_data, people):
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))  # unconditional
        draft = svc.TenderDraft("x", [(ds, None)], 12, "东昌府区", "企业", NOW, NOW + dt.timedelta(days=1))
        with pytest.raises(LicenceError, match="不是有条件开放数据"):
            svc.open_tender(s, u(s, people, "bureau"), draft)
        cond = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        bad = svc.TenderDraft(
            "x",
            [(cond, None)],
            12,
            "东昌府区",
            "企业",
            NOW,
            NOW + dt.timedelta(days=1),
            criteria=[{"key": "plan", "name": "方案", "weight": 60}],
        )
        with pytest.raises(LicenceError, match="合计 100"):
            svc.open_tender(s, u(s, people, "bureau"), bad)
        with pytest.raises(PermissionError):
            svc.open_tender(
                s,
                u(s, people, "curator"),
                svc.TenderDraft("x", [(cond, None)], 12, "区", "企业", NOW, NOW + dt.timedelta(days=1)),
            )


def test_no_one_reads_a_bid_before_the_close(app, client, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        made = bid(s, app, people, "a", tender)
        for moment in (NOW, NOW + dt.timedelta(days=6)):
            with pytest.raises(Sealed):
                svc.open_bid(secret(app), tender, made, now=moment)
        raw = s.execute(text("SELECT sealed FROM bids")).scalar()
        assert PLAN.encode() not in bytes(raw) and "药品供应链".encode() not in bytes(raw)  # sealed at rest
        number = tender.number
    for who in ("bureau", "curator", "b", "a"):
        viewer = app.test_client()
        login(viewer, *people[who][1:])
        assert "药品供应链" not in viewer.get(f"/tenders/{number}").get_data(as_text=True)
        evaluate = viewer.get(f"/tenders/{number}/evaluate")
        assert evaluate.status_code == 403 and "药品供应链" not in evaluate.get_data(as_text=True)
        for page in ("/admin/audit", "/admin/outbox", "/api/3/action/package_search?q=*:*", "/tenders"):
            assert "药品供应链" not in viewer.get(page).get_data(as_text=True)


def test_receipts_match_the_stored_bids_and_expose_tampering(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        first = bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender, plan="建设乡镇药品配送调度系统")
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        s.commit()
        listed = svc.receipts(secret(app), tender)
        assert {r["receipt"] for r in listed} == {b.receipt for b in tender.bids} and all(
            r["matches"] for r in listed
        )
        opened = svc.open_bid(secret(app), tender, first)
        assert svc.receipt_of(tender, first.bidder_id, opened["bid"], opened["nonce"]) == first.receipt
        assert opened["bid"]["plan"] == PLAN
        first.receipt = hashlib.sha256(b"changed").hexdigest()
        assert [r["matches"] for r in svc.receipts(secret(app), tender) if r["receipt"] == first.receipt] == [
            False
        ]
        first.sealed = first.sealed[:-4] + b"AAAA"
        with pytest.raises(LicenceError, match="篡改"):
            svc.open_bid(secret(app), tender, first)


def test_late_duplicate_and_unqualified_bids(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        with pytest.raises(LicenceError, match="逾期投标不予受理"):
            bid(s, app, people, "a", tender, now=NOW + dt.timedelta(days=8))
        for who in ("citizen", "unverified"):
            with pytest.raises(LicenceError, match="仅经大数据局认证的企业账户"):
                bid(s, app, people, who, tender)
        first = bid(s, app, people, "a", tender)
        second = bid(s, app, people, "a", tender, price="60")  # a second bid replaces the first
        assert (first.status, second.status) == ("replaced", "submitted")
        assert [b.id for b in svc.valid_bids(tender)] == [second.id]
        svc.withdraw_bid(s, u(s, people, "a"), tender)
        assert svc.valid_bids(tender) == []
        with pytest.raises(LicenceError, match="报价须为正数"):
            bid(s, app, people, "b", tender, price="0")


def _evaluate(s, people, tender, scores_by_bidder: dict[str, dict]) -> None:
    for who in ("bureau", "curator"):
        svc.declare(s, u(s, people, who), tender)
    for bid_row in svc.valid_bids(tender):
        who = next(k for k in ("a", "b", "c") if people[k][0] == bid_row.bidder_id)
        for evaluator in ("bureau", "curator"):
            svc.score(s, u(s, people, evaluator), tender, bid_row, scores_by_bidder[who])
    s.commit()


def test_weighted_ranking_and_the_tie_rule(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender)
        bid(s, app, people, "c", tender)
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        # a: 80 everywhere = 80.00; b: 85×40% + 80×25% + 80×20% + 66.67×15% = 80.00 too; c: 57.50
        _evaluate(
            s,
            people,
            tender,
            {
                "a": {"plan": 80, "security": 80, "public_value": 80, "price": 80},  # 80.00
                "b": {
                    "plan": 85,
                    "security": 80,
                    "public_value": 80,
                    "price": 66.6667,
                },  # 80.00, lower price score
                "c": {"plan": 50, "security": 50, "public_value": 50, "price": 100},  # 57.50
            },
        )
        ranked = svc.ranking(s, tender)
        assert [round(r.total, 2) for r in ranked] == [80.0, 80.0, 57.5]
        assert ranked[0].bid.bidder_id == people["a"][0]  # same total: the higher price score first


def test_fewer_valid_bids_than_the_minimum_fails_and_can_reopen(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        close_window(s, tender)
        assert svc.close(s, u(s, people, "bureau"), tender) == "failed"
        s.commit()
        assert "流标" in tender.events[-1].note
        svc.reopen(
            s,
            u(s, people, "bureau"),
            tender,
            utcnow() - dt.timedelta(minutes=1),
            utcnow() + dt.timedelta(days=3),
        )
        s.commit()
        assert (tender.status, tender.round, svc.valid_bids(tender)) == ("open", 2, [])
        bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender)
        assert len(svc.valid_bids(tender)) == 2


def test_evaluators_declare_no_conflict_and_only_staff_evaluate(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        made = bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender)
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        scores = {"plan": 80, "security": 80, "public_value": 80, "price": 80}
        with pytest.raises(PermissionError):
            svc.score(s, u(s, people, "curator"), tender, made, scores)  # no declaration yet
        with pytest.raises(PermissionError):
            svc.declare(s, u(s, people, "other_curator"), tender)
        with pytest.raises(PermissionError):
            svc.declare(s, u(s, people, "a"), tender)
        svc.declare(s, u(s, people, "curator"), tender)
        with pytest.raises(LicenceError, match="0–100"):
            svc.score(s, u(s, people, "curator"), tender, made, {**scores, "price": 120})
        svc.score(s, u(s, people, "curator"), tender, made, scores)  # the other bid is not scored yet
        with pytest.raises(LicenceError, match="每位评审人"):
            svc.award(s, u(s, people, "bureau"), tender)


def test_award_standstill_objection_agreement_grant_and_licensed_download(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender)
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        _evaluate(
            s,
            people,
            tender,
            {
                "a": {"plan": 90, "security": 85, "public_value": 80, "price": 70},
                "b": {"plan": 70, "security": 75, "public_value": 70, "price": 90},
            },
        )
        awarded_on = clock.today() - dt.timedelta(days=20)
        winner = svc.award(s, u(s, people, "bureau"), tender, today=awarded_on)
        s.commit()
        assert winner.bid.bidder_id == people["a"][0]
        assert tender.standstill_until == add_working_days(awarded_on, 5).date
        objection = svc.object_to(
            s,
            u(s, people, "b"),
            tender,
            "中标人报价明显低于成本，请复核",
            today=awarded_on + dt.timedelta(days=1),
        )
        with pytest.raises(LicenceError, match="公示期"):
            svc.conclude(s, u(s, people, "bureau"), tender, today=tender.standstill_until)
        with pytest.raises(LicenceError, match="异议未答复"):
            svc.conclude(s, u(s, people, "bureau"), tender)
        svc.answer_objection(s, u(s, people, "bureau"), objection, "经复核报价符合要求，维持结果")
        application = svc.conclude(s, u(s, people, "bureau"), tender)
        s.commit()
        assert (application.status, application.route, application.applicant_id) == (
            "approved",
            "tender",
            people["a"][0],
        )
        sha = hashlib.sha256(grants.agreement_for(application, "http://portal.test").encode()).hexdigest()
        grant = grants.accept(
            s, u(s, people, "a"), application, application.version, sha, "http://portal.test"
        )
        s.commit()
        assert "公开招标等竞争性方式" in grant.agreement.text and grant.purpose == "commercial"
        grant_id = grant.id
        actions = [e.action for e in tender.events]
        assert actions == ["announced", "opened", "awarded", "objection", "objection_answered", "concluded"]
    client = app.test_client()
    login(client, *people["a"][1:])
    link = re.search(
        r'href="(/grants/\d+/download/[^"]+)"', client.get("/grants").get_data(as_text=True)
    ).group(1)
    archive = zipfile.ZipFile(io.BytesIO(client.get(link, follow_redirects=True).get_data()))
    assert "ATTRIBUTION.txt" in archive.namelist()
    with portal_data.sessions() as s:
        assert s.get(Grant, grant_id).state() == "valid"


def test_bidders_are_told_their_own_scores_and_the_public_sees_the_history(app, portal_data, people):
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender)
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        _evaluate(
            s,
            people,
            tender,
            {
                "a": {"plan": 90, "security": 85, "public_value": 80, "price": 70},
                "b": {"plan": 70, "security": 75, "public_value": 70, "price": 90},
            },
        )
        number = tender.number
    bureau = app.test_client()
    login(bureau, *people["bureau"][1:])
    assert post_form(bureau, f"/tenders/{number}/award", {}, page=f"/tenders/{number}").status_code == 302
    loser = app.test_client()
    login(loser, *people["b"][1:])
    page = loser.get(f"/tenders/{number}").get_data(as_text=True)
    assert "名次：2" in page and "开发方案 70.0" in page
    public = app.test_client().get(f"/tenders/{number}").get_data(as_text=True)
    assert "中标结果公示" in public and "聊城甲数据科技有限公司" in public and "✓" in public
    assert "名次：" not in public  # a bidder's own scores are shown to that bidder
    with portal_data.sessions() as s:
        from portal.models import OutboxMessage

        mails = {
            m.to: m.body
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("招标结果%")))
        }
        assert "未中标" in mails[people["b"][1]] and "您的投标中标" in mails[people["a"][1]]


def test_one_company_bids_once_whatever_its_number_of_accounts(app, portal_data, people, make_user):
    """A second account with the same 统一社会信用代码 cannot make a second valid bid and meet
    the minimum number of bids alone."""
    with portal_data.sessions() as s:
        code = s.get(User, people["a"][0]).credit_code
    twin = make_user("company", name="甲公司二号", credit_code=code)
    people = {**people, "twin": twin}
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        with pytest.raises(svc.LicenceError, match="同一企业"):
            svc.submit_bid(
                s,
                secret(app),
                s.get(User, twin[0]),
                tender,
                {
                    "plan": PLAN,
                    "security": "等保三级机房，专人管理",
                    "public_value": "免费开放",
                    "price": "40",
                },
            )
        s.rollback()
        bid(s, app, people, "b", tender)  # another company bids as before
        assert len(svc.valid_bids(s.get(Tender, tender.id))) == 2


def test_registered_interest_is_mailed_when_a_tender_on_the_dataset_opens(app, portal_data, people):
    from licenses import applications as apps
    from portal.models import OutboxMessage

    client = app.test_client()
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        [interest] = apps.apply(
            s,
            u(s, people, "a"),
            apps.Request(
                datasets=[(ds, None)],
                purpose="commercial",
                scenario="开发药品供应链商业分析平台，面向连锁药店",
                security_measures="等保三级机房，专人管理，访问留痕",
                period_from=clock.today(),
                period_until=clock.today() + dt.timedelta(days=300),
            ),
        )
        s.commit()
    _, email, password = people["bureau"]
    login(client, email, password)
    import re

    form_page = client.get("/admin/tenders/new").get_data(as_text=True)
    boxes = re.findall(r'<input[^>]*name="datasets"[^>]*>', form_page)
    assert boxes and not any("required" in b for b in boxes)  # a browser would demand every box ticked
    nothing = post_form(client, "/admin/tenders/new", {"title": "空", "licence_months": "12"})
    assert "请至少选择一个数据集" in nothing.get_data(as_text=True)  # the server asks for one instead
    opens = clock.now() - dt.timedelta(minutes=5)
    post_form(
        client,
        "/admin/tenders/new",
        {
            "title": "企业信用风险数据商业开发授权",
            "datasets": "371502-scj-0002",
            "opens_at": opens.strftime("%Y-%m-%dT%H:%M"),
            "closes_at": (opens + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
            "licence_months": "12",
            "min_bids": "2",
        },
    )
    with portal_data.sessions() as s:
        tender = s.scalar(select(Tender))
        assert abs(svc.as_utc(tender.opens_at) - opens.astimezone(dt.UTC)) < dt.timedelta(
            minutes=1
        )  # typed as Beijing time
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.to == people["a"][1])).all()
        assert any(tender.number in m.subject and "北京时间" in m.body for m in mails)
    page = client.get(f"/tenders/{tender.number}").get_data(as_text=True)
    assert opens.strftime("%Y-%m-%d %H:%M") in page and "北京时间" in page


def test_only_companies_the_bureau_verified_bid_and_a_credit_code_is_verified_once(
    app, portal_data, people, make_user
):
    from portal import accounts

    with portal_data.sessions() as s:
        code = s.get(User, people["a"][0]).credit_code
    fresh = make_user("company", name="新公司", company_verified=False)
    twin = make_user("company", name="甲公司二号", credit_code=code, company_verified=False)
    with portal_data.sessions() as s:
        tender = make_tender(s, people)
        with pytest.raises(svc.LicenceError, match="大数据局认证"):
            svc.submit_bid(
                s,
                secret(app),
                s.get(User, fresh[0]),
                tender,
                {
                    "plan": PLAN,
                    "security": "等保三级机房，专人管理",
                    "public_value": "免费开放",
                    "price": "40",
                },
            )
        s.rollback()
        bureau = s.get(User, people["bureau"][0])
        accounts.verify_company(s, bureau, s.get(User, fresh[0]))
        with pytest.raises(accounts.AccountError, match="已由另一已认证账户"):
            accounts.verify_company(s, bureau, s.get(User, twin[0]))
        s.commit()
        bid(s, app, {**people, "fresh": fresh}, "fresh", tender)  # verified now: the bid stands


def test_a_new_secret_key_keeps_every_sealed_bid_readable_and_its_receipt(
    app, portal_data, people, monkeypatch
):
    """After a leak the bureau replaces the key: bids sealed under the old one open under the new
    one with the same receipts, and a node still holding the old key does not start."""
    from click.testing import CliRunner

    from portal.cli import main
    from portal.config import Settings
    from portal.context import PortalContext
    from portal.deployment import DeploymentMismatch

    old = secret(app)
    with (
        portal_data.sessions() as s
    ):  # bids sealed while the tender is open: the key changes before anyone may read them
        tender = make_tender(s, people)
        bid(s, app, people, "a", tender)
        bid(s, app, people, "b", tender, price="80")
    settings = portal_data.settings
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    result = CliRunner().invoke(
        main,
        ["--instance", str(settings.instance_path), "deploy", "change-secret-key", "--yes"],
        env={"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_SEARCH_BACKEND": settings.search_backend},
    )
    assert result.exit_code == 0 and "2 sealed bids" in result.output, result.output
    new = (settings.instance_path / "secret_key").read_text().strip()
    assert new != old
    with portal_data.sessions() as s:
        tender = s.get(Tender, tender.id)
        close_window(s, tender)
        svc.close(s, u(s, people, "bureau"), tender)
        s.commit()
        listed = svc.receipts(
            new, tender
        )  # every bid opens under the new key, its published receipt unchanged
        assert {r["receipt"] for r in listed} == {b.receipt for b in tender.bids} and all(
            r["matches"] for r in listed
        )
        assert sorted(svc.open_bid(new, tender, b)["bid"]["price"] for b in tender.bids) == ["50", "80"]
    with pytest.raises(DeploymentMismatch):
        PortalContext(
            Settings(
                instance_path=settings.instance_path.parent / "old-node",
                database_url=settings.database_url,
                secret_key=old,
                files_path=settings.files_path,
            )
        )
