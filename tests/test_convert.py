import pyarrow.parquet as pq
import pytest

from harvest.convert import ConversionError, convert_csv, convert_xlsx, detect_encoding
from tests.catalogs import PHARMACIES, write_csv


@pytest.mark.parametrize(
    "encoding,expected",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_encodings_are_detected_and_written_as_utf8(tmp_path, encoding, expected):
    header, rows = PHARMACIES
    src = write_csv(tmp_path / "in.csv", header, rows, encoding)
    assert detect_encoding(src) == expected
    info = convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    assert info.row_count == 3
    assert [f["name"] for f in info.schema] == header
    text = (tmp_path / "o.csv").read_bytes()
    assert not text.startswith(b"\xef\xbb\xbf")
    assert "聊城市鲁西大药房古楼店" in text.decode("utf-8")
    assert pq.read_table(tmp_path / "o.parquet").column("企业名称")[0].as_py() == "聊城市鲁西大药房古楼店"


def test_gb18030_only_characters_survive(tmp_path):
    # 䶮 (U+4DAE) is outside GBK but in GB18030
    src = write_csv(tmp_path / "in.csv", ["名称"], [["刘䶮"], ["王五"]], "gb18030")
    convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    assert pq.read_table(tmp_path / "o.parquet").column("名称").to_pylist() == ["刘䶮", "王五"]


def test_gbk_bytes_late_in_a_mostly_ascii_file(tmp_path):
    rows = [[str(i), "abc"] for i in range(300_000)] + [["1", "东昌府"]]
    src = write_csv(tmp_path / "in.csv", ["id", "name"], rows, "gbk")
    info = convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    assert info.encoding == "gb18030" and info.row_count == 300_001
    assert pq.read_table(tmp_path / "o.parquet").column("name")[-1].as_py() == "东昌府"


def test_codes_keep_leading_zeros_and_long_numbers_stay_text(tmp_path):
    src = write_csv(
        tmp_path / "in.csv",
        ["区号", "身份证号", "人数"],
        [["0635", "371502198001011234", "12"], ["0531", "371502198001011235", "7"]],
    )
    info = convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    types = {f["name"]: f["type"] for f in info.schema}
    assert types == {"区号": "string", "身份证号": "string", "人数": "int64"}
    assert pq.read_table(tmp_path / "o.parquet").column("区号").to_pylist() == ["0635", "0531"]


def test_a_late_value_that_breaks_the_inferred_type_makes_the_column_text(tmp_path):
    rows = [[str(i), str(i * 2)] for i in range(200_000)] + [["200000", "暂无"]]
    src = write_csv(tmp_path / "in.csv", ["编号", "数量"], rows)
    info = convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    assert {f["name"]: f["type"] for f in info.schema}["数量"] == "string"
    assert info.row_count == 200_001


def test_rows_with_the_wrong_number_of_fields_are_skipped_and_counted(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n1,2\n3\n4,5\n", encoding="utf-8")
    info = convert_csv(tmp_path / "in.csv", tmp_path / "o.parquet", tmp_path / "o.csv")
    assert info.row_count == 2 and info.skipped_rows == 1


def test_large_files_are_written_in_several_row_groups(tmp_path):
    rows = [[str(i), f"名称{i}", "古楼街道"] for i in range(100_000)]
    src = write_csv(tmp_path / "in.csv", ["id", "name", "street"], rows)
    convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv", row_group_bytes=1 << 20)
    meta = pq.ParquetFile(tmp_path / "o.parquet").metadata
    assert meta.num_rows == 100_000 and 1 < meta.num_row_groups < 20


def test_workbook_sheets_become_tables(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "名录"
    ws.append(["名称", "床位数", "成立日期"])
    import datetime as dt

    ws.append(["东昌府区古楼街道社区卫生服务中心", 40, dt.date(2010, 5, 1)])
    wb.create_sheet("说明").append(["字段", "说明"])
    wb["说明"].append(["床位数", "核定床位"])
    wb.create_sheet("空表")
    wb.save(tmp_path / "book.xlsx")
    work = tmp_path / "work"
    work.mkdir()
    tables = convert_xlsx(tmp_path / "book.xlsx", work)
    assert [(t.sheet, t.row_count) for t in tables] == [("名录", 1), ("说明", 1)]
    first = pq.read_table(tables[0].parquet).to_pylist()[0]
    assert first["名称"] == "东昌府区古楼街道社区卫生服务中心" and first["床位数"] == 40


def test_a_corrupt_workbook_has_a_clear_message(tmp_path):
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConversionError, match="损坏"):
        convert_xlsx(tmp_path / "bad.xlsx", tmp_path)


def test_an_unknown_encoding_has_a_clear_message(tmp_path):
    (tmp_path / "x.csv").write_bytes(bytes(range(128, 256)) * 10)
    with pytest.raises(ConversionError, match="编码"):
        detect_encoding(tmp_path / "x.csv")


def test_only_repeating_columns_are_dictionary_encoded(tmp_path):
    rows = [[f"JY{i:014d}", ["古楼街道", "柳园街道", "新区街道"][i % 3]] for i in range(5000)]
    src = write_csv(tmp_path / "in.csv", ["许可证编号", "所属街道"], rows)
    convert_csv(src, tmp_path / "o.parquet", tmp_path / "o.csv")
    group = pq.ParquetFile(tmp_path / "o.parquet").metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
    assert any("DICTIONARY" in e for e in encodings["所属街道"])
    assert not any("DICTIONARY" in e for e in encodings["许可证编号"])


def test_an_xlsx_that_unpacks_into_too_much_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A workbook whose shared strings unpack far beyond their stored size (a "zip bomb") is
    refused from the ZIP's own table, without openpyxl reading it into memory."""
    import zipfile as zf

    from openpyxl import Workbook

    from harvest import convert

    monkeypatch.setattr(convert, "SHARED_STRINGS_LIMIT", 1024 * 1024)  # 1 MiB here: the test stays small
    plain = tmp_path / "plain.xlsx"
    wb = Workbook()
    wb.active.append(["店名", "街道"])
    wb.active.append(["甲超市", "柳园街道"])
    wb.save(plain)
    bomb = tmp_path / "bomb.xlsx"
    with zf.ZipFile(plain) as source, zf.ZipFile(bomb, "w", compression=zf.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename != "xl/sharedStrings.xml":
                out.writestr(item, source.read(item))
        out.writestr("xl/sharedStrings.xml", '<sst xmlns="x">' + "<si><t>a</t></si>" * 200_000 + "</sst>")
    assert bomb.stat().st_size < 100_000
    (tmp_path / "work").mkdir()
    with pytest.raises(convert.ConversionError, match="解压后过大"):
        convert.convert_xlsx(bomb, tmp_path / "work")
    assert convert.convert_xlsx(plain, tmp_path / "work")  # an ordinary workbook is read as before
