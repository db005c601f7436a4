"""See before downloading: the dataset page's chart, map and filtered table — checked against
pandas on the same source file, against the data API for the same query, and from the side of
whoever must not see conditional data (anonymous, another user, a revoked grant, a field
outside the grant)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pandas as pd
import pytest

from licenses import grants
from portal import clock
from portal import preview_charts as charts
from portal.models import Grant, User
from tests.catalogs import entry, write_csv
from tests.helpers import accept, approve, harvest, submit

AIR = "371502-sth-0901"
HOMES = "371502-mzj-0901"
CONDITIONAL = "371502-scj-0002"
STATIONS = ["聊城大学", "市环保局", "开发区管委会", "东昌府区政府", "古楼监测站", "湖西监测站", "柳园监测站"]
STREETS = ["古楼街道", "柳园街道", "新区街道", "湖西街道", "梁水镇镇", "沙镇镇", "侯营镇"]


@pytest.fixture
def air(portal_data, tmp_path):
    """400 daily readings: a date, a station, AQI and a position; three positions are far
    outside the district (Shanghai) and one is blank."""
    header = ["日期", "监测点", "AQI", "经度", "纬度"]
    rows = []
    for i in range(400):
        lon, lat = f"{115.9 + (i % 20) * 0.01:.4f}", f"{36.38 + (i % 15) * 0.01:.4f}"
        if i in (7, 8, 9):
            lon, lat = "121.47", "31.23"
        if i == 10:
            lon = ""
        rows.append(
            [
                (dt.date(2025, 1, 1) + dt.timedelta(days=i % 200)).isoformat(),
                STATIONS[i % 7],
                20 + (i * 37) % 240,
                lon,
                lat,
            ]
        )
    source = write_csv(tmp_path / "src/air.csv", header, rows)
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
    return pd.read_csv(source)


@pytest.fixture
def homes(portal_data, tmp_path):
    """Care homes with addresses only (no coordinates): counted per street on the map."""
    header = ["机构名称", "地址", "床位数"]
    rows = [[f"第{i}养老院", f"聊城市东昌府区{STREETS[i % 7]}东昌路{i}号", 10 + i] for i in range(60)]
    rows.append(["外地养老院", "济南市历下区泉城路1号", 50])
    source = write_csv(tmp_path / "src/homes.csv", header, rows)
    harvest(
        portal_data,
        tmp_path / "src",
        [
            entry(
                "371502-MZJ-0901",
                "养老服务机构",
                file="homes.csv",
                dept="东昌府区民政局",
                dept_code="dcf-mzj",
            )
        ],
        name="mzj.csv",
    )
    return pd.read_csv(source)


def page(client, name, **args) -> str:
    response = client.get(f"/dataset/{name}", query_string=args)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def figures(text: str) -> dict[str, float]:
    """The chart's data table, as a reader (or a screen reader) gets it."""
    table = text.split('class="chart-data"', 1)[1].split("</table>", 1)[0]
    pairs = re.findall(r'<th scope="row"[^>]*>([^<]*)</th><td class="num">([^<]*)</td>', table)
    return {html.unescape(k): float(v.replace(",", "")) for k, v in pairs}


def test_a_date_and_a_number_give_a_line_summed_per_month_like_pandas(client, air):
    """200 distinct days (more than MONTHS_AFTER) are summed per month."""
    text = page(client, AIR)
    assert "折线图" in text and 'class="chart"' in text and "按“日期”统计的“AQI”合计" in text
    expected = air.groupby(air["日期"].str[:7])["AQI"].sum()
    got = figures(text)
    assert got == {k: float(v) for k, v in expected.items()}
    assert list(got) == sorted(got)  # in time order
    assert "按全表 400 行统计" in text


def test_the_reader_chooses_the_columns_and_the_kind(client, air):
    text = page(client, AIR, table=_table_id(client, AIR), x="监测点", y="AQI", agg="mean", kind="bar")
    expected = air.groupby("监测点")["AQI"].mean()
    got = figures(text)
    assert got == pytest.approx({k: round(v, 2) for k, v in expected.items()}, abs=0.01)
    assert "柱状图" in text and "按“监测点”统计的“AQI”平均" in text
    # Rows counted per station, as a pie: seven parts (six and an "Other" of one would say less).
    counted = page(client, AIR, x="监测点", y="", kind="pie")
    assert "饼图" in counted
    got = figures(counted)
    assert got == {k: float(v) for k, v in air["监测点"].value_counts().items()} and "其他" not in got


