"""The publication gate, played as a careless department: title lines, skipped rows, personal
data in many shapes, placeholders for a legal basis, two-row headers, new versions. What is
checked is what a stranger gets back from every public path (tests/gate_helpers.py), not a
copy of it."""

from __future__ import annotations

import io

import pytest
from stdnum.cn import ric, uscc

from portal import clock
from tests.catalogs import entry, write_csv
from tests.helpers import CARD, dataset, harvest, leaks, login, post_form, public_answers

ID18 = "37150219850612" + "123"
ID18 = ID18 + ric.calc_check_digit(ID18 + "0")
USCC_92 = "92371502MA3C1234" + "5"
USCC_92 = USCC_92 + uscc.calc_check_digit(USCC_92)
TITLE = "东昌府区志愿者名册（2025年）"

# (columns, one row of values, the values that must never be served)
SHAPES = {
    "mobile with +86 and spaces": (["姓名", "联系电话"], ["张伟", "+86 139 1234 5678"], ["13912345678"]),
    "full-width mobile": (["姓名", "手机"], ["李娜", "１３９１２３４５６７８"], ["１３９１２３４５６７８"]),
    "18-digit ID in free text": (["备注"], [f"申请人身份证{ID18}，已核验"], [ID18]),
    "15-digit ID": (["姓名", "身份证号"], ["王强", "370102800101123"], ["370102800101123"]),
    "ID with a wrong check digit, named by its header": (
        ["姓名", "公民身份号码"],
        ["赵敏", ID18[:-1] + ("1" if ID18[-1] != "1" else "2")],
        [ID18[:-1]],
    ),
    "bank card": (["户名", "银行卡号"], ["刘洋", CARD], [CARD]),
    "bank card with spaces": (
        ["收款账户"],
        [" ".join([CARD[:4], CARD[4:8], CARD[8:12], CARD[12:16], CARD[16:]])],
        [CARD],
    ),
    "personal e-mail": (["联系人", "电子邮箱"], ["陈静", "chenjing1990@163.com"], ["chenjing1990@163.com"]),
    "passport by header": (["姓名", "护照号码"], ["孙杰", "E12345678"], ["E12345678"]),
    "Hong Kong and Macao permit in text": (["备注"], ["持港澳通行证C87654321办理"], ["C87654321"]),
    "Taiwan permit by header": (["姓名", "台胞证号码"], ["周涛", "12345678"], ["12345678"]),
    "vehicle plate": (["车主", "车牌号"], ["吴磊", "鲁P·A1234"], ["鲁P·A1234"]),
    "new-energy plate": (["登记车辆"], ["鲁PD12345"], ["鲁PD12345"]),
    "names with home addresses": (
        ["姓名", "家庭住址", "保障人数"],
        ["张伟", "聊城市东昌府区柳园路128号3单元", "3"],
        ["柳园路128号3单元"],
    ),
    "a person's landline": (["姓名", "联系电话"], ["杨洋", "0635-8211234"], ["8211234"]),
    "individual business code next to a name": (["经营者", "统一社会信用代码"], ["黄勇", USCC_92], [USCC_92]),
    # found by the attack review: shapes the first scan let through
    "a star in the cell": (["联系电话"], ["13812345678（*已核实）"], ["13812345678"]),
    "a masked number beside a real one": (["电话"], ["139****5678；备用13812345678"], ["13812345678"]),
    "a times sign in the cell": (["备注"], [f"规格2×3，经办人身份证{ID18}"], [ID18]),
    "mobile with dots": (["手机"], ["139.1234.5678"], ["139.1234.5678"]),
    "mobile with no-break spaces": (["手机"], ["139\u00a01234\u00a05678"], ["139\u00a01234\u00a05678"]),
    "mobile with ideographic spaces": (["手机"], ["139\u30001234\u30005678"], ["139\u30001234\u30005678"]),
    "mobile with long dashes": (["手机"], ["139—1234—5678"], ["139—1234—5678"]),
    "mobile with slashes": (["手机"], ["139/1234/5678"], ["139/1234/5678"]),
    "mobile in brackets": (["手机"], ["(139)1234-5678"], ["(139)1234"]),
    "ID in groups": (
        ["证件"],
        [f"{ID18[:6]} {ID18[6:14]} {ID18[14:]}"],
        [f"{ID18[:6]} {ID18[6:14]} {ID18[14:]}"],
    ),
    "ID with dots": (
        ["备注"],
        [f"{ID18[:6]}.{ID18[6:14]}.{ID18[14:]}"],
        [f"{ID18[:6]}.{ID18[6:14]}.{ID18[14:]}"],
    ),
    "landline in brackets next to a name": (["姓名", "联系电话"], ["张伟", "(0635)8211234"], ["8211234"]),
    "landline with a full-width dash": (["姓名", "联系电话"], ["张伟", "0635－8211234"], ["0635－8211234"]),
    "landline as a number next to names": (["姓名", "联系电话"], ["张伟", "8211234"], ["8211234"]),
    "户名 with a home address": (["户名", "家庭住址"], ["张伟", "柳园路128号3单元"], ["柳园路128号3单元"]),
    "低保户 with 居住地址": (
        ["低保户", "居住地址", "保障人数"],
        ["张伟", "柳园路128号", "3"],
        ["柳园路128号"],
    ),
    "业主 with 房屋坐落": (["业主", "房屋坐落", "面积"], ["张伟", "柳园路128号", "80"], ["柳园路128号"]),
    "name, employer and contact address": (
        ["姓名", "工作单位", "联系地址"],
        ["张伟", "聊城市某公司", "柳园路128号"],
        ["柳园路128号"],
    ),
    "rare surnames": (["姓名", "家庭住址"], ["蔺伟", "光岳路3号2单元"], ["光岳路3号2单元"]),
    "name and home in one cell": (["备注"], ["张伟，住聊城市东昌府区柳园路128号3单元"], ["柳园路128号3单元"]),
    "full-width at sign": (["邮箱"], ["chenjing1990＠163.com"], ["chenjing1990"]),
    "personal mail under .org.cn": (["邮箱"], ["chenjing1990@163.org.cn"], ["chenjing1990"]),
    "lower-case plate": (["车牌"], ["鲁p·a1234"], ["鲁p·a1234"]),
    "plate with a space": (["车辆"], ["鲁 PA1234"], ["鲁 PA1234"]),
    "personal data as a column name": (["站点", "张伟13912345678"], ["东昌湖", "1"], ["13912345678"]),
    "stars around a home address": (
        ["姓名", "家庭住址"],
        ["张伟", "柳园路128号3单元401室**"],
        ["柳园路128号3单元401室"],
    ),
    "stars beside an ID a header names": (
        ["姓名", "身份证号"],
        ["张伟", ID18[:-1] + "9 **"],
        [ID18[:-1] + "9"],
    ),
    "a NUL inside a mobile": (["备注"], ["张伟139\x0012345678"], ["12345678"]),
    "birth dates next to names": (["姓名", "出生日期"], ["张伟", "1985-06-12"], ["1985-06-12"]),
    # found by the third review of the gate
    "承租人 with 房屋坐落": (
        ["承租人", "房屋坐落"],
        ["张伟", "柳园路128号3单元401室"],
        ["柳园路128号3单元401室"],
    ),
    "驾驶人 with a landline": (["驾驶人", "联系电话"], ["张伟", "0635-8211234"], ["8211234"]),
    "a name padded to align": (
        ["姓名", "家庭住址"],
        ["张\u3000伟", "柳园路128号3单元"],
        ["柳园路128号3单元"],
    ),
    "a name with (户主)": (["姓名", "家庭住址"], ["张伟（户主）", "柳园路128号3单元"], ["柳园路128号3单元"]),
    "a short home address": (["姓名", "家庭住址"], ["张伟", "东昌花园3-2-401"], ["东昌花园3-2-401"]),
}


