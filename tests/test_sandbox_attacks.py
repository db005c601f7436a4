"""The data sandbox's attack suite (issue 21): every way out of an aggregate-only, checked,
locked query that we know of is tried on a real DuckDB file built from a real Parquet file
by build_table, and must be refused or suppressed with a message that says why."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric

from licenses.disclosure import (
    Plan,
    Prior,
    QueryRefused,
    build_table,
    check_query,
    read_table_info,
    run_query,
)
from portal.catalog.rows import Scope

K = 10
STREETS = ["古楼街道", "柳园街道", "新区街道", "湖西街道", "道口铺街道"]
RARE = "侯营镇"  # three records: every cell of it is small


def _id_number(i: int) -> str:
    body = f"3715021980{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _people(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    streets = [STREETS[i % len(STREETS)] for i in range(n - 3)] + [RARE] * 3
    amounts = np.round(rng.uniform(100, 1000, n), 2)
    amounts[-3:] = [800.0, 200.0, 300.0]  # one of the rare street's records is above 500
    amounts[0] = 5_000_000.0  # one record dominates 古楼街道's sum
    grades = np.array([1 + i % 5 for i in range(n)], dtype=np.int64)
    grades[-3:] = 2**62  # the rare street's grade overflows BIGINT when multiplied by 4
    surnames, given = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋"
    return pd.DataFrame(
        {
            "记录号": np.arange(n),
            "身份证号": [_id_number(i) for i in range(n)],
            "姓名": [surnames[i % 10] + given[(i // 10) % 10] for i in range(n)],
            "街道": streets,
            "金额": amounts,
            "登记日期": [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, n)],
            "档次": grades,
        }
    )


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return _people(503)


@pytest.fixture(scope="module")
def info(people, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sandbox")
    pq.write_table(pa.Table.from_pandas(people, preserve_index=False), folder / "people.parquet")
    built = build_table(folder / "people.parquet", Scope(), folder / "sandbox.duckdb")
    return read_table_info(built.path)


def _refused(sql: str, info, *words: str) -> str:
    with pytest.raises(QueryRefused) as caught:
        run_query(info, check_query(sql, info), k=K)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


def _run(sql: str, info, **kwargs):
    return run_query(info, check_query(sql, info), k=K, **kwargs)


# ----------------------------------------------------------------------------- the table


def test_the_table_holds_the_granted_part_and_knows_its_identifiers(tmp_path, people):
    pq.write_table(pa.Table.from_pandas(people, preserve_index=False), tmp_path / "p.parquet")
    scope = Scope(fields=["身份证号", "街道", "金额"], row_filter={"街道": ["古楼街道", RARE]})
    info = build_table(tmp_path / "p.parquet", scope, tmp_path / "s.duckdb")
    assert [c.name for c in info.columns] == ["身份证号", "街道", "金额"]
    assert info.rows == int(people.街道.isin(["古楼街道", RARE]).sum())
    assert read_table_info(info.path) == info
    assert not list(tmp_path.glob("*.part*")) and not list(tmp_path.glob("*.wal"))
    kinds = {c.name: (c.type, c.identifier, c.reason) for c in info.columns}
    assert kinds == {
        "身份证号": ("text", True, "personal"),
        "街道": ("text", False, ""),
        "金额": ("number", False, ""),
    }
    _refused("SELECT count(*) FROM data WHERE 姓名 = '王伟'", info, "没有列「姓名」")


def test_identifiers_by_header_value_and_uniqueness(info):
    kinds = {c.name: c.reason for c in info.columns if c.identifier}
    assert kinds == {"身份证号": "personal", "姓名": "personal", "记录号": "unique"}
    assert {c.name: c.type for c in info.columns}["登记日期"] == "date"


# ----------------------------------------------------------------------------- other tables, files, URLs, settings


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM duckdb_tables()",
        "SELECT count(*) FROM information_schema.tables",
        "SELECT count(*) FROM sqlite_master",
        "SELECT count(*) FROM meta",
        "SELECT count(*) FROM main.data",
        "SELECT count(*) FROM read_csv('/etc/passwd')",
        "SELECT count(*) FROM read_parquet('/work/x.parquet')",
        "SELECT count(*) FROM glob('/*')",
        "SELECT count(*) FROM read_csv('http://example.com/x.csv')",
        "SELECT count(*) FROM 'http://example.com/x.parquet'",
        "SELECT count(*) FROM '/etc/passwd'",
    ],
)
def test_other_tables_files_and_urls_are_refused(info, sql):
    _refused(sql, info, "只能查询表 data")


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("PRAGMA database_list", "PRAGMA"),
        ("SET memory_limit = '8GB'", "SET"),
        ("SET enable_external_access = true", "SET"),
        ("COPY data TO '/tmp/out.csv'", "COPY"),
        ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("DROP TABLE data", "DROP"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ],
)
def test_statements_other_than_select_are_refused(info, sql, word):
    message = _refused(sql, info, "沙箱只运行 SELECT 查询", word)
    assert "不能读写文件、加载扩展或更改设置" in message


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT current_setting('memory_limit'), count(*) FROM data", "current_setting"),
        ("SELECT count(*) FROM data WHERE getenv('HOME') = 'x'", "getenv"),
        ("SELECT count(*) FROM data WHERE 街道 IN (SELECT name FROM duckdb_settings())", "子查询"),
        ("SELECT count(*) FROM data WHERE read_text('/etc/passwd') = ''", "read_text"),
        ("SELECT count(*) FROM data GROUP BY version()", "version"),
    ],
)
def test_functions_off_the_allowlist_are_refused(info, sql, name):
    _refused(sql, info, name)


def test_the_connection_itself_refuses_files_and_settings(info):
    """Behind the allowlist, DuckDB is locked too: a query that got past the check could not
    read a file or change a limit."""
    from licenses.sandbox_engine import locked

    with locked(info.path, timeout_s=5, memory_limit="256MB") as con:
        for sql in ("SELECT * FROM read_csv('/etc/passwd')", "SET memory_limit = '8GB'", "LOAD httpfs"):
            with pytest.raises(Exception, match="disabled|locked"):
                con.execute(sql)


# ----------------------------------------------------------------------------- statement shapes


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT count(*) FROM data; DROP TABLE data", ("只能写一条 SELECT 查询", "2 条语句")),
        ("SELECT count(*) FROM data; -- comment\nSELECT 1", ("只能写一条",)),
        ("SELECT * FROM data", ("SELECT *",)),
        ("SELECT 街道, 金额 FROM data", ("既不是分组列", "沙箱不输出单条记录")),
        ("SELECT 街道 FROM data", ("既不是分组列",)),
        ("SELECT count(*) FROM data WHERE 金额 > (SELECT avg(金额) FROM data)", ("子查询",)),
        ("SELECT n FROM (SELECT count(*) n FROM data)", ("只能查询表 data",)),
        ("WITH t AS (SELECT * FROM data) SELECT count(*) FROM t", ("WITH",)),
        ("SELECT 街道, count(*) FROM data GROUP BY 街道 UNION SELECT 姓名, 1 FROM data", ("UNION",)),
        ("SELECT count(*) FROM data a JOIN data b ON a.记录号 = b.记录号", ("JOIN",)),
        ("SELECT 街道, count(*) OVER () FROM data", ("窗口函数",)),
        ("SELECT 街道, count(*) FROM data GROUP BY ROLLUP (街道)", ("ROLLUP",)),
        ("SELECT 街道, count(*) FROM data GROUP BY ALL", ("GROUP BY ALL",)),
        ("SELECT DISTINCT 街道 FROM data", ("DISTINCT",)),
        ("SELECT count(*) FROM data USING SAMPLE 5", ("抽样",)),
        ("SELECT 金额 FROM data QUALIFY row_number() OVER () = 1", ("QUALIFY",)),
        ("SELEC count(*) FROM data", ("SQL 无法解析",)),
    ],
)
def test_shapes_other_than_one_aggregate_select_are_refused(info, sql, words):
    _refused(sql, info, *words)


# ----------------------------------------------------------------------------- record values


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT min(身份证号) FROM data",
        "SELECT max(身份证号) FROM data",
        "SELECT 街道, max(金额) FROM data GROUP BY 街道",
        "SELECT 街道, min(登记日期) FROM data GROUP BY 街道",
        "SELECT 街道, string_agg(姓名, ',') FROM data GROUP BY 街道",
        "SELECT 街道, list(姓名) FROM data GROUP BY 街道",
        "SELECT 街道, array_agg(身份证号) FROM data GROUP BY 街道",
        "SELECT 街道, first(姓名) FROM data GROUP BY 街道",
        "SELECT 街道, any_value(姓名) FROM data GROUP BY 街道",
        "SELECT 街道, arg_max(姓名, 金额) FROM data GROUP BY 街道",
        "SELECT 街道, median(金额) FROM data GROUP BY 街道",
        "SELECT 街道, quantile_cont(金额, 0.99) FROM data GROUP BY 街道",
    ],
)
def test_aggregates_that_return_a_record_value_are_refused(info, sql):
    _refused(sql, info, "单条记录的值", "COUNT(*)")


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("SELECT 身份证号, count(*) FROM data GROUP BY 身份证号", "分组"),
        ("SELECT 记录号, count(*) FROM data GROUP BY 记录号", "分组"),
        ("SELECT left(身份证号, 14), count(*) FROM data GROUP BY 1", "分组"),
        ("SELECT count(*) FROM data WHERE 姓名 = '王伟'", "筛选"),
        ("SELECT count(*) FROM data WHERE 身份证号 LIKE '371502198001%'", "筛选"),
        ("SELECT 街道, count(*) FROM data GROUP BY 街道, 姓名", "分组"),
        ("SELECT 街道, sum(身份证号) FROM data GROUP BY 街道", "数值列"),
        ("SELECT 街道, count(*) FROM data GROUP BY 街道 ORDER BY 姓名", "ORDER BY"),
    ],
)
def test_identifiers_may_only_be_counted(info, sql, where):
    _refused(sql, info, where)


def test_identifiers_can_be_counted(info, people):
    out = _run("SELECT 街道, count(DISTINCT 身份证号) AS 人数 FROM data GROUP BY 街道", info)
    expected = people.groupby("街道").身份证号.nunique().to_dict()
    assert {row[0]: row[1] for row in out.rows} == expected  # raw, for the department
    shown = {row[0]: row[1] for row in out.safe_rows}
    assert set(shown) == set(STREETS)  # the rare street's three people are not a row at all
    assert all(abs(shown[s] - expected[s]) <= 3 for s in STREETS)  # perturbed by at most 3


def test_conditions_inside_an_aggregate_are_refused(info):
    """SUM(CASE WHEN …) over the same rows as SUM(…) would differ by one record's value
    without the rows differing: conditions go to WHERE, where differencing sees them."""
    _refused(
        "SELECT 街道, sum(CASE WHEN 登记日期 <> DATE '2020-03-04' THEN 金额 ELSE 0 END) FROM data GROUP BY 街道",
        info,
        "参数只能是一列",
        "WHERE",
    )


# ----------------------------------------------------------------------------- suppression


def test_grouped_count_is_right_and_small_groups_are_not_listed(info, people):
    out = _run("SELECT 街道, count(*) AS 记录数 FROM data GROUP BY 街道 ORDER BY 街道", info)
    expected = people.groupby("街道").size()
    assert out.columns == ["街道", "记录数"]
    # The rare street is not a row of the holder's output at all, and no suppressed cell says
    # it was there; its raw row is kept last for the department (Outcome.dropped).
    assert [row[0] for row in out.safe_rows] == sorted(STREETS) and out.suppressed == []
    assert out.dropped == 1 and out.rows[-1] == [RARE, 3] and len(out.rows) == len(out.safe_rows) + 1
    assert {row[0]: row[1] for row in out.rows} == expected.to_dict()
    # Every released count is the true one moved by the perturbation table (|d| ≤ 3).
    for safe, raw in zip(out.safe_rows, out.rows, strict=False):
        assert safe[0] == raw[0] and abs(safe[1] - raw[1]) <= 3 and safe[1] >= 1
    assert json.dumps([RARE], ensure_ascii=False) not in out.cells
    assert out.cells[json.dumps(["古楼街道"], ensure_ascii=False)] == int(expected["古楼街道"])


def test_a_filter_down_to_a_few_records_shows_nothing(info):
    out = _run("SELECT count(*) FROM data WHERE 金额 BETWEEN 799.99 AND 800.01", info)
    assert out.safe_rows == [] and out.suppressed == [] and out.rows == [[1]] and out.dropped == 1
    out = _run("SELECT count(*), sum(金额) FROM data WHERE 金额 < 0", info)  # zero records: small too
    assert out.safe_rows == [] and out.rows == [[0, None]]


def test_limit_1_with_ordering_tricks_releases_no_small_cell(info):
    out = _run("SELECT 街道, count(*) AS n FROM data GROUP BY 街道 ORDER BY n ASC LIMIT 1", info)
    # The smallest group is not a row: LIMIT 1 shows a safe one.
    assert out.safe_rows[0][0] in STREETS and out.safe_rows[0][1] >= K
    out = _run("SELECT 街道, count(*) FROM data GROUP BY 街道 ORDER BY 2 DESC LIMIT 1 OFFSET 5", info)
    assert out.safe_rows == [] and out.suppressed == []  # five streets shown; no sixth row to find
    _refused("SELECT 街道, count(*) FROM data GROUP BY 街道 ORDER BY max(金额) LIMIT 1", info, "ORDER BY")


def test_a_sum_dominated_by_one_record_is_withheld(info):
    out = _run("SELECT 街道, count(*), sum(金额), avg(金额) FROM data GROUP BY 街道 ORDER BY 街道", info)
    shown = dict(zip([r[0] for r in out.safe_rows], zip(out.rows, out.safe_rows, strict=False), strict=True))
    row, safe = shown["古楼街道"]
    assert row[2] > 5_000_000 and safe[2] is None and safe[3] is None
    index = out.safe_rows.index(safe)
    assert (index, 2, "dominance") in out.suppressed and (index, 3, "dominance") in out.suppressed
    # One withheld sum in the column: the smallest other one is withheld too, or the total
    # without grouping minus the released sums would give the dominated one.
    assert sorted(s[2] for s in out.suppressed if s[1] == 2) == ["dominance", "secondary"]


def test_the_same_query_twice_is_released_twice(info):
    sql = "SELECT 街道, count(*), sum(金额) FROM data GROUP BY 街道"
    first = _run(sql, info)
    second = _run(sql, info, priors=[Prior(check_query(sql, info), first.cells)])
    # The same records draw the same perturbation: repeating a query does not average it away.
    assert second.safe_rows == first.safe_rows and second.cells == first.cells
    assert second.suppressed == first.suppressed


def test_plans_survive_json(info):
    plan = check_query(
        "SELECT year(登记日期) AS 年, 街道, count(*) n, avg(金额) FROM data "
        "WHERE 金额 >= 100 GROUP BY 1, 2 ORDER BY n DESC LIMIT 5",
        info,
    )
    again = Plan.from_json(json.loads(json.dumps(plan.to_json(), ensure_ascii=False)))
    assert again == plan
    out = run_query(info, again, k=K)
    assert out.columns == ["年", "街道", "n", "AVG(金额)"] and len(out.safe_rows) <= 5
    assert all(v is None or isinstance(v, int | float | str) for row in out.safe_rows for v in row)


def test_differencing_two_overlapping_queries(info):
    """All records above 500, then all but 侯营镇's: together they would give the one record
    of 侯营镇 above 500."""
    sql = "SELECT count(*), sum(金额) FROM data WHERE 金额 > 500 AND 金额 < 10000"
    first = _run(sql, info)
    assert first.suppressed == [] and len(first.cells) == 1
    prior = Prior(check_query(sql, info), first.cells)
    second = _run(f"{sql} AND 街道 <> '{RARE}'", info, priors=[prior])
    assert second.rows[0][0] == first.rows[0][0] - 1
    assert second.safe_rows == [[None, None]]
    assert [s[2] for s in second.suppressed] == ["differencing", "differencing"]
    assert second.cells == {}


def test_differencing_by_a_regrouping(info):
    """Grouping by street, then by a CASE that moves one record to another group."""
    plan = check_query("SELECT 街道, count(*) FROM data GROUP BY 街道", info)
    first = run_query(info, plan, k=K)
    moved = "SELECT CASE WHEN 金额 = 5000000 THEN '其他' ELSE 街道 END AS 组, count(*) FROM data GROUP BY 1"
    second = _run(moved, info, priors=[Prior(Plan.from_json(plan.to_json()), first.cells)])
    withheld = {safe[0] for safe in second.safe_rows if safe[1] is None}
    assert "古楼街道" in withheld  # and the smallest other street, by the secondary rule
    row = [safe[0] for safe in second.safe_rows].index("古楼街道")
    assert (row, 1, "differencing") in second.suppressed
    assert "其他" not in {safe[0] for safe in second.safe_rows}  # one record: not a row at all


# ----------------------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """1.5 million records: enough for a grouped COUNT(DISTINCT) to need time and memory."""
    folder = tmp_path_factory.mktemp("large")
    n = 1_500_000
    rng = np.random.default_rng(5)
    table = pa.table(
        {
            "编码": pa.array([f"C{x:09d}" for x in rng.permutation(n)]),
            "金额": np.round(rng.uniform(0, 100_000, n), 2),
            "类别": pa.array(np.array(["甲", "乙", "丙"])[rng.integers(0, 3, n)]),
        }
    )
    pq.write_table(table, folder / "large.parquet")
    return build_table(folder / "large.parquet", Scope(), folder / "large.duckdb")


def test_a_long_query_is_stopped_at_the_time_limit(large):
    plan = check_query("SELECT 金额, count(DISTINCT 编码) FROM data GROUP BY 金额", large)
    with pytest.raises(QueryRefused) as caught:
        run_query(large, plan, k=K, timeout_s=0.05, memory_limit="2GB")
    assert "超过 0.05 秒" in str(caught.value) and "缩小筛选范围" in str(caught.value)


def test_a_memory_hungry_query_is_stopped_at_the_memory_limit(large):
    plan = check_query("SELECT 金额, count(DISTINCT 编码) FROM data GROUP BY 金额", large)
    with pytest.raises(QueryRefused) as caught:
        run_query(large, plan, k=K, memory_limit="8MB", timeout_s=60)
    assert "内存超过 8MB" in str(caught.value)


def test_too_many_groups_are_refused(large):
    plan = check_query("SELECT round(金额, 0), count(*) FROM data GROUP BY 1", large)
    with pytest.raises(QueryRefused) as caught:
        run_query(large, plan, k=K, max_rows=1000)
    assert "超过 1000 组" in str(caught.value) and "更粗的分组" in str(caught.value)
    out = run_query(large, check_query("SELECT 类别, count(*) FROM data GROUP BY 类别", large), k=K)
    assert sum(row[1] for row in out.rows) == 1_500_000
    assert abs(sum(row[1] for row in out.safe_rows) - 1_500_000) <= 9


# ----------------------------------------------------------------------------- attack review (errors)

NOT_RUN = "查询无法执行，请检查语句"


@pytest.mark.parametrize(
    "where",
    [
        # a conversion error would quote the value (Conversion Error: … '2020-03-04' …)
        f"CASE WHEN 街道 = '{RARE}' THEN CAST(CAST(登记日期 AS VARCHAR) AS INT) ELSE 0 END = 1",
        "CAST(街道 AS INT) = 1",
        "街道::INT = 1",
        "街道 = 1",  # implicit casts: DuckDB converts the text column, record by record
        "街道 IN (1, 2)",
        "街道",
        "NOT 街道",
        f"街道 = '{RARE}' AND 档次 * 4 > 0",  # BIGINT overflow, only for the rare street's records
        "档次 // 0 = 1",
        "档次 % 0 = 1",
        "left(街道, 档次) = 'x'",  # substring length out of range
        "substr(街道, 档次, 2) = 'x'",
        "round(金额, CAST(档次 AS INT)) = 1",  # a precision out of range
        # error-or-not as a yes/no oracle on a record's value
        f"街道 = '{RARE}' AND CASE WHEN 金额 > 500 THEN CAST('x' AS INT) ELSE 1 END = 1",
    ],
)
def test_no_value_dependent_error_can_happen(info, where):
    """Every cast runs as TRY_CAST and every expression under TRY: what cannot be computed is
    NULL, so no query fails because of a record's value, and nothing of DuckDB's text (which
    would quote the value) reaches the holder."""
    out = _run(f"SELECT 街道, count(*) FROM data WHERE {where} GROUP BY 街道", info)
    assert all(row[0] in STREETS for row in out.safe_rows)
    assert RARE not in json.dumps(out.safe_rows, ensure_ascii=False)


def test_a_query_that_still_fails_says_one_thing_and_keeps_duckdbs_text_for_the_department(info):
    with pytest.raises(QueryRefused) as caught:
        _run("SELECT count(*) FROM data WHERE 街道 > 1", info)  # a type error, found by DuckDB
    assert str(caught.value).startswith(NOT_RUN) and "类型" in str(caught.value)
    assert "Binder" not in str(caught.value) and "VARCHAR" not in str(caught.value)
    assert "VARCHAR" in (caught.value.detail or "")  # for the department and the bureau


def test_a_mistyped_date_or_unit_is_said_not_answered_with_nothing(info):
    _refused(
        "SELECT count(*) FROM data WHERE 登记日期 = DATE '2020-13-45'",
        info,
        "日期或时间写法不正确",
        "2020-13-45",
    )
    _refused(
        "SELECT count(*) FROM data WHERE date_trunc(街道, 登记日期) = DATE '2020-01-01'",
        info,
        "date_trunc 的单位只能是",
        "「街道」",
    )


def test_having_is_refused(info):
    """HAVING on a sum binary-searches a small or dominated cell's value."""
    for sql in (
        "SELECT 街道, sum(金额) FROM data GROUP BY 街道 HAVING sum(金额) > 2500000",
        f"SELECT count(*) n FROM data WHERE 街道 = '{RARE}' HAVING CAST(sum(金额) * 10000000 AS INT) = 1",
    ):
        _refused(sql, info, "不允许 HAVING", "WHERE", "导出后")


