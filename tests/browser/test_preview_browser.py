"""See before downloading, in a real browser: the map of a table with coordinates, a chart of
the columns the reader picks, the table filtered and sorted — with no script of the page's
own. With PORTAL_SCREENSHOTS=1 the pages are saved to docs/screenshots/ (preview-*.png)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.catalogs import entry, write_csv
from tests.helpers import CHROMIUM, DESKTOP, harvest, shot, sideways_overflow

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="no chromium (apt-get install chromium)"
)

AIR = "371502-sth-0901"
STATIONS = ["聊城大学", "市环保局", "开发区管委会", "东昌府区政府", "古楼监测站", "湖西监测站", "柳园监测站"]
PHONE = (390, 844)


@pytest.fixture
def air(portal_data, tmp_path):
    """400 daily readings with a station, AQI and a position (three in Shanghai, one blank)."""
    rows = []
    for i in range(400):
        lon, lat = f"{115.9 + (i % 20) * 0.01:.4f}", f"{36.38 + (i % 15) * 0.01:.4f}"
        if i in (7, 8, 9):
            lon, lat = "121.47", "31.23"
        if i == 10:
            lon = ""
        day = (dt.date(2025, 1, 1) + dt.timedelta(days=i % 200)).isoformat()
        rows.append([day, STATIONS[i % 7], 20 + (i * 37) % 240, lon, lat])
    write_csv(tmp_path / "src/air.csv", ["日期", "监测点", "AQI", "经度", "纬度"], rows)
    harvest(
        portal_data,
        tmp_path / "src",
        [
            entry(
                "371502-STH-0901",
                "空气质量监测",
                file="air.csv",
                dept="聊城市生态环境局东昌府分局",
                dept_code="dcf-sthjj",
            )
        ],
        name="sth.csv",
    )


def test_map_chart_and_filters_in_the_browser(open_page, live_server, air):
    page = open_page(DESKTOP)
    page.goto(f"{live_server}/dataset/{AIR}")
    map_svg = page.locator("svg.map")
    map_svg.scroll_into_view_if_needed()
    assert map_svg.is_visible() and map_svg.bounding_box()["width"] > 500
    assert page.locator("svg.map circle").count() == 396
    assert "4 行坐标为空、无法识别或不在东昌府区范围内" in page.locator(".see-map figcaption").inner_text()
    line = page.locator("figure.see-chart svg path[stroke]")
    assert line.count() == 1 and line.is_visible()  # a date and a number: a line
    shot(page, "preview-map-line")

    # The reader picks the columns and the kind: mean AQI per station, as bars.
    form = page.get_by_role("group", name="选择图表的字段")
    form.get_by_label("分类或时间（横轴）").select_option("监测点")
    form.get_by_label("数值").select_option("AQI")
    form.get_by_label("统计").select_option("mean")
    form.get_by_label("图表类型").select_option("bar")
    form.get_by_role("button", name="作图").click()
    page.wait_for_url("**x=*")
    chart = page.locator("figure.see-chart")
    assert "柱状图" in chart.locator("figcaption").inner_text()
    bars = chart.locator("svg rect")
    assert bars.count() == 7 and bars.first.is_visible()
    assert "聊城大学" in chart.locator("svg").inner_html()
    chart.scroll_into_view_if_needed()
    shot(page, "preview-chart-bars")

    # Filter and sort the table; the chart's choice is kept.
    filters = page.get_by_role("group", name="筛选和排序")
    filters.get_by_label("字段", exact=True).select_option("监测点")
    filters.get_by_label("比较").select_option("eq")
    filters.get_by_label("值", exact=True).fill("聊城大学")
    filters.get_by_label("排序字段").select_option("AQI")
    filters.get_by_label("顺序").select_option("desc")
    filters.get_by_role("button", name="应用筛选").click()
    page.wait_for_url("**col=*")
    assert page.get_by_role("status").filter(has_text="符合条件的共").inner_text() == "符合条件的共 58 行"
    table = page.get_by_role("region", name="筛选结果")
    values = [int(v) for v in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]
    assert len(values) == 20 and values == sorted(values, reverse=True)
    assert set(table.locator("tbody tr td:nth-child(2)").all_inner_texts()) == {"聊城大学"}
    assert "柱状图" in page.locator("figure.see-chart figcaption").inner_text()  # still the reader's chart
    api = page.get_by_role("link", name="/api/data/")
    assert "eq%5B" in api.get_attribute("href") or "eq[" in api.get_attribute("href")
    page.locator("section.see-first").scroll_into_view_if_needed()
    shot(page, "preview-filtered")


@pytest.mark.parametrize(("size", "lang"), [(PHONE, "zh"), (PHONE, "en"), (DESKTOP, "en")])
def test_previews_on_a_phone_and_in_english(open_page, live_server, air, size, lang):
    page = open_page(size, lang=lang)
    page.goto(f"{live_server}/dataset/{AIR}?x=监测点&y=&kind=pie")
    assert page.locator("svg.map").is_visible()
    assert page.locator("figure.see-chart svg path").count() == 7  # seven stations, no "Other" of one
    assert sideways_overflow(page) == 0
    page.locator("section.see-first").scroll_into_view_if_needed()
    name = "phone" if size == PHONE else "desktop"
    shot(page, f"preview-{name}-{lang}")
    if lang == "en":
        assert page.get_by_role("region", name="See before downloading").is_visible()
        assert "Map preview" in page.locator("section.see-first").inner_text()
        assert "Pie chart" in page.locator("figure.see-chart figcaption").inner_text()
    if size == DESKTOP:  # addresses only: rows counted per street, the count printed in each circle
        page.goto(f"{live_server}/dataset/371502-scj-0001")
        counts = page.locator("svg.map text[font-weight=bold]").all_text_contents()
        assert counts == ["1", "1", "1"]
        shot(page, f"preview-streets-{lang}")
