"""The pages that matter, in a real browser: Debian's chromium driven by Playwright.

Search → dataset → download, and the language switch. With PORTAL_SCREENSHOTS=1 the browser
tests save the pages of their journeys (a licence, a tender's award…) to docs/screenshots/; the
main pages at 1366 and 390 px are taken by docs/screenshots.py from the demo.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="no chromium (apt-get install chromium)"
)


def test_search_then_dataset_then_download(page, live_server, portal_data, tmp_path):
    page.goto(live_server + "/")
    page.get_by_label("搜索数据").fill("药品")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert page.get_by_role("status").inner_text().startswith("共 1 项")
    assert page.locator("mark").first.inner_text() == "药品"
    page.get_by_role("link", name="药品零售企业名录").click()
    page.wait_for_url("**/dataset/371502-scj-0001")
    assert page.get_by_role("heading", level=1).inner_text().startswith("药品零售企业名录")
    assert "聊城市鲁西大药房古楼店" in page.locator("table.preview").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="CSV（Excel 打开）").click()
    download = info.value
    assert download.suggested_filename.startswith(
        "药品零售企业名录-"
    ) and download.suggested_filename.endswith(".csv")
    target = tmp_path / "d.csv"
    download.save_as(target)
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese as UTF-8
    assert "聊城市鲁西大药房古楼店" in target.read_text(encoding="utf-8-sig")


def test_language_switch_and_keyboard(page, live_server, portal_data):
    page.goto(live_server + "/dataset/371502-scj-0001")
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Catalog record").is_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "药品零售企业名录" in page.get_by_role("heading", level=1).inner_text()  # catalog text unchanged
    page.goto(live_server + "/search")
    assert page.get_by_role("link", name="中文").is_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
