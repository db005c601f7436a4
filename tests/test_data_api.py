"""The data API: rows of unconditional data for anyone, licensed rows for a grant holder's
token — checked against pandas reading the same source file, on the real database."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pandas as pd
import pytest
from sqlalchemy import select

from harvest.sources import SpreadsheetSource
from licenses import grants
from portal import accounts, clock
from portal.models import Grant, LicensedDownload, User
from tests.catalogs import entry, write_catalog, write_csv
from tests.helpers import accept, approve, submit

STREETS = ["古楼街道", "柳园街道", "新区街道", "湖西街道", "道口铺街道"]
KINDS = ["餐饮服务", "食品销售", "药品零售"]
INSPECTIONS = "371502-scj-0101"


@pytest.fixture
def inspections(portal_data, tmp_path):
    """2,500 inspection records (integers, dates, decimals, Chinese text) harvested like any entry."""
    header = ["记录编号", "企业名称", "所属街道", "业务类别", "检查日期", "从业人数", "营业面积"]
    rows = [
        [
            i,
            f"聊城市{STREETS[i % 5]}第{i}号{KINDS[i % 3][:2]}店",
            STREETS[i % 5],
            KINDS[i % 3],
            (dt.date(2024, 1, 1) + dt.timedelta(days=i % 400)).isoformat(),
            (i * 7) % 90 + 1,
            f"{(i * 13) % 1000 / 4:.2f}",
        ]
        for i in range(2500)
    ]
    source = write_csv(tmp_path / "src/inspections.csv", header, rows)
    portal_data.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "src/more.csv",
                [entry("371502-SCJ-0101", "市场主体检查记录", file="inspections.csv")],
            )
        )
    )
    return pd.read_csv(source, dtype={"企业名称": str})


def records(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["records"]


def test_filters_sort_and_columns_match_pandas_on_the_source_file(client, inspections):
    response = client.get(
        f"/api/data/{INSPECTIONS}",
        query_string={
            "fields": "记录编号,所属街道,检查日期,从业人数",
            "eq[所属街道]": ["柳园街道", "湖西街道"],
            "gte[检查日期]": "2024-03-01",
            "lt[检查日期]": "2024-06-01",
            "gt[从业人数]": "40",
            "sort": "-从业人数,记录编号",
            "limit": "50",
        },
    )
    got = records(response)
    frame = inspections
    expected = frame[
        frame["所属街道"].isin(["柳园街道", "湖西街道"])
        & (frame["检查日期"] >= "2024-03-01")
        & (frame["检查日期"] < "2024-06-01")
        & (frame["从业人数"] > 40)
    ]
    expected = expected.sort_values(["从业人数", "记录编号"], ascending=[False, True])
    assert [r["记录编号"] for r in got] == expected["记录编号"].head(50).tolist()
    assert set(got[0]) == {"记录编号", "所属街道", "检查日期", "从业人数"}
    assert got[0]["检查日期"] == expected["检查日期"].iloc[0]  # dates as ISO text
    body = response.get_json()
    assert body["more"] is (len(expected) > 50) and body["source"] == "东昌府区市场监督管理局"
    assert clock.today().isoformat() in body["attribution"]  # source and acquisition date (Art. 25)


def test_text_match_finds_rows_by_any_word_in_text_columns(client, inspections):
    got = records(client.get(f"/api/data/{INSPECTIONS}", query_string={"q": "新区 药品", "limit": "1000"}))
    frame = inspections
    text = frame["企业名称"] + frame["所属街道"] + frame["业务类别"]
    expected = frame[text.str.contains("新区") & text.str.contains("药品")]
    assert sorted(r["记录编号"] for r in got) == sorted(expected["记录编号"]) and len(got) > 0


def test_pages_walk_every_row_once_with_and_without_a_sort(client, inspections):
    for sort in ("", "营业面积"):
        seen, offset = [], 0
        while True:
            body = client.get(
                f"/api/data/{INSPECTIONS}",
                query_string={"fields": "记录编号", "limit": "1000", "offset": str(offset), "sort": sort},
            ).get_json()
            seen += [r["记录编号"] for r in body["records"]]
            if not body["more"]:
                assert body["next"] is None
                break
            assert f"offset={offset + 1000}" in body["next"]
            offset += 1000
        assert sorted(seen) == list(range(2500)) and len(seen) == 2500


def test_times_of_day_are_read_written_and_filtered_as_times(client, portal_data, tmp_path):
    """A bus timetable's 首班/末班 columns: "19:00:00" in JSON and CSV (not 1970-01-01T19:00 nor
    19:00:00.000), and a filter written as a time works."""
    write_csv(
        tmp_path / "src/timetable.csv",
        ["线路", "首班时间", "末班时间"],
        [["1路", "06:00", "19:00"], ["2路", "06:30", "21:30"], ["3路", "05:45", "22:15"]],
    )
    portal_data.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "src/timetable-catalog.csv",
                [entry("371502-JTY-0301", "公交线路时刻", file="timetable.csv")],
            )
        )
    )
    got = records(client.get("/api/data/371502-jty-0301", query_string={"sort": "线路"}))
    assert got[0]["末班时间"] == "19:00:00" and got[0]["首班时间"].startswith("06:00")
    late = records(
        client.get("/api/data/371502-jty-0301", query_string={"gte[末班时间]": "21:00", "sort": "线路"})
    )
    assert [r["线路"] for r in late] == ["2路", "3路"]
    text = client.get("/api/data/371502-jty-0301", query_string={"format": "csv", "sort": "线路"}).get_data(
        as_text=True
    )
    assert "1970" not in text and ".000" not in text and "19:00" in text


def test_count_csv_and_the_row_cap(client, inspections):
    response = client.get(
        f"/api/data/{INSPECTIONS}",
        query_string={"eq[业务类别]": "药品零售", "count": "true", "format": "csv", "limit": "5"},
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert int(response.headers["X-Total-Count"]) == int((inspections["业务类别"] == "药品零售").sum())
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert lines[0][0] == "记录编号" and len(lines) == 6 and {line[3] for line in lines[1:]} == {"药品零售"}
    assert 'rel="next"' in response.headers["Link"] and "东昌府区市场监督管理局" in _unquote(
        response.headers["X-Attribution"]
    )
    capped = client.get(f"/api/data/{INSPECTIONS}", query_string={"limit": "5000"})
    assert capped.status_code == 400 and "1000" in capped.get_json()["error"]["message"]


def _unquote(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"eq[没有的列]": "1"}, "没有的列"),
        ({"gt[从业人数]": "很多"}, "从业人数"),
        ({"gte[检查日期]": "2024-13-45"}, "检查日期"),
        ({"between[从业人数]": "1"}, "between"),
        ({"sort": "-不存在"}, "不存在"),
        ({"fields": "记录编号,密码"}, "密码"),
        ({"limit": "abc"}, "limit"),
        ({"offset": "-3"}, "offset"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_get_a_clear_400(client, inspections, params, says):
    response = client.get(f"/api/data/{INSPECTIONS}", query_string=params)
    assert response.status_code == 400
    assert says in response.get_json()["error"]["message"]


def test_nothing_not_open_held_or_withdrawn_is_served(client, portal_data):
    for name in ("371502-scj-0003", "371502-scj-0004", "371502-jty-0002", "no-such-thing"):
        response = client.get(f"/api/data/{name}")
        assert response.status_code == 404, name
        assert client.get(f"/api/data/{name}/fields").status_code == 404


def test_fields_lists_tables_and_columns(client, inspections):
    body = client.get(f"/api/data/{INSPECTIONS}/fields").get_json()
    [table] = body["tables"]
    assert [f["name"] for f in table["fields"]][:3] == ["记录编号", "企业名称", "所属街道"] and table[
        "rows"
    ] == 2500


# ---------------------------------------------------------------------- licensed rows

CONDITIONAL = "371502-scj-0002"


def token_for(portal_data, user_id: int) -> str:
    with portal_data.sessions() as s:
        _, token = accounts.create_token(s, s.get(User, user_id), "data api", 30)
        s.commit()
        return token


@pytest.fixture
def holder(portal_data, make_user):
    """A company holding a grant on the conditional dataset: two fields, two streets."""
    applicant, curator = make_user("company"), make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:
        app = submit(s, s.get(User, applicant[0]))
        approve(
            s,
            s.get(User, curator[0]),
            app,
            fields=["企业名称", "所属街道"],
            rows={"所属街道": ["古楼街道", "新区街道"]},
        )
        grant = accept(s, s.get(User, applicant[0]), app)
        return {
            "token": token_for(portal_data, applicant[0]),
            "grant_id": grant.id,
            "licence": grant.licence_number,
        }


def test_conditional_rows_need_a_grant(client, portal_data, holder, make_user):
    anonymous = client.get(f"/api/data/{CONDITIONAL}")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    stranger = token_for(portal_data, make_user("company")[0])
    refused = client.get(f"/api/data/{CONDITIONAL}", headers={"Authorization": f"Bearer {stranger}"})
    assert refused.status_code == 403 and "#apply" in refused.get_json()["error"]["message"]
    tampered = client.get(f"/api/data/{CONDITIONAL}", headers={"Authorization": f"Bearer {holder['token']}x"})
    assert tampered.status_code == 401


def test_a_grant_holder_gets_only_the_granted_fields_and_rows(client, portal_data, holder):
    auth = {"Authorization": f"Bearer {holder['token']}"}
    body = client.get(f"/api/data/{CONDITIONAL}", headers=auth).get_json()
    assert [f["name"] for f in body["fields"]] == ["企业名称", "所属街道"]
    assert sorted(r["所属街道"] for r in body["records"]) == ["古楼街道", "新区街道"]
    assert body["licence"]["number"] == holder["licence"]
    # No parameter widens the grant: another field is unknown, another street finds nothing.
    wider = client.get(f"/api/data/{CONDITIONAL}", headers=auth, query_string={"fields": "许可证编号"})
    assert wider.status_code == 400 and "许可证编号" in wider.get_json()["error"]["message"]
    assert (
        client.get(
            f"/api/data/{CONDITIONAL}", headers=auth, query_string={"eq[所属街道]": "柳园街道"}
        ).get_json()["records"]
        == []
    )
    assert (
        client.get(f"/api/data/{CONDITIONAL}", headers=auth, query_string={"q": "水城"}).get_json()["records"]
        == []
    )
    fields = client.get(f"/api/data/{CONDITIONAL}/fields", headers=auth).get_json()
    assert [f["name"] for f in fields["tables"][0]["fields"]] == ["企业名称", "所属街道"]
    with portal_data.sessions() as s:
        logged = s.scalars(
            select(LicensedDownload).where(LicensedDownload.grant_id == holder["grant_id"])
        ).all()
        assert [entry.rows for entry in logged] == [
            2,
            0,
            0,
        ]  # every call that returned licensed rows (or none)


def test_a_revoked_grant_stops_the_api_at_once(client, portal_data, holder, make_user):
    auth = {"Authorization": f"Bearer {holder['token']}"}
    assert client.get(f"/api/data/{CONDITIONAL}", headers=auth).status_code == 200
    bureau = make_user(bureau=True)
    with portal_data.sessions() as s:
        grants.revoke(
            s, s.get(User, bureau[0]), s.get(Grant, holder["grant_id"]), "违反约定用途，向第三方提供了数据"
        )
        s.commit()
    assert client.get(f"/api/data/{CONDITIONAL}", headers=auth).status_code == 403


def test_many_row_groups_and_high_cardinality_text_give_the_same_rows_as_pandas(tmp_path):
    """Row groups read in parallel come back in file order; pruning by statistics, dictionary
    and plain string columns, early stops and counts all agree with pandas on the same file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from portal.catalog import rows

    rng = np.random.default_rng(3)
    n = 20_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "street": rng.choice(STREETS, n),
            "code": [f"JY{x:08d}" for x in rng.integers(0, 10**8, n)],  # unique-ish: stored plain
            "staff": rng.integers(1, 100, n),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        path,
        row_group_size=1_500,
        use_dictionary=["street"],
    )
    query = rows.RowQuery(
        equals={"street": ["柳园街道"]},
        ranges={"id": {"gte": "4000"}, "staff": {"lt": "30"}},
        text="JY0",
        limit=30,
        offset=20,
        count=True,
    )
    page = rows.query_rows(path, query, rows.Scope())
    expected = frame[
        (frame.street == "柳园街道")
        & (frame.id >= 4000)
        & (frame.staff < 30)
        & frame.code.str.contains("JY0")
    ]
    assert page.table.column("id").to_pylist() == expected.id.iloc[20:50].tolist()
    assert page.total == len(expected) > 51 and page.more
    scoped = rows.query_rows(
        path,
        rows.RowQuery(sort=[("staff", True), ("id", False)], limit=20),
        rows.Scope(fields=["id", "staff"], row_filter={"street": ["湖西街道"]}),
    )
    top = frame[frame.street == "湖西街道"].sort_values(["staff", "id"], ascending=[False, True]).head(20)
    assert (
        scoped.table.column_names == ["id", "staff"]
        and scoped.table.column("id").to_pylist() == top.id.tolist()
    )


