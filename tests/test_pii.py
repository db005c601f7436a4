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
    body = next(
        b for b in (f"37150219900101{i:03d}" for i in range(200)) if ric.calc_check_digit(b + "0") == "X"
    )
    hits = scan_parquet(_parquet(tmp_path, 备注=[f"申请人身份证{body}x，已核验"]))
    assert [h.kind for h in hits] == ["id_number"]


def test_mobile_numbers_including_integer_columns(tmp_path):
    hits = scan_parquet(
        _parquet(
            tmp_path,
            联系电话=pa.array([13812345678, 15963551234], pa.int64()),
            座机=["0635-8241234", "0635-2123456"],
        )
    )
    assert [(h.column, h.kind, h.count) for h in hits] == [("联系电话", "mobile", 2)]


def test_long_codes_are_not_mistaken_for_phones(tmp_path):
    # 14-digit licence numbers and 18-character credit codes contain 11-digit runs
    assert (
        scan_parquet(_parquet(tmp_path, 许可证=["JY13715020012345"], 信用代码=["91371502MA3C12345P"])) == []
    )


def test_verdicts_are_per_column_with_masked_examples():
    from harvest.pii import scan_table

    findings = scan_table(
        pa.table(
            {
                "姓名": ["张伟", "李娜"],
                "手机": ["13912345678", "139-1234-5679"],
                "所属街道": ["古楼街道", "柳园街道"],
            }
        )
    )
    [mobile] = findings
    assert (mobile.column, mobile.kind, mobile.count) == ("手机", "mobile", 2)
    assert mobile.examples[0] == "139****5678" and "13912345678" not in str(mobile.as_dict())


def test_codes_and_institutions_are_not_personal():
    from harvest.pii import scan_table

    assert (
        scan_table(
            pa.table(
                {
                    "机构名称": ["东昌府区实验小学"],
                    "联系电话": ["0635-8211234"],
                    "订单号": ["4000123412341234567"],
                    "邮箱": ["xx@dcf.gov.cn"],
                    "许可证编号": ["鲁DA6350001"],
                    "注册号": ["371500228012345"],
                }
            )
        )
        == []
    )


def test_fifteen_digit_codes_count_as_ids_only_when_most_pass_or_the_header_says_so():
    from harvest.pii import scan_table

    codes = [f"3715002{i:08d}" for i in range(300)]  # old registration numbers: a few pass the date check
    assert scan_table(pa.table({"注册号": codes})) == []
    assert [f.kind for f in scan_table(pa.table({"身份证号": ["370102800101123"]}))] == ["id_number_15"]


def test_masking_leaves_no_personal_value():
    from harvest.pii import mask_batch, scan_table

    batch = pa.record_batch(
        {"姓名": ["张伟"], "联系电话": ["13912345678"], "家庭住址": ["聊城市东昌府区柳园路12号"]}
    )
    masked = mask_batch(
        batch,
        {
            "联系电话": {"method": "partial", "kind": "mobile"},
            "家庭住址": {"method": "partial", "kind": "address"},
        },
    )
    assert masked.to_pylist() == [
        {"姓名": "张伟", "联系电话": "139****5678", "家庭住址": "聊城市东昌府区柳园路***"}
    ]
    assert scan_table(masked) == []
    dropped = mask_batch(batch, {"联系电话": {"method": "drop", "kind": "mobile"}})
    assert dropped.schema.names == ["姓名", "家庭住址"]
