"""Screenshots of the main pages at 1366 px (a desktop) and 390 px (a phone), taken in Debian's
chromium from a running portal, into docs/screenshots/<page>.png and <page>-phone.png.

    portal demo --no-serve             # prints the demo accounts' password
    portal serve --port 5055 &
    python docs/screenshots.py [http://127.0.0.1:5055] [demo password] [--only home,search]

With the password, the signed-in pages (account, console, dashboard, a tender) are taken too.
Look at them before committing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
WIDTHS = {"": (1366, 900), "-phone": (390, 844)}
SEARCH = "/search?q=%E8%8D%AF%E5%93%81"  # 药品
# name → path; "dataset" is the first unconditional hit of the drugs search.
PUBLIC = {
    "home": "/",
    "search": SEARCH,
    "search-facets": "/search?q=%E5%90%8D%E5%BD%95&open_class=unconditional",
    "search-all": "/search?page=3",
    "dataset": None,
    "dataset-conditional": None,
    "lists": "/lists",
    "department-lists": "/department/dcf-scjgj/lists",
    "tenders": "/tenders",
    "requests": "/requests",
    "login": "/login",
    "register": "/register",
    "error-404": "/dataset/no-such-dataset",
    "api": "/api/docs",
    "home-en": "/?lang=en",
    "home-care": "/",
    "search-care": SEARCH,
}
SIGNED_IN = {  # (account, name, path)
    "account": ("company@demo.dongchangfu.example", "/account"),
    "console": ("curator@demo.dongchangfu.example", "/console"),
    "dashboard": ("bureau@demo.dongchangfu.example", "/admin/"),
    "audit": ("bureau@demo.dongchangfu.example", "/admin/audit"),
}
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _open(page, base: str, name: str, path: str | None) -> None:
    if name.startswith("dataset"):
        cls = "conditional" if name == "dataset-conditional" else "unconditional"
        page.goto(f"{base}/search?open_class={cls}&sort=downloads")
        page.goto(base + page.locator(".hit-title a").first.get_attribute("href"))
    else:
        page.goto(base + path)
    page.wait_for_load_state()


def main(base: str, password: str = "", only: set[str] | None = None) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        for suffix, (width, height) in WIDTHS.items():
            context = browser.new_context(
                viewport={"width": width, "height": height},
                locale="zh-CN",
                device_scale_factor=1,
                is_mobile=bool(suffix),
                has_touch=bool(suffix),
            )
            page = context.new_page()
            for name, path in PUBLIC.items():
                if only and name not in only:
                    continue
                if name.endswith("-care"):
                    page.goto(base + "/care/on")
                _open(page, base, name, path)
                page.screenshot(path=str(OUT / f"{name}{suffix}.png"), full_page=True)
                if name.endswith("-care"):
                    page.goto(base + "/care/off")
                if name == "home-en":
                    page.goto(base + "/lang/zh")
                print(OUT / f"{name}{suffix}.png")
            if suffix and (not only or "menu" in only):  # the phone's menu, opened
                page.goto(base + "/")
                page.locator("summary.menu-button").click()
                page.screenshot(path=str(OUT / "menu-phone.png"))
                print(OUT / "menu-phone.png")
            context.close()
            if not password:
                continue
            for name, (email, path) in SIGNED_IN.items():
                if only and name not in only:
                    continue
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    locale="zh-CN",
                    is_mobile=bool(suffix),
                    has_touch=bool(suffix),
                )
                page = context.new_page()
                page.goto(base + "/login")
                page.get_by_label("邮箱").fill(email)
                page.get_by_label("密码").fill(password)
                page.locator("main").get_by_role("button", name="登录").click()
                page.wait_for_url("**/account")
                page.goto(base + path)
                page.screenshot(path=str(OUT / f"{name}{suffix}.png"), full_page=True)
                print(OUT / f"{name}{suffix}.png")
                context.close()
        browser.close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--only")]
    only = next((set(a.split("=", 1)[1].split(",")) for a in sys.argv[1:] if a.startswith("--only=")), None)
    main(args[0] if args else "http://127.0.0.1:5055", args[1] if len(args) > 1 else "", only)