def test_top_categories_and_the_rest_as_other(client, homes):
    text = page(client, HOMES, x="机构名称", y="床位数", agg="sum", kind="bar")
    got = figures(text)
    assert len(got) == charts.TOP_N + 1
    assert got["其他"] == homes["床位数"].sum() - sum(v for k, v in got.items() if k != "其他")
    assert "其余 49 类合为“其他”" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"x": "没有的列"}, "没有可作图的字段“没有的列”"),
        ({"x": "监测点", "y": "日期"}, "“日期”不是数值字段"),
        ({"x": "监测点", "kind": "line"}, "折线图的横轴须为日期或年份字段"),
        ({"x": "监测点", "y": "AQI", "agg": "median"}, "图表类型或统计方式无法识别"),
        ({"col": "AQI", "op": "gt", "val": "很多"}, "字段“AQI”的值“很多”不是"),
        ({"col": "不存在", "op": "eq", "val": "1"}, "没有字段 不存在"),
        ({"col": "AQI", "op": "gt", "val": ""}, "请填写“AQI”的筛选值"),
    ],
)
def test_bad_choices_are_explained_on_the_page(client, air, args, says):
    text = html.unescape(page(client, AIR, **args))
    assert says in text
    assert 'role="alert"' in text


def test_the_map_draws_points_inside_the_district_and_counts_the_rest(client, air):
    text = page(client, AIR)
    svg = text.split('class="chart map"', 1)[1].split("</svg>", 1)[0]
    points = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="4.5"', svg)
    assert len(points) == 396  # 400 rows, 3 in Shanghai and 1 blank left out
    assert "4 行坐标为空、无法识别或不在东昌府区范围内，未标出" in text and "在地图上标出 396 个点" in text
    assert "古楼街道" in svg  # the offline base: the district's streets, drawn in the page
    assert "并非测绘成果" in text  # the base is said to be schematic
    assert "<image" not in svg  # no tiles unless the bureau sets them


def test_detection_of_coordinates_and_addresses():
    import pyarrow as pa

    def found(*names):
        schema = pa.schema([(n, pa.float64()) for n in names])
        return charts.coordinate_columns(charts.column_kinds(schema, list(names)), schema)

    assert found("名称", "经度", "纬度") == ("经度", "纬度")
    assert found("lng", "lat") == ("lng", "lat")
    assert found("Longitude", "Latitude") == ("Longitude", "Latitude")
    assert found("X", "Y") == ("X", "Y")
    assert found("plate", "template") is None  # "lat" inside a word is not a latitude
    assert not charts.inside(121.47, 31.23) and charts.inside(115.98, 36.45) and not charts.inside(None, 36.4)


def test_addresses_are_counted_per_street(client, homes):
    text = page(client, HOMES)
    assert "按“地址”中的街道（镇）计数" in text
    table = text.split("各街道（镇）行数</caption>", 1)[1].split("</table>", 1)[0]
    got = dict(re.findall(r'<th scope="row"[^>]*>([^<]*)</th><td class="num">(\d+)</td>', table))
    expected = homes["地址"].str.extract("(" + "|".join(STREETS) + ")")[0].value_counts()
    assert {k: int(v) for k, v in got.items()} == expected.to_dict()
    assert "1 行未写明区内街道（镇），未计入" in text