def test_sorted_pages_read_only_the_row_groups_that_can_reach_them(tmp_path, monkeypatch):
    """A sort on a column that grows along the file (a record number, a date) reads the row
    group holding the page and skips the others by their statistics; the page is still exactly
    pandas' stable sort: ties across a row-group boundary in file order, nulls last, offsets
    and exact counts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from portal.catalog import rows

    n = 6_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "level": (np.arange(n) + 5) // 10,  # ten rows a value, straddling row-group boundaries
            "street": [STREETS[i % 5] for i in range(n)],
            "area": [None if i % 7 == 0 else float(i // 3) for i in range(n)],
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=1_000)
    read: list[tuple[int, str]] = []
    real_read = rows.ParquetTable._read
    monkeypatch.setattr(
        rows.ParquetTable,
        "_read",
        lambda self, rg, columns: read.extend((rg, c) for c in columns) or real_read(self, rg, columns),
    )
    monkeypatch.setattr(rows, "CHUNKS", rows.ChunkCache(0))  # every read is a read
    monkeypatch.setattr(rows, "WORKERS", 1)  # one row group at a time: what is read is certain

    def page(sort, **kwargs):
        del read[:]
        found = rows.query_rows(path, rows.RowQuery(sort=sort, **kwargs), rows.Scope())
        return found.table.column("id").to_pylist(), found.total

    ids, _total = page([("level", True)], limit=12, offset=3)
    expected = frame.sort_values("level", ascending=False, kind="stable").id.iloc[3:15].tolist()
    assert ids == expected and {rg for rg, _c in read} == {5}
    # The page ends among rows of level 500, five at the end of row group 4 and five at the
    # start of 5: row group 4 can only tie, yet its rows come first in file order.
    ids, _total = page([("level", True)], limit=5, offset=993)
    expected = frame.sort_values("level", ascending=False, kind="stable").id.iloc[993:998].tolist()
    assert ids == expected == [5013, 5014, 4995, 4996, 4997] and {rg for rg, _c in read} == {4, 5}

    ids, total = page([("level", False), ("id", True)], equals={"street": ["古楼街道"]}, limit=20, count=True)
    matching = frame[frame.street == "古楼街道"]
    assert ids == matching.sort_values(["level", "id"], ascending=[True, False]).id.head(20).tolist()
    assert total == len(matching)
    assert {rg for rg, c in read if c == "level"} == {0} and {rg for rg, c in read if c == "street"} == set(
        range(6)
    )

    ids, _total = page([("area", True)], limit=900, offset=5_200)  # into the nulls: nothing can be skipped
    assert (
        ids
        == frame.sort_values("area", ascending=False, kind="stable", na_position="last")
        .id.iloc[5_200:6_000]
        .tolist()
    )


def test_a_replaced_data_file_is_answered_from_its_new_content(tmp_path):
    """Columns kept from a query are never served for another file under the same name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from portal.catalog import rows

    path = tmp_path / "t.parquet"
    query = rows.RowQuery(equals={"street": ["古楼街道"]}, sort=[("n", True)], limit=3)
    pq.write_table(pa.table({"street": ["古楼街道", "柳园街道"] * 50, "n": list(range(100))}), path)
    assert rows.query_rows(path, query, rows.Scope()).table.column("n").to_pylist() == [98, 96, 94]
    pq.write_table(pa.table({"street": ["柳园街道", "古楼街道"] * 60, "n": list(range(120))}), path)
    assert rows.query_rows(path, query, rows.Scope()).table.column("n").to_pylist() == [119, 117, 115]


