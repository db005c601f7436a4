"""axe-core over every page template (issue 17, item 8): public pages, account pages, the
console, the admin pages, licensing and tender pages and the error page, in Debian's chromium;
no serious or critical violation of WCAG 2.1 A/AA or of axe's best practices.

axe-core comes from PyPI (axe-playwright-python bundles axe.min.js, MPL-2.0): installed with the
test extras, nothing fetched while the tests run. Which templates were rendered is recorded from
Flask's template_rendered signal, so a new template without a page here fails the test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask import template_rendered

from tests.helpers import DESKTOP, PHONE, sideways_overflow

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
RULES = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "resultTypes": ["violations"],
}
FAILING = {"serious", "critical"}
REPORTED = (
    {"minor", "moderate", "serious", "critical"} if __import__("os").environ.get("AXE_ALL") else FAILING
)


def page_templates() -> set[str]:
    """Every template that is a page: partials (_*.html) and the layout are parts of pages."""
    return {
        p.relative_to(TEMPLATES).as_posix()
        for p in TEMPLATES.rglob("*.html")
        if not p.name.startswith("_") and p.name != "base.html"
    }


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=RULES).response
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(n['target'][0] for n in v['nodes'][:3])}"
        for v in results["violations"]
        if v["impact"] in REPORTED
    ]


@pytest.fixture
def world(portal_data, make_user, app):
    """Someone and something for every page: a bureau user, a curator, a company holding a grant,
    a company refused with reasons, an application waiting for a decision, an open tender with a
    bid and a closed one being evaluated, a data request, an error report."""
    from sqlalchemy import select

    from licenses import applications as apps
    from licenses import tenders as svc
    from portal import accounts, feedback
    from portal.models import Application, Dataset, Tender, User, utcnow
    from tests.helpers import accept, approve, submit

    people = {
        "bureau": make_user(bureau=True, name="王局长"),
        "curator": make_user(curator_of="dcf-scjgj", name="李管理员"),
        "holder": make_user("company", name="张经理"),
        "refused": make_user("company", name="赵经理"),
        "waiting": make_user("company", name="钱经理"),
        "sandboxer": make_user("company", name="孙研究员"),
    }
    with portal_data.sessions() as s:
        user = {k: s.get(User, v[0]) for k, v in people.items()}
        for who, company in (
            ("holder", "聊城甲数据科技有限公司"),
            ("refused", "聊城乙信息技术有限公司"),
            ("waiting", "聊城丙软件有限公司"),
        ):
            user[who].company_name = company
        s.commit()
        granted = submit(s, user["holder"])
        approve(s, user["curator"], granted, fields=["企业名称", "所属街道"])
        grant = accept(s, user["holder"], granted)
        # A sandbox grant with a query whose small cells were suppressed, and a release asked.
        from licenses import sandbox

        in_sandbox = submit(s, user["sandboxer"])
        apps.approve(
            s,
            user["curator"],
            in_sandbox,
            in_sandbox.version,
            fields={},
            row_filters={},
            valid_from=in_sandbox.period_from,
            valid_until=in_sandbox.period_until,
            delivery="sandbox",
        )
        s.commit()
        sandbox_grant = accept(s, user["sandboxer"], in_sandbox)
        [table] = sandbox.tables(sandbox_grant)
        query = sandbox.submit(s, user["sandboxer"], sandbox_grant, table, "SELECT COUNT(*) AS n FROM data")
        s.commit()
        s.refresh(query)
        sandbox.request_release(s, user["sandboxer"], query, "需要各街道的药店数量用于选址研究")
        s.commit()
        from portal import follows

        follows.follow(s, user["holder"], "dataset", "371502-scj-0001")
        follows.follow(s, user["holder"], "department", "dcf-scjgj")
        follows.set_favourite(
            s, user["holder"], s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001")), True
        )
        refused = submit(s, user["refused"])
        apps.refuse(
            s,
            user["curator"],
            refused,
            refused.version,
            "申请用途与数据开放条件不符，且未说明安全保护措施的具体内容。",
        )
        s.commit()
        waiting = submit(s, user["waiting"])
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        now = utcnow()
        tenders = []
        for title in ("企业信用风险数据商业开发授权", "企业信用风险数据商业开发授权（第二批）"):
            tenders.append(
                svc.open_tender(
                    s,
                    user["bureau"],
                    svc.TenderDraft(
                        title=title,
                        datasets=[(ds, None)],
                        licence_months=12,
                        territory="东昌府区",
                        qualifications="依法设立的企业",
                        opens_at=now - dt.timedelta(hours=1),
                        closes_at=now + dt.timedelta(days=7),
                        min_bids=1,
                    ),
                )
            )
            s.commit()
        secret = app.config["SECRET_KEY"]
        for tender in tenders:
            svc.submit_bid(
                s,
                secret,
                user["holder"],
                tender,
                {
                    "plan": "药店选址分析平台",
                    "security": "等保三级",
                    "public_value": "社区免费使用",
                    "price": "50",
                },
            )
            s.commit()
        closed = tenders[1]
        closed.closes_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()
        svc.close(s, user["bureau"], closed)
        s.commit()
        from portal.models import Department

        request = feedback.ask_for_data(
            s, user["holder"], "全区充电桩位置", "希望开放全区公共充电桩的位置和数量，用于出行服务。"
        )
        s.flush()
        feedback.route_request(
            s, user["bureau"], request, s.scalar(select(Department).where(Department.code == "dcf-scjgj"))
        )
        pharmacies = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        feedback.report_error(s, user["holder"], pharmacies, "第 2 行药店的地址已经变更，请核实更新。")
        feedback.rate(s, user["holder"], pharmacies, 4, "数据清楚，更新及时")
        shown = feedback.add_showcase(
            s,
            user["holder"],
            "药店地图",
            "根据药品零售企业名录制作的药店地图小程序。",
            "https://example.cn/map",
            "数据来源：东昌府区市场监督管理局，获取日期 2026-12-01",
            ["371502-scj-0002"],
            grant.licence_number,
        )
        # The bureau's content (portal/content.py): a topic, a notice, a showcase entry approved, one pending.
        from portal import content

        content.save_topic(
            s,
            user["bureau"],
            None,
            content.TopicInput(
                "drugs",
                "药品监管",
                "Drug supervision",
                "药店和企业信用",
                "",
                0,
                True,
                ["371502-scj-0001", "371502-scj-0002"],
            ),
        )
        content.save_page(
            s,
            user["bureau"],
            None,
            content.PageInput("notice", "平台升级公告", "", "将于 **12 月 10 日** 升级。", "", True),
        )
        feedback.review_showcase(s, user["bureau"], shown, True)
        feedback.add_showcase(
            s,
            user["holder"],
            "企业信用查询",
            "查询企业信用风险分类结果的小程序。",
            "",
            "数据来源：东昌府区市场监督管理局，获取日期 2026-12-01",
            ["371502-scj-0002"],
        )
        s.commit()
        # Operations: a registered source whose dry run could not reach its CKAN (the error shown),
        # a department's upload with its report, a duplicate pair sent to two departments.
        from portal.catalog import duplicates, schedules, uploads

        source = schedules.register(
            s,
            user["bureau"],
            kind="ckan",
            title="区共享平台",
            location="http://127.0.0.1:9/api",
            secret_key="k",
        )
        schedules.set_schedule(s, user["bureau"], source, schedule="daily", hour=2, weekday=0, enabled=True)
        schedules.run_by_hand(s, user["bureau"], source, dry_run=True)
        s.commit()
        body = "药店名称,所属街道\n东昌府区甲药店,柳园街道\n".encode()
        upload = uploads.start(
            s, portal_data.uploads_folder, user["curator"], pharmacies, "药店名录2026.csv", len(body), 1 << 30
        )
        uploads.part_path(portal_data.uploads_folder, upload).write_bytes(body)
        upload.received = len(body)
        uploads.finish(s, user["curator"], upload)
        s.commit()
        other = s.scalar(select(Dataset).join(Department).where(Department.code != "dcf-scjgj").limit(1))
        duplicates.send_to_departments(s, user["bureau"], pharmacies, other)
        s.commit()
        # A licensed ZIP still being made (its job not due yet): the waiting page.
        from portal import jobs

        waiting_zip = jobs.submit(
            s,
            "licensed_zip",
            {
                "grant": grant.id,
                "item": granted.items[0].id,
                "user": user["holder"].id,
                "site": "",
                "ip": None,
            },
            run_after=utcnow() + dt.timedelta(days=1),
        )
        s.commit()
        ids = {
            "sandbox_grant": sandbox_grant.id,
            "sandbox_query": query.id,
            "prepared": f"/grants/{grant.id}/prepared/{waiting_zip.id}",
            "source": source.id,
            "upload": upload.id,
            "grant": grant.id,
            "licence": grant.licence_number,
            "granted": granted.id,
            "refused": refused.id,
            "waiting": waiting.id,
            "open_tender": tenders[0].number,
            "closed_tender": closed.number,
            "reset": accounts.make_reset_token(app.config["SECRET_KEY"], user["holder"]),
        }
        assert s.scalar(select(Application).where(Application.id == waiting.id)).status == "submitted"
        assert s.get(Tender, closed.id).status == "evaluating"
    return people, ids


def pages(ids: dict) -> dict[str, list[str]]:
    """Who sees which pages (None: anyone)."""
    return {
        None: [
            "/",
            "/search",
            "/search?q=%E8%8D%AF%E5%93%81&open_class=unconditional",
            "/search?q=%E7%81%AB%E6%98%9F",
            "/dataset/371502-scj-0001",
            "/dataset/371502-scj-0002",
            "/department/dcf-scjgj",
            "/lists",
            "/department/dcf-scjgj/lists",
            "/evaluation",
            "/stats",
            "/stats/department/dcf-scjgj",
            "/dataset/371502-scj-0001/stats",
            "/dataset/371502-scj-0001?api_call=rows",
            "/dataset/371502-jty-0001",  # the map and chart previews (templates/dataset/_previews.html)
            "/dataset/371502-jty-0001?col=%E7%BB%8F%E5%BA%A6&op=gt&val=115.95&sort=%E7%BA%AC%E5%BA%A6&order=desc",
            "/open-licence/1.0",
            "/api/docs",
            "/tenders",
            f"/tenders/{ids['open_tender']}",
            f"/tenders/{ids['closed_tender']}",
            "/requests",
            "/showcase",
            "/topics",
            "/topics/drugs",
            "/notices",
            "/pages/guide",
            f"/licences/{ids['licence']}",
            "/licences/",
            "/login",
            "/register",
            "/reset",
            "/verify",
            f"/reset/{ids['reset']}",
            "/dataset/no-such-dataset",
        ],
        "holder": [
            "/dataset/371502-scj-0002",  # previews within the grant
            "/account",
            "/account/follows",
            "/applications",
            f"/applications/{ids['granted']}",
            "/grants",
            "/apply?dataset=371502-scj-0002",
            f"/grants/{ids['grant']}/download/not-a-token",
            ids["prepared"],
            f"/tenders/{ids['open_tender']}",
            "/admin/",
        ],
        "refused": [f"/applications/{ids['refused']}", f"/applications/{ids['refused']}/decision"],
        "sandboxer": [
            "/sandbox",
            "/grants",
            f"/sandbox/{ids['sandbox_grant']}",
            f"/sandbox/queries/{ids['sandbox_query']}",
        ],
        "curator": [
            "/console",
            "/console/applications",
            "/console/feedback",
            "/console/datasets/371502-scj-0004",
            "/console/datasets/371502-scj-0001",
            f"/applications/{ids['waiting']}",
            "/console/datasets/371502-scj-0001/upload",
            f"/console/uploads/{ids['upload']}",
            "/console/duplicates",
            "/console/catalog",
            "/account/notices",
            "/console/sandbox",
            f"/console/sandbox/queries/{ids['sandbox_query']}",
        ],
        "bureau": [
            "/admin/",
            "/admin/users",
            "/admin/harvest",
            "/admin/harvest?job=1",
            "/admin/duplicates",
            "/admin/restrictions",
            "/admin/licensing",
            f"/admin/licensing/grants/{ids['grant']}",
            "/admin/leaks",
            "/admin/calendar",
            "/admin/outbox",
            "/admin/audit",
            "/admin/synonyms",
            "/admin/topics",
            "/admin/topics/new",
            "/admin/pages",
            "/admin/pages/1",
            "/admin/showcase",
            "/admin/jobs",
            "/admin/sources",
            f"/admin/sources/{ids['source']}",
            "/admin/tenders/new",
            f"/tenders/{ids['open_tender']}/evaluate",
            f"/tenders/{ids['closed_tender']}/evaluate",
            f"/tenders/{ids['closed_tender']}",
        ],
    }


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_template_has_no_serious_accessibility_violation(open_page, live_server, app, world, size):
    """…and on a 390 px phone no page is wider than the screen."""
    people, ids = world
    rendered: set[str] = set()

    def record(sender, template, context, **extra) -> None:
        rendered.add(template.name)

    template_rendered.connect(record, app)
    found = {}
    try:
        for who, paths in pages(ids).items():
            page = open_page(size, user=people[who] if who else None)
            for path in paths:
                page.goto(live_server + path)
                if violations := axe_violations(page):
                    found[f"{who or 'anyone'} {path}"] = violations
                if size == PHONE and (wider := sideways_overflow(page)) > 0:
                    found[f"{who or 'anyone'} {path}"] = [f"{wider} px wider than the phone"]
    finally:
        template_rendered.disconnect(record, app)
    assert found == {}
    assert page_templates() - rendered == set(), "templates no page here renders: add a page for them"


@pytest.mark.parametrize(
    "care,lang", [(False, None), (True, None), (False, "en")], ids=["standard", "care", "english"]
)
def test_the_main_pages_on_a_phone_in_care_mode_and_in_english(
    open_page, live_server, portal_data, make_user, care, lang
):
    found = {}
    page = open_page(PHONE, care=care, lang=lang)
    for path in (
        "/",
        "/search?q=%E8%8D%AF%E5%93%81",
        "/dataset/371502-scj-0001",
        "/dataset/371502-scj-0002",
        "/lists",
        "/login",
        "/register",
        "/dataset/no-such-dataset",
    ):
        page.goto(live_server + path)
        if violations := axe_violations(page):
            found[path] = violations
        page.get_by_text("Menu" if lang == "en" else "菜单", exact=True).click()  # the open menu too
        if violations := axe_violations(page):
            found[path + " (menu open)"] = violations
    console = open_page(PHONE, care=care, lang=lang, user=make_user(curator_of="dcf-scjgj"))
    for path in ("/console", "/console/datasets/371502-scj-0004", "/account"):
        console.goto(live_server + path)
        if violations := axe_violations(console):
            found[path] = violations
    assert found == {}
