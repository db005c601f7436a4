"""Register → verify from the outbox → log in → create an API token, in Debian's chromium."""

from __future__ import annotations

import re

from tests.helpers import shot

PASSWORD = "Guangyue-Tower-2026"


def test_register_verify_login_and_create_token(page, live_server, make_user, app):
    page.goto(live_server + "/register")
    page.get_by_label("邮箱").fill("zhang.wei@example.cn")
    page.get_by_label("姓名或称呼").fill("张伟")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)
    page.get_by_label("用户类型").select_option("developer")
    page.get_by_role("button", name="注册").click()
    page.wait_for_url("**/login")
    assert "验证邮件已发送" in page.locator(".flashes").inner_text()

    # The bureau reads the outbox (no SMTP here) — in another browser session.
    _, admin_email, admin_password = make_user(bureau=True)
    bureau = page.context.browser.new_context().new_page()
    bureau.goto(live_server + "/login")
    bureau.get_by_label("邮箱").fill(admin_email)
    bureau.get_by_label("密码").fill(admin_password)
    bureau.get_by_role("button", name="登录").click()
    bureau.goto(live_server + "/admin/outbox")
    mail = bureau.locator("article.mail", has_text="zhang.wei@example.cn").first
    link = re.search(r"https?://\S+/verify/\S+", mail.locator("pre.body").inner_text()).group(0)
    bureau.context.close()

    page.goto(link)
    page.wait_for_url("**/login")
    assert "邮箱已验证" in page.locator(".flashes").inner_text()
    page.get_by_label("邮箱").fill("zhang.wei@example.cn")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/account")
    page.get_by_label("令牌名称").fill("夜间同步")
    page.get_by_role("button", name="创建令牌").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("dcf_")
    assert "夜间同步" in page.locator("table.tokens").inner_text()
    shot(page, "account-tokens")
    # the token works for a script
    import requests

    me = requests.get(live_server + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.json()["result"]["email"] == "zhang.wei@example.cn"
