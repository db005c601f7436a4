"""The consent route in Debian's chromium: apply → the curator approves → the applicant
accepts the agreement → downloads the ZIP → the licence page says valid; and a refusal with
its reasons."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from portal import clock
from tests.helpers import log_in, shot


def apply_for_conditional(p, base: str, scenario: str) -> None:
    p.goto(base + "/dataset/371502-scj-0002")
    p.get_by_role("link", name="申请使用").click()
    p.get_by_label("用途类别").select_option("governance")
    p.get_by_label("使用场景").fill(scenario)
    p.get_by_label("安全保护措施").fill("专人管理，加密存储，访问留痕")
    p.get_by_role("button", name="提交申请").click()
    p.wait_for_url("**/applications")


def open_in_queue(curator, base: str) -> None:
    curator.goto(base + "/console/applications")
    curator.locator("table.applications a").first.click()


def test_consent_route_from_application_to_licence(page, live_server, portal_data, make_user):
    _, applicant_email, applicant_password = make_user("company")
    _, curator_email, curator_password = make_user(curator_of="dcf-scjgj")
    log_in(page, live_server, applicant_email, applicant_password)
    apply_for_conditional(page, live_server, "用于城市药品供应保障分析，形成街道监测看板")
    assert "待审核" in page.locator("table.applications").inner_text()

    curator = page.context.browser.new_context().new_page()
    log_in(curator, live_server, curator_email, curator_password)
    open_in_queue(curator, live_server)
    curator.get_by_label("只提供部分行：字段").fill("所属街道")
    curator.get_by_label("取值（逗号分隔）").fill("古楼街道")
    curator.get_by_role("button", name="同意", exact=True).click()
    assert "已同意，待签协议" in curator.locator("h1").inner_text()
    shot(curator, "licensing-decided")
    curator.context.close()

    page.goto(live_server + "/applications")
    page.locator("table.applications a").first.click()
    assert "不得将数据提供、转让或出售给任何第三方" in page.locator("pre.agreement").inner_text()
    page.get_by_label("我已阅读并同意协议全部条款").check()
    page.get_by_role("button", name="接受协议").click()
    page.wait_for_url("**/grants")
    with page.expect_download() as info:
        page.get_by_role("link", name="下载授权数据（ZIP）").click()
    data = zipfile.ZipFile(io.BytesIO(info.value.path().read_bytes()))
    assert "古楼街道" in data.read("data.csv").decode() and "柳园街道" not in data.read("data.csv").decode()
    page.locator("section.grant h2 a").first.click()
    assert "有效" in page.locator(".licence-state").inner_text()
    shot(page, "licence")


def test_a_refusal_states_its_reasons(page, live_server, portal_data, make_user):
    _, applicant_email, applicant_password = make_user("company")
    _, curator_email, curator_password = make_user(curator_of="dcf-scjgj")
    log_in(page, live_server, applicant_email, applicant_password)
    apply_for_conditional(page, live_server, "用于营销名单筛选，向企业推送广告信息")
    curator = page.context.browser.new_context().new_page()
    log_in(curator, live_server, curator_email, curator_password)
    open_in_queue(curator, live_server)
    curator.get_by_role("button", name="不同意").click()
    assert "不同意的，应当说明理由" in curator.locator(".flashes").inner_text()  # no refusal without reasons
    curator.get_by_label("意见（不同意的须说明理由）").fill(
        "用途为商业营销，不属于城市治理，请通过商业开发途径申请"
    )
    curator.get_by_role("button", name="不同意").click()
    curator.context.close()
    page.goto(live_server + "/applications")
    assert "未同意" in page.locator("table.applications").inner_text()
    page.locator("table.applications a").first.click()
    assert "不属于城市治理" in page.locator(".decision-note").inner_text()
    assert clock.today().isoformat()[:4] in page.locator("table.history").inner_text()


def test_a_company_picking_consent_for_commercial_use_is_redirected_to_a_tender(
    page, live_server, portal_data, make_user
):
    """The purpose is self-declared: a company asks for 城市治理 to build a paid product; the
    curator moves it to the competitive route with reasons; it waits as registered interest,
    and when the bureau opens a tender on the dataset the company is told."""
    _, applicant_email, applicant_password = make_user("company")
    _, curator_email, curator_password = make_user(curator_of="dcf-scjgj")
    _, bureau_email, bureau_password = make_user(bureau=True)
    log_in(page, live_server, applicant_email, applicant_password)
    apply_for_conditional(page, live_server, "开发面向药店的付费选址分析产品，按年收取服务费")
    curator = page.context.browser.new_context().new_page()
    log_in(curator, live_server, curator_email, curator_password)
    open_in_queue(curator, live_server)
    curator.get_by_label("意见（不同意的须说明理由）").fill(
        "使用场景为付费产品，属于商业开发，须通过公开招标取得授权"
    )
    curator.get_by_role("button", name="属商业开发，转入招标").click()
    assert "已登记商业开发意向" in curator.locator("h1").inner_text()
    curator.context.close()
    page.goto(live_server + "/applications")
    assert "已登记商业开发意向" in page.locator("table.applications").inner_text()
    page.locator("table.applications a").first.click()
    assert "属于商业开发" in page.locator(".decision-note").inner_text()
    bureau = page.context.browser.new_context().new_page()
    log_in(bureau, live_server, bureau_email, bureau_password)
    bureau.goto(live_server + "/admin/tenders/new")
    bureau.get_by_label("招标名称").fill("企业信用风险数据商业开发授权")
    bureau.get_by_label("企业信用风险分类结果（东昌府区市场监督管理局）").check()
    now = clock.now()
    bureau.get_by_label("投标开始（北京时间）").fill(now.strftime("%Y-%m-%dT%H:%M"))
    bureau.get_by_label("投标截止（北京时间）").fill((now + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    bureau.get_by_role("button", name="发布招标公告").click()
    assert "招标公告已发布" in bureau.locator(".flashes").inner_text()
    bureau.context.close()
    page.goto(live_server + "/account")
    assert "已发布招标" in page.content()
    shot(page, "redirected-to-tender")