@pytest.fixture
def ctx(app):
    return app.extensions["portal"]


@pytest.mark.parametrize("shape", SHAPES)
def test_personal_data_in_every_shape_holds_an_unconditional_entry(client, ctx, tmp_path, shape):
    columns, values, secrets = SHAPES[shape]
    # as departments send it: a title line above the header, GBK
    path = tmp_path / "d.csv"
    body = io.StringIO()
    body.write(TITLE + "\n")
    import csv

    csv.writer(body, lineterminator="\n").writerows([columns, values, [""] * len(columns)])
    path.write_bytes(body.getvalue().encode("gb18030"))
    report = harvest(ctx, tmp_path, [entry("371502-MZJ-0001", "志愿者名册", file="d.csv")])
    [result] = report.entries
    assert result.action == "held", (shape, result.reason)
    assert result.details and result.details[0]["code"] == "personal"
    assert leaks(client, ctx, secrets) == {}


def test_public_data_is_not_mistaken_for_personal(client, ctx, tmp_path):
    """Institutions' phones, government mailboxes, licence and company codes, coordinates."""
    company = "91371502MA3C1234" + "5"
    company += uscc.calc_check_digit(company)
    write_csv(
        tmp_path / "d.csv",
        ["机构名称", "地址", "联系电话", "电子邮箱", "许可证编号", "统一社会信用代码", "经度"],
        [
            [
                "东昌府区古楼街道社区卫生服务中心",
                "聊城市东昌府区古楼街道东关街12号",
                "0635-8211234",
                "glsq@dcf.gov.cn",
                "JY13715020012345",
                company,
                "115.98",
            ],
            [
                "聊城市鲁西大药房",
                "聊城市东昌府区柳园路3号",
                "0635-2123456",
                "office@lcu.edu.cn",
                "鲁DA6350001",
                company,
                "115.97",
            ],
        ],
    )
    report = harvest(ctx, tmp_path, [entry("371502-WJJ-0001", "医疗机构名录", file="d.csv")])
    assert report.entries[0].action == "created", report.entries[0].reason
    ds = dataset(ctx, "371502-wjj-0001")
    assert ds.status == "published" and ds.distributions[0].scan_status == "clean"
    table = ds.distributions[0].tables[0]
    assert client.get(f"/dataset/{ds.name}/download/{table.id}.csv").status_code == 200