def test_the_column_cache_stays_in_its_bound_and_keeps_what_saves_the_most_decoding():
    """A worker's kept columns never pass their bound; a table three times larger than the
    cache, read in turn query after query, still finds the part that fits (plain LRU would
    push each chunk out just before it is asked again), and the room goes to the chunks that
    are dear to decode rather than the cheap ones; a bound of 0 keeps nothing."""
    import pyarrow as pa

    from portal.catalog import rows

    chunk = pa.chunked_array([pa.array(range(1_000), pa.int64())])  # 8,000 bytes
    cache = rows.ChunkCache(10 * chunk.nbytes)
    hits = []
    for _round in range(4):
        found = []
        for key in range(30):  # even keys cost 5 ms to decode, odd ones 1 ms
            if cache.get(key) is None:
                cache.put(key, chunk, seconds=0.005 if key % 2 == 0 else 0.001)
            else:
                found.append(key)
            assert cache.size <= 10 * chunk.nbytes
        hits.append(found)
    assert hits[0] == [] and all(len(found) >= 9 and all(k % 2 == 0 for k in found) for found in hits[1:])
    cache.resize(0)
    cache.put(0, chunk, seconds=0.005)
    assert cache.size == 0 and cache.get(0) is None


def test_the_licensed_zip_and_the_api_cut_a_grant_the_same_way():
    """A grant whose row filter names a column the file no longer has gives no rows, in the
    ZIP as in the API — never every row."""
    import pyarrow as pa

    from portal.catalog import rows

    table = pa.table(
        {"企业名称": ["甲", "乙", "丙"], "所属街道": ["古楼街道", "柳园街道", "古楼街道"], "面积": [1, 2, 3]}
    )
    cut = rows.scoped_table(
        table, rows.Scope(fields=["企业名称", "面积"], row_filter={"所属街道": ["古楼街道"]})
    )
    assert cut.column_names == ["企业名称", "面积"] and cut.column("企业名称").to_pylist() == ["甲", "丙"]
    gone = rows.scoped_table(table, rows.Scope(row_filter={"已删除的列": ["x"]}))
    assert gone.num_rows == 0


def test_api_errors_are_readable_utf8_like_the_data_apis_own(client, portal_data):
    refused = client.get("/api/data/371502-scj-0001", headers={"Authorization": "Bearer not-a-token"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 401 and refused.get_json()["error"]["message"] and "\\u" not in text


def test_a_filter_value_of_the_wrong_type_is_explained_in_words(client, inspections):
    said = client.get("/api/data/371502-scj-0101", query_string={"gte[从业人数]": "many"}).get_json()[
        "error"
    ]["message"]
    assert "整数" in said and "int64" not in said
    said = client.get(
        "/api/data/371502-scj-0101", query_string={"gte[从业人数]": "many", "lang": "en"}
    ).get_json()
    assert "Integer" in said["error"]["message"]


def test_retry_after_is_only_on_a_refusal(client, portal_data):
    answer = client.get("/api/data/371502-scj-0001")
    assert answer.status_code == 200 and "X-RateLimit-Limit" in answer.headers
    assert "Retry-After" not in answer.headers  # "come back later" belongs to a 429 or 503 only
