"""One tender in Debian's chromium, from the announcement to the award, with two companies."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal import clock
from portal.models import Tender, User, utcnow
from tests.helpers import log_in, shot


def as_user(page, base, who):
    p = page.context.browser.new_context().new_page()
    log_in(p, base, *who[1:])
    return p


def test_tender_from_announcement_to_award(page, live_server, portal_data, make_user):
    bureau_user = make_user(bureau=True)
    curator_user = make_user(curator_of="dcf-scjgj")
    companies = [make_user("company"), make_user("company")]
    with portal_data.sessions() as s:
        for (user_id, *_), name in zip(
            companies, ["聊城甲数据科技有限公司", "聊城乙信息技术有限公司"], strict=True
        ):
            s.get(User, user_id).company_name = name
        s.commit()

    bureau = as_user(page, live_server, bureau_user)
    bureau.goto(live_server + "/admin/tenders/new")
    bureau.get_by_label("招标名称").fill("企业信用风险数据商业开发授权")
    # the bureau finds the dataset by typing part of its title, and ticks it
    bureau.get_by_label("按名称筛选数据集").fill("信用风险")
    assert bureau.get_by_label("企业信用风险分类结果（东昌府区市场监督管理局）").is_visible()
    bureau.get_by_label("企业信用风险分类结果（东昌府区市场监督管理局）").check()
    now = clock.now()  # the form takes Beijing time
    bureau.get_by_label("投标开始（北京时间）").fill((now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    bureau.get_by_label("投标截止（北京时间）").fill((now + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    bureau.get_by_role("button", name="发布招标公告").click()
    assert "招标公告已发布" in bureau.locator(".flashes").inner_text()
    tender_url = bureau.url

    for user, plan, price in (
        (companies[0], "建设药店选址分析平台，服务连锁药店", "80"),
        (companies[1], "开发企业信用风险预警小程序", "60"),
    ):
        bidder = as_user(page, live_server, user)
        bidder.goto(tender_url)
        bidder.get_by_label("开发方案").fill(plan)
        bidder.get_by_label("安全保障能力").fill("等保三级，专人管理")
        bidder.get_by_label("公共价值").fill("向社区免费开放基础功能")
        bidder.get_by_label("报价（万元）").fill(price)
        bidder.get_by_role("button", name="密封提交投标").click()
        assert "回执" in bidder.locator(".flashes").inner_text()
        bidder.context.close()

    bureau.goto(tender_url + "/evaluate")
    assert "密封" in bureau.locator("h1").inner_text()  # no one reads a bid before the close
    bureau.goto(tender_url)  # while bidding is open, the bids cannot be opened
    assert bureau.get_by_role("button", name="截止并开标").count() == 0
    with portal_data.sessions() as s:  # the window closes (time passes)
        tender = s.scalar(select(Tender))
        tender.closes_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()
    bureau.goto(tender_url)
    bureau.get_by_role("button", name="截止并开标").click()
    assert bureau.locator("#receipts").inner_text().count("✓") == 2

    curator = as_user(page, live_server, curator_user)
    for evaluator in (bureau, curator):
        evaluator.goto(tender_url + "/evaluate")
        evaluator.get_by_label("本人声明与各投标人无利害关系").check()
        evaluator.get_by_role("button", name="声明并开始评审").click()
        for n in range(evaluator.locator("section.bid").count()):
            section = evaluator.locator("section.bid").nth(n)
            marks = (90, 85, 80, 70) if "甲" in section.locator("h2").inner_text() else (70, 75, 70, 90)
            for field, mark in zip(("开发方案", "安全保障能力", "公共价值", "报价"), marks, strict=True):
                section.get_by_label(field).fill(str(mark))
            with evaluator.expect_navigation():  # the score is saved before the next page is asked for
                section.get_by_role("button", name="保存评分").click()
            evaluator.goto(tender_url + "/evaluate")
    curator.context.close()
    bureau.goto(tender_url)
    bureau.get_by_role("button", name="确定中标人并公示").click()
    award = bureau.locator("#award").inner_text()
    assert "聊城甲数据科技有限公司" in award and "公示期至" in award
    shot(bureau, "tender-award")
    public = page
    public.goto(tender_url)
    assert "中标结果公示" in public.locator("#award").inner_text()
    assert [e for e in public.locator("table.history").inner_text().split("\n") if "公示中标结果" in e]