def test_a_title_line_above_the_header_no_longer_hides_the_table(client, ctx, tmp_path):
    (tmp_path / "d.csv").write_bytes(
        f"{TITLE}\n单位：人\n姓名,联系电话,所属街道\n张伟,13912345678,古楼街道\n"
        f"李娜,13812345678,柳园街道\n注：数据截至2025年6月。\n".encode("gbk")
    )
    [result] = harvest(ctx, tmp_path, [entry("371502-MZJ-0001", "志愿者名册", file="d.csv")]).entries
    assert result.action == "held" and "联系电话" in result.reason and "手机号码" in result.reason
    ds = dataset(ctx, "371502-mzj-0001")
    table = ds.distributions[0].tables[0]
    assert [f["name"] for f in table.schema] == ["姓名", "联系电话", "所属街道"] and table.row_count == 2
    assert table.notes == [TITLE, "单位：人", "注：数据截至2025年6月。"]
    assert leaks(client, ctx, ["13912345678", "13812345678"]) == {}


def test_rows_the_converter_cannot_read_hold_the_file_and_are_never_served(client, ctx, tmp_path):
    # The broken row carries a mobile number: it was never in the Parquet file the old scan read.
    (tmp_path / "d.csv").write_text(
        "站点,泊位\n东昌湖停车场,120\n古城停车场,80,联系人13912345678\n", encoding="utf-8"
    )
    [result] = harvest(ctx, tmp_path, [entry("371502-ZFJ-0001", "公共停车场", file="d.csv")]).entries
    assert result.action == "held" and "第 3 行" in result.reason
    assert leaks(client, ctx, ["13912345678", "东昌湖停车场"]) == {}