# ----------------------------------------------------------------------------- attack review (differencing)


def _street_counts(info, where: str) -> dict[str, tuple[int, float]]:
    out = _run(f"SELECT 街道, count(*), sum(金额) FROM data WHERE {where} GROUP BY 街道", info)
    return {row[0]: (row[1], row[2]) for row in out.safe_rows}


def test_the_total_minus_the_released_parts_does_not_give_the_small_group(info, people):
    """The total, then every street but the rare one: all released, and before the
    perturbation total − Σ parts was the rare street's count and sum, under any WHERE."""
    exact = []
    for day in range(420, 900, 30):
        where = f"登记日期 < DATE '2020-01-01' + {day} AND 金额 < 10000"
        [[total, total_sum]] = _run(f"SELECT count(*), sum(金额) FROM data WHERE {where}", info).safe_rows
        parts = _street_counts(info, f"{where} AND 街道 <> '{RARE}'")
        assert set(parts) == set(STREETS)  # every part released
        rare = people[
            (people.街道 == RARE) & (people.登记日期 < dt.date(2020, 1, 1) + dt.timedelta(days=day))
        ]
        derived = total - sum(n for n, _s in parts.values())
        assert abs(derived - len(rare)) <= 3 * (1 + len(parts))  # only the noise between
        exact.append(derived == len(rare) and round(total_sum - sum(s for _n, s in parts.values()), 2) == round(rare.金额.sum(), 2))  # fmt: skip
    assert not all(exact) and sum(exact) <= len(exact) // 2


