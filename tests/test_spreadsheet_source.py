import pytest

from harvest.sources import SourceError, SpreadsheetSource
from tests.catalogs import entry, write_catalog, write_csv


@pytest.mark.parametrize(
    "name,encoding",
    [("c.csv", "utf-8"), ("c.csv", "utf-8-sig"), ("c.csv", "gbk"), ("c.csv", "gb18030"), ("c.xlsx", None)],
)
def test_catalog_in_every_accepted_format(tmp_path, name, encoding):
    path = write_catalog(
        tmp_path / name, [entry("371502-SCJ-0001", "药品零售企业名录", file="d.csv")], encoding or "utf-8"
    )
    [e] = SpreadsheetSource(path).list_entries()
    assert (e.source_ref, e.name, e.title, e.department_name) == (
        "371502-SCJ-0001",
        "371502-scj-0001",
        "药品零售企业名录",
        "东昌府区市场监督管理局",
    )
    assert e.files[0].path == "d.csv"  # resolved inside the catalog's folder when fetched
    assert e.problems == []


def test_english_headers_are_accepted(tmp_path):
    path = write_csv(
        tmp_path / "en.csv",
        ["resource_code", "title", "provider", "open_class", "legal_basis", "data_file"],
        [["371502-X-1", "Bus stops", "Transport bureau", "unconditional", "", "https://example.org/a.csv"]],
    )
    [e] = SpreadsheetSource(path).list_entries()
    assert (e.title, e.department_code, e.open_class) == ("Bus stops", "Transport bureau", "unconditional")
    assert e.files[0].url == "https://example.org/a.csv" and e.files[0].media_format == "csv"


def test_broken_rows_carry_their_problem_and_the_rest_is_read(tmp_path):
    rows = [
        entry("371502-SCJ-0001", "好的条目"),
        entry("", "没有代码"),
        entry("371502-SCJ-0003", ""),
        entry("371502-SCJ-0001", "重复的代码"),
        entry("bad code!", "格式错误"),
    ]
    entries = SpreadsheetSource(write_catalog(tmp_path / "c.csv", rows)).list_entries()
    assert [bool(e.problems) for e in entries] == [False, True, True, True, True]
    assert entries[1].source_ref.startswith("第") and "代码" in entries[1].problems[0]
    assert "名称" in entries[2].problems[0]
    assert "重复" in entries[3].problems[0]


def test_dates_in_the_forms_departments_write(tmp_path):
    rows = [
        entry(f"371502-SCJ-000{i}", "x", 发布日期=d)
        for i, d in enumerate(["2024-03-01", "2024/3/1", "2024年3月1日", "2024.03.01"])
    ]
    entries = SpreadsheetSource(write_catalog(tmp_path / "c.csv", rows)).list_entries()
    assert {e.published_date().isoformat() for e in entries} == {"2024-03-01"}


@pytest.mark.parametrize(
    "content,message",
    [(None, "不存在"), (b"PK\x03\x04broken", "损坏"), ("名称,其他\n1,2\n".encode(), "表头")],
)
def test_an_unreadable_catalog_is_an_error_of_the_whole_source(tmp_path, content, message):
    path = tmp_path / ("c.xlsx" if content and content.startswith(b"PK") else "c.csv")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        SpreadsheetSource(path).list_entries()