def test_a_titled_workbook_with_merged_cells_and_a_two_row_header_arrives_whole(client, ctx, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "名录"
    ws.append(["东昌府区养老服务机构名录（2025年）"])
    ws.merge_cells("A1:E1")
    ws.append(["机构名称", "联系方式", None, "床位数", "所属街道"])
    ws.merge_cells("B2:C2")
    for col in "ADE":
        ws.merge_cells(f"{col}2:{col}3")
    ws.append([None, "电话", "传真", None, None])
    ws.append(["东昌府区颐养中心", "0635-8211234", "0635-8211235", 120, "古楼街道"])
    ws.append(["东昌府区光岳老年公寓", "0635-8212345", "0635-8212346", 80, None])
    ws.append(["注：床位数为核定床位。"])
    wb.save(tmp_path / "book.xlsx")
    [result] = harvest(
        ctx, tmp_path, [entry("371502-MZJ-0002", "养老服务机构名录", file="book.xlsx")]
    ).entries
    assert result.action == "created", result.reason
    ds = dataset(ctx, "371502-mzj-0002")
    [table] = ds.distributions[0].tables
    assert [f["name"] for f in table.schema] == [
        "机构名称",
        "联系方式_电话",
        "联系方式_传真",
        "床位数",
        "所属街道",
    ]
    assert table.row_count == 2 and table.notes == [
        "东昌府区养老服务机构名录（2025年）",
        "注：床位数为核定床位。",
    ]
    csv_text = client.get(f"/dataset/{ds.name}/download/{table.id}.csv").get_data(as_text=True)
    assert (
        "东昌府区光岳老年公寓" in csv_text
        and "0635-8212346" in csv_text
        and "床位数为核定床位" not in csv_text
    )
    page = client.get(f"/dataset/{ds.name}").get_data(as_text=True)
    assert "注：床位数为核定床位。" in page  # the note is shown with the table, not as data


def test_an_earlier_version_with_personal_data_is_removed_and_never_served(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["姓名", "联系电话"], [["张伟", "13912345678"]])
    entries = [entry("371502-CLH-0001", "助残志愿者名单", file="d.csv")]
    assert harvest(ctx, tmp_path, entries).entries[0].action == "held"
    first = dataset(ctx, "371502-clh-0001").distributions[0]
    folder = ctx.storage.local_path(first.original_path).parent
    assert folder.exists()  # kept while held, for the department to mask
    write_csv(
        tmp_path / "d.csv", ["姓名", "所属街道"], [["张伟", "古楼街道"]]
    )  # the department cleans the file
    assert harvest(ctx, tmp_path, entries).entries[0].action == "updated"
    old, new = dataset(ctx, "371502-clh-0001").distributions
    assert old.purged_at is not None and not folder.exists()
    assert new.scan_status == "clean"
    assert client.get(f"/dataset/371502-clh-0001/download/{old.tables[0].id}.csv").status_code == 404
    assert leaks(client, ctx, ["13912345678"]) == {}
    assert client.get(f"/dataset/371502-clh-0001/download/{new.tables[0].id}.csv").status_code == 200


def test_a_clean_earlier_version_stays_in_the_history_and_a_personal_one_does_not(client, ctx, tmp_path):
    entries = [entry("371502-ZFJ-0002", "公共停车场", file="d.csv")]
    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "120"]])
    harvest(ctx, tmp_path, entries)
    write_csv(tmp_path / "d.csv", ["站点", "泊位", "管理员电话"], [["东昌湖停车场", "150", "13912345678"]])
    assert harvest(ctx, tmp_path, entries).entries[0].action == "held"
    assert client.get("/dataset/371502-zfj-0002").status_code == 404  # held: nothing of it is public
    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "160"]])
    harvest(ctx, tmp_path, entries)
    v1, v2, v3 = dataset(ctx, "371502-zfj-0002").distributions
    assert (v1.scan_status, v2.scan_status, v3.scan_status) == ("clean", "personal", "clean")
    page = client.get("/dataset/371502-zfj-0002").get_data(as_text=True)
    assert f"/download/{v1.tables[0].id}.csv" in page and f"/download/{v2.tables[0].id}" not in page
    assert client.get(f"/dataset/371502-zfj-0002/download/{v1.tables[0].id}.csv").status_code == 200
    assert v2.purged_at is not None
    assert leaks(client, ctx, ["13912345678"]) == {}


@pytest.mark.parametrize(
    "placeholder",
    [
        "待定",
        "暂无依据",
        "不适用",
        "同上",
        "没有",
        "否",
        "0",
        "TBD",
        "内部规定",
        "相关法律法规",
        "根据有关规定",
    ],
)
def test_a_placeholder_is_no_legal_basis(client, ctx, tmp_path, placeholder):
    write_csv(tmp_path / "d.csv", ["企业名称", "风险等级"], [["聊城市鲁西化工有限公司", "A"]])
    [result] = harvest(
        ctx,
        tmp_path,
        [entry("371502-SCJ-0002", "企业信用风险分类结果", "有条件开放", basis=placeholder, file="d.csv")],
    ).entries
    assert result.action == "held" and "法律依据" in result.reason and placeholder in result.reason
    assert client.get("/dataset/371502-scj-0002").status_code == 404


