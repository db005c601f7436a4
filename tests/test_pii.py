from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from stdnum.cn import ric

from harvest.pii import scan_parquet


def _parquet(tmp_path: Path, **columns) -> Path:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def _valid_id(body="37150219800101123"):
    return body + ric.calc_check_digit(body + "0")


def test_valid_id_numbers_are_found_and_the_column_named(tmp_path):
    hits = scan_parquet(_parquet(tmp_path, 姓名=["张三", "李四"], 证件号码=[_valid_id(), "无"]))
    assert [(h.column, h.kind, h.count) for h in hits] == [("证件号码", "id_number", 1)]
    assert "证件号码" in hits[0].describe()


def test_an_id_with_a_wrong_check_digit_is_not_personal(tmp_path):
    good = _valid_id()
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert scan_parquet(_parquet(tmp_path, 编号=[wrong])) == []


def test_id_inside_text_and_lower_case_x(tmp_path):
    body = next(b for b in (f"37150219900101{i:03d}" for i in range(200)) if ric.calc_check_digit(b + "0") == "X")
    hits = scan_parquet(_parquet(tmp_path, 备注=[f"申请人身份证{body}x，已核验"]))
    assert [h.kind for h in hits] == ["id_number"]


def test_mobile_numbers_including_integer_columns(tmp_path):
    hits = scan_parquet(_parquet(tmp_path, 联系电话=pa.array([13812345678, 15963551234], pa.int64()),
                                 座机=["0635-8241234", "0635-2123456"]))
    assert [(h.column, h.kind, h.count) for h in hits] == [("联系电话", "mobile", 2)]


def test_long_codes_are_not_mistaken_for_phones(tmp_path):
    # 14-digit licence numbers and 18-character credit codes contain 11-digit runs
    assert scan_parquet(_parquet(tmp_path, 许可证=["JY13715020012345"], 信用代码=["91371502MA3C12345P"])) == []
