"""The browser tests' shared parts: one chromium per test, pages at a given width, in a given
language, in 关怀版, signed in; and the checks several tests make (sideways overflow, Chinese
interface text on an English page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, live_server):
    """open_page(size=DESKTOP, care=False, lang=None, user=None) → a new page in a context of its own
    (`user` is make_user's (id, email, password): signed in through the login form)."""
    contexts = []

    def make(size: tuple[int, int] = DESKTOP, *, care: bool = False, lang: str | None = None, user=None):
        phone = size[0] < 600
        context = chromium.new_context(
            viewport={"width": size[0], "height": size[1]},
            locale="zh-CN",
            is_mobile=phone,
            has_touch=phone,
            accept_downloads=True,
        )
        contexts.append(context)
        cookies = [{"name": "care", "value": "1", "url": live_server}] if care else []
        if lang:
            cookies.append({"name": "lang", "value": lang, "url": live_server})
        if cookies:
            context.add_cookies(cookies)
        page = context.new_page()
        if user:
            page.goto(live_server + "/login")
            page.locator("#email").fill(user[1])
            page.locator("#password").fill(user[2])
            page.locator("main").get_by_role("button").last.click()
            page.wait_for_url("**/account")
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(tmp_path):
    """One page of a chromium of its own, 1280 px wide (the journeys of test_public_pages.py,
    test_licensing_browser.py, test_tender_browser.py)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="zh-CN"
        )
        yield context.new_page()
        context.close()
        browser.close()
