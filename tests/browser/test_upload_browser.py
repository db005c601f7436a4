"""A curator uploads a new version in a real browser (the page's chunked uploader): a file with a
title row and a column of mobile numbers; the dry-run report says it would be held and why; the
curator masks the column, confirms, and the public page shows the new version with its data
dictionary."""

from __future__ import annotations

from sqlalchemy import select

from portal.catalog import dictionary
from portal.models import Dataset, User
from tests.catalogs import entry, write_catalog, write_csv
from tests.helpers import shot

NEW_VERSION = (
    "东昌府区超市名录（2026年12月更新）\n"
    "店名,街道,负责人手机\n"
    "甲超市,柳园街道,13812345678\n"
    "乙超市,古楼街道,13987654321\n"
    "丙超市,新区街道,15612345678\n"
)


def test_a_curator_uploads_masks_and_publishes_a_new_version(
    app, open_page, live_server, make_user, tmp_path
):
    from harvest.sources import SpreadsheetSource
    from portal.search.sync import sync

    ctx = app.extensions["portal"]
    folder = tmp_path / "src"
    write_csv(folder / "shops.csv", ["店名", "街道"], [["甲超市", "柳园街道"], ["乙超市", "古楼街道"]])
    ctx.harvester().run(
        SpreadsheetSource(
            write_catalog(folder / "catalog.csv", [entry("DCF-UP-002", "超市名录", file="shops.csv")])
        )
    )
    sync(ctx.sessions, ctx.search)
    curator = make_user(curator_of="dcf-scjgj")
    with ctx.sessions() as s:  # the department described its columns earlier
        ds = s.scalar(select(Dataset).where(Dataset.name == "dcf-up-002"))
        dictionary.edit(
            s,
            s.get_one(User, curator[0]),
            ds,
            {"店名": {"title": "超市名称", "description": "营业执照上的名称"}},
        )
        s.commit()
    upload_file = tmp_path / "超市名录2026.csv"
    upload_file.write_text(NEW_VERSION, encoding="utf-8")

    page = open_page(user=curator)
    page.goto(live_server + "/console/datasets/dcf-up-002")
    page.get_by_role("link", name="上传新的数据文件").click()
    page.locator("#file").set_input_files(str(upload_file))
    page.get_by_role("button", name="上传并检查").click()
    page.wait_for_url("**/console/uploads/**")
    page.wait_for_selector("#verdict")
    verdict = page.locator("#verdict").inner_text()
    assert "暂缓发布" in verdict
    report = page.locator("main").inner_text()
    assert "负责人手机" in report and "138****5678" in report
    assert "东昌府区超市名录（2026年12月更新）" in report  # the title row, found and left out of the data
    shot(page, "console-upload-report")

    page.get_by_label("脱敏方式：负责人手机").select_option("partial")
    page.get_by_role("button", name="按此脱敏并重新检查").click()
    page.wait_for_selector("#verdict")
    assert "检查未发现问题" in page.locator("#verdict").inner_text()
    page.get_by_role("button", name="确认发布新版本").click()
    page.wait_for_selector("text=新版本已发布处理")

    page.goto(live_server + "/dataset/dcf-up-002")
    public = page.locator("main").inner_text()
    assert "3 行" in public and "负责人手机" in public
    schema = page.locator("table.schema").first.text_content()  # in the folded 数据结构
    assert "超市名称" in schema and "营业执照上的名称" in schema  # the dictionary, kept with the new version
    assert "13812345678" not in public
    shot(page, "dataset-new-version")