def test_not_open_always_wins_and_purges_every_version_even_without_a_basis(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "120"]])
    entries = [entry("371502-ZFJ-0003", "公共停车场", file="d.csv")]
    harvest(ctx, tmp_path, entries)
    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "150"]])
    harvest(ctx, tmp_path, entries)
    folders = {
        ctx.storage.local_path(d.original_path).parent for d in dataset(ctx, "371502-zfj-0003").distributions
    }
    assert all(f.exists() for f in folders) and len(folders) == 2
    entries = [entry("371502-ZFJ-0003", "公共停车场", "不予开放", basis="待定", file="d.csv")]
    [result] = harvest(ctx, tmp_path, entries).entries
    assert result.action == "held"  # held for its basis …
    assert not any(f.exists() for f in folders)  # … and no byte of it stays
    assert all(d.purged_at for d in dataset(ctx, "371502-zfj-0003").distributions)
    assert leaks(client, ctx, ["东昌湖停车场"]) == {}


def test_the_department_masks_a_column_and_the_masked_version_is_published(
    client, auth, ctx, tmp_path, make_user
):
    write_csv(
        tmp_path / "d.csv",
        ["姓名", "联系电话", "所属街道"],
        [["张伟", "13912345678", "古楼街道"], ["李娜", "13812345678", "柳园街道"]],
    )
    harvest(
        ctx,
        tmp_path,
        [
            entry(
                "371502-CLH-0002",
                "助残志愿者名单",
                file="d.csv",
                dept_code="dcf-cl",
                dept="东昌府区残疾人联合会",
            )
        ],
    )
    held = dataset(ctx, "371502-clh-0002")
    first_folder = ctx.storage.local_path(held.distributions[0].original_path).parent
    _, email, password = make_user(curator_of="dcf-cl")
    auth.login(email, password)
    page = client.get("/console/datasets/371502-clh-0002").get_data(as_text=True)
    assert "联系电话" in page and "手机号码" in page and "139****5678" in page and "如何处理" in page
    assert "13912345678" not in page  # the console shows masked examples only
    resp = post_form(
        client,
        "/console/datasets/371502-clh-0002/masking",
        {"mask:联系电话": "partial"},
        page="/console/datasets/371502-clh-0002",
        follow_redirects=True,
    )
    assert resp.status_code == 200
    ds = dataset(ctx, "371502-clh-0002")
    assert ds.status == "published" and ds.masking == {"联系电话": {"method": "partial", "kind": "mobile"}}
    old, new = ds.distributions
    assert old.purged_at is not None and not first_folder.exists() and new.scan_status == "clean"
    auth.logout()  # a stranger downloads it (a GET of /logout signed no one out: logout is a POST)
    assert client.get("/account").status_code == 302
    text = client.get(f"/dataset/371502-clh-0002/download/{new.tables[0].id}.csv").get_data(as_text=True)
    assert "139****5678" in text and "13912345678" not in text
    assert leaks(client, ctx, ["13912345678", "13812345678"]) == {}
    # the next harvest of the same file keeps the masking and changes nothing
    again = harvest(
        ctx,
        tmp_path,
        [
            entry(
                "371502-CLH-0002",
                "助残志愿者名单",
                file="d.csv",
                dept_code="dcf-cl",
                dept="东昌府区残疾人联合会",
            )
        ],
    )
    assert again.entries[0].action == "unchanged"


def test_the_harvest_report_says_what_was_found_where_and_the_fix(ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["姓名", "银行卡号"], [["刘洋", CARD]])
    [result] = harvest(ctx, tmp_path, [entry("371502-MZJ-0003", "救助发放", file="d.csv")]).entries
    [detail] = result.as_dict()["details"]
    assert "文件「d.csv」" in detail["what"] and "银行卡号" in detail["what"] and CARD not in detail["what"]
    assert "脱敏" in detail["fix"]


