"""The browser tests' shared parts: one chromium per test, pages at a given width, in a given
language, in 关怀版, signed in; and the checks several tests make (sideways overflow, Chinese
interface text on an English page)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
DESKTOP = (1366, 900)
PHONE = (390, 844)  # a phone of today, in CSS pixels


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, live_server):
    """open_page(size=DESKTOP, care=False, lang=None, user=None) → a new page in a context of its own
    (`user` is make_user's (id, email, password): signed in through the login form)."""
    contexts = []

    def make(size: tuple[int, int] = DESKTOP, *, care: bool = False, lang: str | None = None, user=None):
        phone = size[0] < 600
        context = chromium.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN",
                                       is_mobile=phone, has_touch=phone, accept_downloads=True)
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


def sideways_overflow(page) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


# Chinese characters and the full-width punctuation that comes with them (，。：「」（）…).
CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


# An English sentence may quote the catalog's words: file “名录.csv”, column “身份证号”.
QUOTED = re.compile(r"“[^”]*”")


def chinese_interface_text(page) -> list[str]:
    """The words of an English page that are still Chinese — text, hidden text for screen readers,
    labels, placeholders and titles — leaving out the catalog's own words, which the templates
    mark lang="zh-CN" (titles, departments, domains, table data), and what people wrote
    themselves (names, a query), marked translate="no"."""
    found = page.evaluate("""() => {
        const out = [];
        const catalog = n => n.closest && n.closest('[lang^="zh"], [translate="no"], script, style, template');
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            if (!catalog(n.parentElement) && n.textContent.trim()) out.push(n.textContent.trim());
        }
        for (const e of document.body.querySelectorAll('[aria-label], [placeholder], [title], [alt], input[type=submit]')) {
            if (catalog(e)) continue;
            for (const a of ['aria-label', 'placeholder', 'title', 'alt', 'value']) {
                const v = e.getAttribute(a);
                if (v && (a !== 'value' || e.type === 'submit')) out.push(v);
            }
        }
        return out;
    }""")
    return [text for text in found if CHINESE.search(QUOTED.sub("", text))]