def test_tiles_when_the_bureau_sets_a_tile_url(app, client, air):
    app.extensions[
        "portal"
    ].settings.map_tiles = (
        "https://t0.tianditu.gov.cn/vec_w/wmts?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY"
    )
    svg = page(client, AIR).split('class="chart map"', 1)[1].split("</svg>", 1)[0]
    tiles = re.findall(r'<image href="([^"]+)" x="(-?[\d.]+)" y="(-?[\d.]+)"', svg)
    proj = charts.Mercator(charts.ZOOM)
    assert len(tiles) == len(proj.tiles("x")) >= 9
    assert all("TILEMATRIX=11" in html.unescape(u) and "tk=KEY" in html.unescape(u) for u, _x, _y in tiles)
    # the tile holding the district's centre is where the centre is drawn
    cx, cy = proj(115.98, 36.45)
    col, row = int((proj.x0 + cx) // 256), int((proj.y0 + cy) // 256)
    assert any(f"TILEROW={row}&amp;TILECOL={col}" in u for u, _x, _y in tiles)
    assert svg.index("<image") < svg.index("<circle")  # the points over the tiles


def _table_id(client, name) -> str:
    return str(client.get(f"/api/data/{name}/fields").get_json()["tables"][0]["table"])


def test_filters_and_sort_give_the_data_apis_rows(client, air):
    tid = _table_id(client, AIR)
    text = page(client, AIR, table=tid, col="监测点", op="eq", val="聊城大学", sort="AQI", order="desc")
    api = client.get(
        f"/api/data/{AIR}",
        query_string={"table": tid, "eq[监测点]": "聊城大学", "sort": "-AQI", "limit": 20, "count": 1},
    ).get_json()
    shown = text.split("筛选结果</caption>", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr>(.*?)</tr>", shown.split("<tbody>", 1)[1])
    assert len(cells) == 20
    assert [re.findall(r"<td>([^<]*)</td>", c)[2] for c in cells] == [str(r["AQI"]) for r in api["records"]]
    expected = air[air["监测点"] == "聊城大学"]
    assert f"符合条件的共 {len(expected)} 行" in text
    link = html.unescape(re.search(r'数据 API 中的同一查询：<a href="([^"]+)"', text).group(1))
    assert client.get(link.replace("http://localhost", "")).get_json()["records"][:1] == api["records"][:1]
    # the next page of the same query
    nxt = html.unescape(re.search(r'<a class="page-step" rel="next" href="([^"]+)"', text).group(1))
    assert "fpage=2" in nxt and "col=" in nxt and "AQI" in nxt
    # a text match across the text columns
    assert "符合条件的共 57 行" in page(client, AIR, table=tid, op="q", val="湖西")


def test_previews_can_be_turned_off(app, client, air):
    app.extensions["portal"].settings.previews = False
    text = page(client, AIR)
    assert "see-first" not in text and 'table class="preview"' in text


# ---------------------------------------------------------------------- conditional data


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
        return {"user": applicant, "grant_id": grant.id}


SECRETS = ["聊城市水城医药柳园店", "鲁DA6350002", "经营面积", "许可证编号</option>"]


def _nothing_of_the_data(text: str) -> None:
    assert "see-first" not in text and "chart-data" not in text and 'class="chart' not in text
    see = text.split('id="apply"', 1)[1] if 'id="apply"' in text else text
    assert "聊城市水城医药柳园店" not in see and "鲁DA6350002" not in see


def test_conditional_previews_only_for_a_grant_holder_within_the_grant(
    client, auth, holder, make_user, portal_data
):
    _nothing_of_the_data(page(client, CONDITIONAL))  # anonymous
    other = make_user("company")
    auth.login(other[1], other[2])
    _nothing_of_the_data(page(client, CONDITIONAL))  # another user, no grant
    auth.logout()

    auth.login(holder["user"][1], holder["user"][2])
    text = page(client, CONDITIONAL)
    assert "see-first" in text and "授权范围内的字段和行" in text
    shown = text.split("筛选结果</caption>", 1)[1].split("</table>", 1)[0]
    assert "聊城市鲁西大药房古楼店" in shown and "聊城市凤凰药店新区店" in shown
    for secret in SECRETS:  # a field or a row outside the grant, nowhere in the previews
        assert secret not in text.split('class="see-first"', 1)[1].split("</section>", 1)[0], secret
    # the chart and map count the granted rows only (the base map names every street, data or not)
    assert figures(text) == {"古楼街道": 1.0, "新区街道": 1.0}
    counted = text.split("各街道（镇）行数</caption>", 1)[1].split("</table>", 1)[0]
    assert "古楼街道" in counted and "柳园街道" not in counted
    # asking for a field outside the grant is refused like the data API refuses it
    wider = html.unescape(page(client, CONDITIONAL, col="许可证编号", op="eq", val="鲁DA6350002"))
    assert "没有字段 许可证编号" in wider and "鲁DA6350002</td>" not in wider
    assert "没有可作图的字段“经营面积”" in html.unescape(page(client, CONDITIONAL, x="经营面积"))
    # another street than the grant's finds nothing
    assert "符合条件的共 0 行" in page(client, CONDITIONAL, col="所属街道", op="eq", val="柳园街道")

    bureau = make_user(bureau=True)
    with portal_data.sessions() as s:
        grants.revoke(
            s, s.get(User, bureau[0]), s.get(Grant, holder["grant_id"]), "违反约定用途，向第三方提供了数据"
        )
        s.commit()
    _nothing_of_the_data(page(client, CONDITIONAL))  # revoked: nothing, at once


def test_a_grant_past_its_end_shows_nothing(client, auth, holder, portal_data):
    with portal_data.sessions() as s:
        grant = s.get(Grant, holder["grant_id"])
        grant.valid_until = clock.today() - dt.timedelta(days=1)
        s.commit()
    auth.login(holder["user"][1], holder["user"][2])
    _nothing_of_the_data(page(client, CONDITIONAL))
    _nothing_of_the_data(page(client, CONDITIONAL, x="所属街道", col="企业名称", op="q", val="药"))


def test_filtering_and_charting_on_the_page_are_limited_as_the_data_api_is(app, client, air):
    """Each filtered or charted page runs a query over the file: varying the query string is
    limited like the data API; the plain page is not (the page cache answers it)."""
    app.config["DATA_API_RATE"] = "3 per minute"
    answers = [
        client.get(f"/dataset/{AIR}", query_string={"col": "监测点", "val": f"点{i}"}) for i in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "Retry-After" in answers[-1].headers
    assert client.get(f"/dataset/{AIR}", query_string={"x": "监测点"}).status_code == 429
    assert [client.get(f"/dataset/{AIR}").status_code for _ in range(5)] == [200] * 5


def test_the_same_column_as_axis_and_value_is_explained_not_a_server_error(client, air):
    text = page(client, AIR, x="AQI", y="AQI", agg="sum")
    assert "横轴和数值不能是同一字段“AQI”" in text