def test_what_is_served_is_what_was_scanned(client, ctx, tmp_path):
    """The public CSV holds the same rows as the Parquet file the scan read, for a file read as
    written (served as the department's bytes) and for one that was not (written from rows)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    write_csv(tmp_path / "plain.csv", ["站点", "泊位"], [["东昌湖停车场", "120"], ["古城停车场", "80"]])
    (tmp_path / "titled.csv").write_text(
        "停车场名录\n站点,泊位\n东昌湖停车场,120\n古城停车场,80\n", encoding="utf-8"
    )
    harvest(
        ctx,
        tmp_path,
        [
            entry("371502-ZFJ-0004", "停车场甲", file="plain.csv"),
            entry("371502-ZFJ-0005", "停车场乙", file="titled.csv"),
        ],
    )
    for name in ("371502-zfj-0004", "371502-zfj-0005"):
        table = dataset(ctx, name).distributions[0].tables[0]
        served = client.get(f"/dataset/{name}/download/{table.id}.csv").get_data()
        assert (
            pacsv.read_csv(io.BytesIO(served)).to_pylist()
            == pq.read_table(ctx.storage.local_path(table.parquet_path)).to_pylist()
        )
    assert all(
        "停车场名录" not in text for url, text in public_answers(client, ctx).items() if "download" in url
    )


def test_a_version_made_before_the_gate_is_not_served_until_harvested_again(client, ctx, tmp_path):
    from sqlalchemy import update

    from portal.models import Distribution

    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "120"]])
    entries = [entry("371502-ZFJ-0006", "公共停车场", file="d.csv")]
    harvest(ctx, tmp_path, entries)
    with ctx.sessions.begin() as s:  # as an instance upgraded from before the gate holds it
        s.execute(update(Distribution).values(scan_status=None))
    old = dataset(ctx, "371502-zfj-0006").distributions[0]
    assert client.get(f"/dataset/371502-zfj-0006/download/{old.tables[0].id}.csv").status_code == 404
    harvest(ctx, tmp_path, entries)  # the same file: made again, through the gate
    old, new = dataset(ctx, "371502-zfj-0006").distributions
    assert new.scan_status == "clean" and old.purged_at is not None
    assert client.get(f"/dataset/371502-zfj-0006/download/{new.tables[0].id}.csv").status_code == 200


def test_the_bureau_reads_the_report_in_words_with_the_fix(client, ctx, tmp_path, make_user):
    from sqlalchemy import select

    from portal.models import HarvestJob

    write_csv(tmp_path / "d.csv", ["姓名", "联系电话"], [["张伟", "13912345678"]])
    harvest(ctx, tmp_path, [entry("371502-CLH-0003", "助残志愿者名单", file="d.csv")])
    with ctx.sessions() as s:
        job = s.scalar(select(HarvestJob.id))
    _, email, password = make_user(bureau=True)
    login(client, email, password)
    page = client.get(f"/admin/harvest?job={job}").get_data(as_text=True)
    assert "文件「d.csv」：列「联系电话」含手机号码 1 行" in page and "如何处理" in page and "脱敏" in page
    assert "13912345678" not in page
    english = client.get(f"/admin/harvest?job={job}&lang=en").get_data(as_text=True)
    assert "mobile numbers in 1 row" in english


def test_a_data_row_is_never_taken_for_a_second_header_row(client, ctx, tmp_path):
    (tmp_path / "d.csv").write_text(
        "姓名,联系电话,\n张伟,139-1234-5678,组长\n李*,138****5678,组员\n", encoding="utf-8"
    )
    [result] = harvest(ctx, tmp_path, [entry("371502-MZJ-0005", "名单", file="d.csv")]).entries
    assert result.action == "held" and "手机号码" in result.reason
    table = dataset(ctx, "371502-mzj-0005").distributions[0].tables[0]
    assert [f["name"] for f in table.schema] == ["姓名", "联系电话", "列3"] and table.row_count == 2
    assert leaks(client, ctx, ["1391234", "139-1234-5678"]) == {}


@pytest.mark.parametrize(
    "note", ["联系人：张伟 0635-8211234", "填表人：张伟，家住柳园路128号3单元", "联系电话：139.1234.5678"]
)
def test_notes_and_titles_with_personal_data_are_not_shown(client, ctx, tmp_path, note):
    (tmp_path / "d.csv").write_text(f"停车场名录\n站点,泊位\n东昌湖停车场,120\n{note}\n", encoding="utf-8")
    [result] = harvest(ctx, tmp_path, [entry("371502-ZFJ-0007", "停车场", file="d.csv")]).entries
    assert result.action == "created" and "未公开" in result.reason  # the table is clean; the note stays out
    page = client.get("/dataset/371502-zfj-0007").get_data(as_text=True)
    assert "停车场名录" in page and note not in page


def test_a_sheet_named_after_a_person_holds_the_workbook(client, ctx, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "张伟13912345678"
    wb.active.append(["站点", "泊位"])
    wb.active.append(["东昌湖停车场", 120])
    wb.save(tmp_path / "b.xlsx")
    [result] = harvest(ctx, tmp_path, [entry("371502-ZFJ-0008", "停车场", file="b.xlsx")]).entries
    assert result.action == "held" and "工作表名称" in result.reason
    assert leaks(client, ctx, ["13912345678"]) == {}


@pytest.mark.parametrize(
    "field,value",
    [
        ("信息资源名称", "张伟（身份证{id}）低保审批"),
        ("信息资源摘要", "经办人李娜，手机13812345678"),
        ("关键词", "王强15912345678"),
        ("数据文件", "张伟13912345678.csv"),
    ],
)
def test_personal_data_in_the_catalogs_own_words_holds_the_entry(client, ctx, tmp_path, field, value):
    value = value.format(id=ID18)
    write_csv(tmp_path / ("张伟13912345678.csv" if field == "数据文件" else "d.csv"), ["站点"], [["东昌湖"]])
    row = entry("371502-ZFJ-0010", "停车场", file="d.csv")
    row[field] = value
    [result] = harvest(ctx, tmp_path, [row]).entries
    assert result.action == "held" and "目录中的" in result.reason, result.reason
    assert leaks(client, ctx, [ID18, "13812345678", "15912345678", "13912345678"]) == {}


def test_rescan_applies_new_rules_to_versions_already_published(client, ctx, tmp_path):
    from click.testing import CliRunner
    from sqlalchemy import update

    from portal.cli import main
    from portal.models import DataTable, Distribution

    write_csv(tmp_path / "d.csv", ["姓名", "手机"], [["张伟", "13912345678"]])
    harvest(ctx, tmp_path, [entry("371502-ZFJ-0011", "名单", file="d.csv")])
    with ctx.sessions.begin() as s:  # as if published under an older, weaker scan
        s.execute(update(Distribution).values(scan_status="clean"))
        s.execute(update(DataTable).values(findings=[]))
        from portal.models import Dataset

        s.execute(update(Dataset).values(status="published", hold_reason=None, hold_details=None))
    assert client.get("/dataset/371502-zfj-0011").status_code == 200
    result = CliRunner().invoke(
        main,
        ["--instance", str(ctx.settings.instance_path), "rescan"],
        env={
            "PORTAL_DATABASE_URL": ctx.settings.database_url,
            "PORTAL_SEARCH_BACKEND": ctx.settings.search_backend,
        },
    )
    assert result.exit_code == 0 and "1 changed status" in result.output, result.output
    assert client.get("/dataset/371502-zfj-0011").status_code == 404
    assert leaks(client, ctx, ["13912345678"]) == {}


def test_a_department_name_with_personal_data_never_becomes_a_department(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["站点"], [["东昌湖"]])
    harvest(ctx, tmp_path, [entry("371502-SCJ-0040", "停车场", file="d.csv")])
    [_, held] = harvest(
        ctx,
        tmp_path,
        [
            entry("371502-SCJ-0040", "停车场", file="d.csv"),
            entry("371502-SCJ-0041", "名单", file="d.csv", dept="市场监管局 李娜13812345678"),
        ],
    ).entries
    assert held.action == "failed" and "个人信息" in held.reason
    assert leaks(client, ctx, ["13812345678"]) == {}
    assert "东昌府区市场监督管理局" in client.get("/dataset/371502-scj-0040").get_data(as_text=True)


def test_any_catalog_field_with_personal_data_holds_the_entry(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["站点"], [["东昌湖"]])
    [result] = harvest(
        ctx, tmp_path, [entry("371502-SCJ-0042", "停车场", file="d.csv", 共享类型="张伟13912345678")]
    ).entries
    assert result.action == "held" and "共享类型" in result.reason
    assert leaks(client, ctx, ["13912345678"]) == {}


def test_a_departments_withdrawal_stands_through_later_harvests(client, ctx, tmp_path, make_user):
    from sqlalchemy import select

    from portal.catalog import curation
    from portal.models import Dataset, User

    write_csv(tmp_path / "d.csv", ["站点"], [["东昌湖"]])
    entries = [entry("371502-SCJ-0043", "停车场", file="d.csv")]
    harvest(ctx, tmp_path, entries)
    curator, _, _ = make_user(curator_of="dcf-scjgj")
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0043"))
        curation.withdraw(s, s.get(User, curator), ds, "发现数据有误")
        s.commit()
    [again] = harvest(ctx, tmp_path, entries).entries
    assert again.action == "unchanged" and "撤回" in again.reason
    assert client.get("/dataset/371502-scj-0043").status_code == 404


def test_column_and_sheet_names_hold_conditional_data_too(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["企业名称", "张伟13912345678"], [["聊城市鲁西化工有限公司", "A"]])
    [result] = harvest(ctx, tmp_path, [entry("371502-SCJ-0044", "风险", "有条件开放", file="d.csv")]).entries
    assert result.action == "held"
    assert leaks(client, ctx, ["13912345678"]) == {}


def test_a_one_line_note_sheet_and_times_with_a_zone_do_not_fail_the_entry(client, ctx, tmp_path):

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "数据"
    wb.active.append(["站点", "更新时间"])
    wb.active.append(["东昌湖停车场", "2025-06-01T08:00:00+08:00"])
    wb.create_sheet("说明").append(["本表由市场监管局提供"])
    wb.save(tmp_path / "b.xlsx")
    (tmp_path / "t.csv").write_text(
        "站点,更新时间\n东昌湖停车场,2025-06-01T08:00:00+08:00\n", encoding="utf-8"
    )
    report = harvest(
        ctx,
        tmp_path,
        [
            entry("371502-ZFJ-0030", "停车场", file="b.xlsx"),
            entry("371502-ZFJ-0031", "停车场二", file="t.csv"),
        ],
    )
    assert [e.action for e in report.entries] == ["created", "created"], [e.reason for e in report.entries]
    table = dataset(ctx, "371502-zfj-0031").distributions[0].tables[0]
    assert client.get(f"/dataset/371502-zfj-0031/download/{table.id}.xlsx").status_code == 200
    assert clock.today()  # the workbook's note sheet is no table of its own
    assert len(dataset(ctx, "371502-zfj-0030").distributions[0].tables) == 1


def test_a_form_row_of_particulars_above_the_header_is_not_taken_for_it(client, ctx, tmp_path):
    (tmp_path / "d.csv").write_text(
        "东昌府区2025年低保对象名册,,,\n填报单位：古楼街道,,,填报日期：2025年6月\n户主姓名,家庭住址,联系电话,保障人数\n"
        "张伟,聊城市东昌府区柳园路128号3单元,0635-8211234,3\n",
        encoding="utf-8",
    )
    [result] = harvest(ctx, tmp_path, [entry("371502-MZJ-0010", "低保名册", file="d.csv")]).entries
    assert result.action == "held"
    table = dataset(ctx, "371502-mzj-0010").distributions[0].tables[0]
    assert [f["name"] for f in table.schema] == [
        "户主姓名",
        "家庭住址",
        "联系电话",
        "保障人数",
    ] and table.row_count == 1
    assert leaks(client, ctx, ["柳园路128号", "8211234"]) == {}


@pytest.mark.parametrize(
    "where,value",
    [
        ("note", "注：补贴发放至张伟银行卡" + CARD),
        ("title", "张伟身份证" + ID18[:-1] + ("1" if ID18[-1] != "1" else "2")),
        ("summary", "联系人张伟，电话8211234"),
    ],
)
def test_text_around_the_data_is_read_as_strictly_as_a_person_would(client, ctx, tmp_path, where, value):
    row = entry("371502-ZFJ-0050", "停车场", file="d.csv")
    if where == "summary":
        write_csv(tmp_path / "d.csv", ["站点"], [["东昌湖"]])
        row["信息资源摘要"] = value
    else:
        lines = (
            f"{value}\n站点,泊位\n东昌湖,120\n" if where == "title" else f"站点,泊位\n东昌湖,120\n{value}\n"
        )
        (tmp_path / "d.csv").write_text(lines, encoding="utf-8")
    harvest(ctx, tmp_path, [row])
    assert leaks(client, ctx, [CARD, "8211234", ID18[:-1]]) == {}
