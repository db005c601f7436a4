"""A citizen follows a dataset in a real browser; the department's next harvest brings a new
version with a new column; the header shows an unread notice and the notices page says what
changed. Then the follower chooses a weekly digest on the follows page."""

from __future__ import annotations

from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv
from tests.helpers import shot, sideways_overflow

SCJ = "371502-scj-0001"


def _reharvest_with_a_new_column(ctx, folder):
    from harvest.sources import SpreadsheetSource
    from portal.search.sync import sync

    header, rows = PHARMACIES
    write_csv(folder / "p.csv", [*header, "营业状态"], [[*r, "营业"] for r in rows], "gbk")
    catalog = write_catalog(folder / "scj.csv", [entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv")])
    ctx.harvester().run(SpreadsheetSource(catalog))
    sync(ctx.sessions, ctx.search)


def test_a_follower_is_told_of_a_new_version_after_a_reharvest(
    app, portal_data, open_page, live_server, make_user, tmp_path
):
    citizen = make_user(name="李明")
    page = open_page(user=citizen)
    page.goto(f"{live_server}/dataset/{SCJ}")
    page.get_by_role("button", name="关注", exact=True).click()
    page.wait_for_url(f"**/dataset/{SCJ}")
    assert page.get_by_role("button", name="已关注 · 取消关注").is_visible()

    _reharvest_with_a_new_column(portal_data, tmp_path / "src")

    page.goto(f"{live_server}/dataset/{SCJ}")
    unread = page.locator("header.site summary .unread")
    assert int(unread.inner_text()) >= 1 and "未读通知" in (unread.get_attribute("aria-label") or "")
    page.goto(f"{live_server}/account/notices")
    notices = page.locator("main").inner_text()
    assert "关注的数据集有变化" in notices
    page.locator("main .notice-list summary").first.click()
    body = page.locator("main").inner_text()
    assert "发布了新版本数据" in body or "新增 营业状态" in body
    shot(page, "follow-notices")

    page.goto(f"{live_server}/account/follows")
    assert "药品零售企业名录" in page.locator("main").inner_text()
    page.get_by_label("每周一汇总发一封邮件").check()
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/account/follows")
    assert page.get_by_label("每周一汇总发一封邮件").is_checked()
    shot(page, "follows")

    phone = open_page(size=(390, 844), user=citizen)
    phone.goto(f"{live_server}/account/follows")
    assert sideways_overflow(phone) == 0
    phone.goto(f"{live_server}/dataset/{SCJ}")
    assert phone.get_by_role("button", name="已关注 · 取消关注").is_visible()
    assert sideways_overflow(phone) == 0
