"""Screenshots of the pages that matter, taken in Debian's chromium from a running portal.

    portal demo &                      # prints the demo accounts' password
    python docs/screenshots.py [http://127.0.0.1:5000] [demo password]

With the password, the department console and the bureau's dashboard are taken too.
"""
from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
PAGES = {"home": "/", "search": "/search?q=%E8%8D%AF%E5%93%81", "search-facets": "/search?q=%E5%90%8D%E5%BD%95&open_class=unconditional",
         "dataset": None, "lists": "/department/dcf-scjgj/lists", "home-en": "/?lang=en", "home-care": None}


def main(base: str, password: str = "") -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, path in PAGES.items():
            if name == "dataset":  # the first unconditional dataset of the drugs search
                page.goto(base + "/search?q=%E8%8D%AF%E5%93%81&open_class=unconditional")
                page.locator(".hit-title a").first.click()
                page.wait_for_load_state()
            elif name == "home-care":
                page.goto(base + "/care/on")
            else:
                page.goto(base + path)
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
            if name == "home-care":
                page.goto(base + "/care/off")
            print(OUT / f"{name}.png")
        if password:
            for email, name, path in (("curator@demo.dongchangfu.example", "console", "/console"),
                                      ("bureau@demo.dongchangfu.example", "dashboard", "/admin/")):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/login")
                page.get_by_label("邮箱").fill(email)
                page.get_by_label("密码").fill(password)
                page.get_by_role("button", name="登录").click()
                page.wait_for_url("**/account")
                page.goto(base + path)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(OUT / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000", sys.argv[2] if len(sys.argv) > 2 else "")