def test_a_partition_with_one_record_left_out_does_not_give_its_value(info):
    """The total of a set of records, then the same set minus one record split in two groups
    (neither differs from the total by fewer than k): before, total − a − b was that record's
    amount. Each variant is another set of records, so another draw of the noise."""
    exact = []
    for day in range(0, 300, 30):
        where = f"金额 < 10000 AND (街道 = '{RARE}' OR 登记日期 >= DATE '2020-01-01' + {day})"
        [[_n, total]] = _run(f"SELECT count(*), sum(金额) FROM data WHERE {where}", info).safe_rows
        for left_out in (800.0, 200.0, 300.0):  # the rare street's records, one at a time
            split = _run(
                f"SELECT CASE WHEN 街道 IN ('古楼街道', '{RARE}') THEN 'a' ELSE 'b' END AS 组, sum(金额) "
                f"FROM data WHERE {where} AND 金额 <> {left_out} GROUP BY 1",
                info,
            ).safe_rows
            assert len(split) == 2 and all(v is not None for _g, v in split)
            exact.append(round(total - sum(v for _g, v in split), 2) == left_out)
    # A variant is exact when the three draws cancel (about one in five): never most of them.
    assert sum(exact) <= 2 * len(exact) // 3


def test_a_triangle_of_overlapping_lists_does_not_give_the_small_group(info, people):
    """(A + C − B) / 2 with A = rare ∪ X, B = X ∪ Y, C = rare ∪ Y: no two of them differ by
    fewer than k records, so only the perturbation stands between them and the rare street."""
    rare_sum = round(people[people.街道 == RARE].金额.sum(), 2)

    def cell(streets: tuple[str, ...]) -> tuple[int, float | None]:
        names = ", ".join(f"'{s}'" for s in streets)
        [[n, total]] = _run(f"SELECT count(*), sum(金额) FROM data WHERE 街道 IN ({names})", info).safe_rows
        return n, total

    exact = []
    for i, x in enumerate(STREETS):
        for y in STREETS[i + 1 :]:
            (na, sa), (nb, sb), (nc, sc) = cell((RARE, x)), cell((x, y)), cell((RARE, y))
            count = (na + nc - nb) / 2
            assert abs(count - 3) <= 4.5  # the count is the rare street's, give or take the noise
            total = None if None in (sa, sb, sc) else round((sa + sc - sb) / 2, 2)  # type: ignore[operator]
            exact.append(count == 3 and total == rare_sum)
    assert sum(exact) <= len(exact) // 2


