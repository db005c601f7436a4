"""A researcher granted sandbox delivery works in Chromium: opens the sandbox from "my grants",
writes a grouped count beside the schema, sees the street with 3 records left out and the others' counts perturbed, downloads
the output with its attribution and licence number, and asks for the full output; the page
works on a 390 px phone."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from tests.helpers import make_sandbox_world, shot, sideways_overflow


@pytest.fixture
def sandbox_world(portal_data, tmp_path, make_user):
    return make_sandbox_world(portal_data, tmp_path, make_user)


def test_a_researcher_runs_a_grouped_count_and_downloads_the_checked_output(
    sandbox_world,
    open_page,
    live_server,
    tmp_path,
):
    page = open_page(user=sandbox_world["applicant"])
    page.goto(f"{live_server}/grants")
    page.get_by_role("link", name="进入数据沙箱").click()
    assert "身份证号" in page.locator(".sandbox-schema").inner_text()  # the schema beside the editor
    page.get_by_label("SQL（只读 SELECT，表名为 data）").fill(
        "SELECT 所属街道, COUNT(*) AS 人数\nFROM data\nGROUP BY 所属街道\nORDER BY 人数 DESC"
    )
    page.get_by_role("button", name="运行查询").click()
    page.wait_for_url("**/sandbox/queries/*")
    page.wait_for_selector("table.sandbox-result")
    table = page.locator("table.sandbox-result")
    cells = [c.strip() for c in table.locator("tbody td").all_inner_texts()]
    shown = dict(zip(cells[0::2], (int(n) for n in cells[1::2]), strict=True))
    # 广平乡 (3 records, below k = 10) is left out; the counts carry the cell-key perturbation
    assert set(shown) == {"古楼街道", "柳园街道", "新区街道"} and abs(shown["古楼街道"] - 120) <= 3
    assert page.get_by_text("记录少于 10 条的分组不显示", exact=False).is_visible()
    shot(page, "sandbox-query")

    with page.expect_download() as got:
        page.get_by_role("link", name="下载结果（CSV，含数据来源和授权编号）").click()
    path = tmp_path / "output.zip"
    got.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        rows = list(csv.reader(io.StringIO(zf.read("output.csv").decode("utf-8-sig"))))
        attribution = zf.read("ATTRIBUTION.txt").decode()
    assert rows[0] == ["所属街道", "人数"] and {r[0]: int(r[1]) for r in rows[1:]} == shown
    assert sandbox_world["licence"] in attribution and "数据来源" in attribution

    page.get_by_text("申请发布完整结果").click()
    page.get_by_label("为什么需要被抑制的单元格（提供部门据此审核）").fill(
        "需要广平乡的人数核对全区救助覆盖总数"
    )
    page.get_by_role("button", name="提交发布申请").click()
    assert (
        "已提交发布申请" in page.locator("main").inner_text() or "待审核" in page.locator("main").inner_text()
    )

    phone = open_page(size=(390, 844), user=sandbox_world["applicant"])
    phone.goto(page.url)
    assert sideways_overflow(phone) == 0
    phone.goto(f"{live_server}/sandbox/{sandbox_world['grant_id']}")
    assert sideways_overflow(phone) == 0
    shot(phone, "sandbox-editor-phone")
    english = open_page(size=(390, 844), lang="en", user=sandbox_world["applicant"])
    english.goto(page.url)
    assert english.get_by_role("heading", name="Sandbox query", exact=False).is_visible()
    assert english.get_by_text("Download the output (CSV, with source and licence number)").is_visible()
    assert sideways_overflow(english) == 0
    shot(english, "sandbox-query-390-en")

    # The providing department sees the full output and the request, in both languages and on a phone.
    query_path = page.url.split(live_server, 1)[1].replace("/sandbox/queries/", "/console/sandbox/queries/")
    for size, lang, name in (
        ((1366, 900), None, "sandbox-oversight-1366-zh"),
        ((390, 844), "en", "sandbox-oversight-390-en"),
    ):
        curator = open_page(size=size, lang=lang, user=sandbox_world["curator"])
        curator.goto(live_server + query_path)
        assert (
            "广平乡" in curator.locator("main").inner_text()
        )  # left out for the holder, shown to the department
        assert sideways_overflow(curator) == 0
        shot(curator, name)