def test_the_same_records_draw_the_same_perturbation(info):
    """Another WHERE that selects the same records gets the same released values, so asking
    many ways and averaging does not remove the noise; the record key cannot be named."""
    plain = _run("SELECT 街道, count(*), sum(金额), avg(金额) FROM data GROUP BY 街道", info).safe_rows
    same = _run(
        "SELECT 街道, count(*), sum(金额), avg(金额) FROM data WHERE 金额 > -1 GROUP BY 街道", info
    ).safe_rows
    assert same == plain
    for sql in (
        'SELECT count(*) FROM data WHERE "__sdc_record_key" > 5',
        "SELECT __sdc_record_key, count(*) FROM data GROUP BY 1",
        "SELECT 街道, sum(__sdc_record_key) FROM data GROUP BY 街道",
    ):
        _refused(sql, info, "没有列「__sdc_record_key」")
    assert "__sdc_record_key" not in {c.name for c in info.columns}


# ----------------------------------------------------------------------------- attack review (small cells)


def test_a_distinct_count_below_k_is_withheld(info):
    """Two distinct streets beside 121 records said that one rare record exists."""
    out = _run(
        "SELECT count(DISTINCT 街道), count(*) FROM data "
        f"WHERE 街道 = '古楼街道' OR (街道 = '{RARE}' AND 金额 = 800)",
        info,
    )
    assert out.rows[0][0] == 2 and out.safe_rows[0][0] is None and (0, 0, "small") in out.suppressed


def test_groups_below_k_are_not_listed_so_their_number_says_nothing(info):
    """Three withheld rows were three dates; one withheld row or none answered whether a
    record exists."""
    dates = _run(f"SELECT 登记日期, count(*) FROM data WHERE 街道 = '{RARE}' GROUP BY 登记日期", info)
    assert dates.safe_rows == [] and dates.suppressed == [] and dates.dropped == 3
    exists = _run(f"SELECT 档次, count(*) FROM data WHERE 街道 = '{RARE}' AND 金额 = 800 GROUP BY 1", info)
    absent = _run(f"SELECT 档次, count(*) FROM data WHERE 街道 = '{RARE}' AND 金额 = 801 GROUP BY 1", info)
    assert (exists.safe_rows, exists.suppressed) == (absent.safe_rows, absent.suppressed) == ([], [])


def test_count_of_a_column_is_refused(info):
    """COUNT(col) beside COUNT(*) gives the NULLs by subtraction, below k."""
    _refused("SELECT count(金额), count(*) FROM data", info, "不允许 COUNT(列)", "COUNT(*)", "IS NOT NULL")


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT avg(金额) * count(*) FROM data", ("不允许对汇总结果做运算", "导出后再计算")),
        ("SELECT 街道, round(avg(金额), 2) FROM data GROUP BY 街道", ("不允许对汇总结果做运算",)),
        ("SELECT count(*) FILTER (WHERE 金额 > 500) FROM data", ("FILTER", "WHERE")),
        ("SELECT 街道, sum(金额) FILTER (WHERE 金额 > 500) FROM data GROUP BY 街道", ("FILTER",)),
        ("SELECT count(*) FROM data WHERE sum(金额) > 5", ("筛选（WHERE）中不能使用汇总函数 SUM",)),
    ],
)
def test_refusals_name_the_real_reason(info, sql, words):
    message = _refused(sql, info, *words)
    assert "不允许使用聚合函数" not in message
