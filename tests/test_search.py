"""The search backends on their own: words, facets, sorting, paging, refresh, escaping.

Every case runs on Whoosh, and on PostgreSQL full-text search when the suite runs on
PostgreSQL: the two engines must answer alike."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from portal.search import SearchDoc, SearchQuery
from portal.search.whoosh_backend import WhooshBackend
from tests.helpers import PG_URL


def doc(name, title, **kw) -> SearchDoc:
    defaults = {
        "department": "dcf-scjgj",
        "department_name": "东昌府区市场监督管理局",
        "domain": "市场监管",
        "open_class": "unconditional",
        "format": "CSV",
        "update_cycle": "每月",
    }
    return SearchDoc(name=name, title=title, **{**defaults, **kw})


DOCS = [
    doc(
        "drugs",
        "药品零售企业名录",
        summary="全区药店",
        fields=["企业名称", "许可证编号"],
        resource_code="371502-SCJ-0001",
        published=dt.date(2024, 3, 1),
    ),
    doc("food", "食品经营许可信息", summary="含药品经营以外的食品许可", published=dt.date(2025, 1, 1)),
    doc(
        "bus",
        "公交站点位置",
        department="dcf-jtysj",
        department_name="东昌府区交通运输局",
        domain="交通运输",
        format="XLSX",
        update_cycle="每日",
        fields=["站点名称", "经度"],
        published=dt.date(2023, 5, 1),
    ),
    doc(
        "hosp",
        "Hospitals of the district",
        summary="Beds and addresses of hospitals",
        domain="医疗卫生",
        open_class="conditional",
        tags=["医院"],
        published=dt.date(2022, 1, 1),
    ),
    doc("xss", "<script>alert(1)</script>药品", summary="a < b & c", published=dt.date(2021, 1, 1)),
]


@pytest.fixture(params=["whoosh", "postgres"] if PG_URL else ["whoosh"])
def make_backend(request, tmp_path, database_url):
    """Backends over one store: each call is another process's view of the same index."""
    engines = []

    def make(popularity=None, synonyms=None):
        if request.param == "whoosh":
            return WhooshBackend(
                tmp_path / "index", popularity=popularity, refresh_seconds=0, synonyms=synonyms
            )
        from portal.db import make_engine
        from portal.search.postgres_backend import PostgresBackend

        engines.append(make_engine(database_url))
        return PostgresBackend(engines[-1], popularity=popularity, synonyms=synonyms)

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def backend(make_backend):
    b = make_backend()
    b.rebuild(DOCS)
    return b


def names(result) -> list[str]:
    return [h.name for h in result.hits]


def test_chinese_word_finds_longer_titles_title_first(backend):
    result = backend.search(SearchQuery(q="药品"))
    assert names(result)[0] == "drugs"  # title match outranks the summary match
    assert set(names(result)) == {"drugs", "food", "xss"}


def test_english_words_are_stemmed_and_case_insensitive(backend):
    assert names(backend.search(SearchQuery(q="HOSPITAL"))) == ["hosp"]
    assert names(backend.search(SearchQuery(q="addresses"))) == ["hosp"]


@pytest.mark.parametrize("q", ["371502-SCJ-0001", "scj-0001", "371502 0001"])
def test_catalog_codes(backend, q):
    assert names(backend.search(SearchQuery(q=q))) == ["drugs"]


def test_numbers_stay_required_when_the_search_is_relaxed(backend):
    assert backend.search(SearchQuery(q="371502-SCJ-0009")).total == 0  # no such code: not every 371502
    result = backend.search(SearchQuery(q="371502 药品 火星"))
    assert result.relaxed and names(result) == ["drugs"]  # 药品 in three, 371502 only in this one


def test_fields_tags_and_department_are_searched(backend):
    assert names(backend.search(SearchQuery(q="许可证编号"))) == ["drugs"]
    assert names(backend.search(SearchQuery(q="医院"))) == ["hosp"]
    assert names(backend.search(SearchQuery(q="交通运输局"))) == ["bus"]


def test_every_word_must_match_while_some_dataset_has_them_all(backend):
    result = backend.search(SearchQuery(q="药品 名录"))
    assert names(result) == ["drugs"] and not result.relaxed


def test_when_no_dataset_has_every_word_those_with_most_of_them_come_first(backend):
    result = backend.search(SearchQuery(q="药品 名录 公交"))
    assert result.relaxed and result.total == 4  # 药品: drugs, food, xss; 公交: bus
    assert names(result)[0] == "drugs"  # two of the three words
    assert set(names(backend.search(SearchQuery(q="药品 公交")))) == {"drugs", "food", "xss", "bus"}
    assert backend.search(SearchQuery(q="药品 公交", filters={"domain": ["交通运输"]})).total == 1
    assert backend.search(SearchQuery(q="火箭 卫星")).total == 0  # none of the words: nothing


def test_facet_counts_and_filters(backend):
    result = backend.search(SearchQuery())
    counts = {f: {v.value: v.count for v in values} for f, values in result.facets.items()}
    assert counts["department"] == {"dcf-scjgj": 4, "dcf-jtysj": 1}
    assert counts["open_class"] == {"unconditional": 4, "conditional": 1}
    assert counts["format"] == {"CSV": 4, "XLSX": 1}
    labels = {v.value: v.label for v in result.facets["department"]}
    assert labels["dcf-jtysj"] == "东昌府区交通运输局"
    narrowed = backend.search(SearchQuery(q="药品", filters={"domain": ["市场监管"], "format": ["CSV"]}))
    assert narrowed.total == 3
    both = backend.search(SearchQuery(filters={"update_cycle": ["每日", "每月"]}))  # OR within a facet
    assert both.total == 5


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("newest", ["food", "drugs", "bus", "hosp", "xss"]),
        ("name", sorted([d.name for d in DOCS], key=lambda n: next(d.title for d in DOCS if d.name == n))),
    ],
)
def test_sorting(backend, sort, expected):
    assert names(backend.search(SearchQuery(sort=sort))) == expected


def test_most_downloaded_uses_the_live_counts(make_backend):
    counts = {"bus": 50, "hosp": 7}
    backend = make_backend(popularity=lambda: counts)
    backend.rebuild(DOCS)
    assert names(backend.search(SearchQuery(sort="downloads")))[:2] == ["bus", "hosp"]


def test_pages_do_not_overlap_and_cover_everything(backend):
    pages = [names(backend.search(SearchQuery(sort="newest", start=s, rows=2))) for s in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == names(backend.search(SearchQuery(sort="newest")))


def test_highlights_escape_html(backend):
    [hit] = [h for h in backend.search(SearchQuery(q="药品")).hits if h.name == "xss"]
    assert "<script>" not in hit.title_html and "&lt;script&gt;" in hit.title_html
    assert "<mark>药品</mark>" in hit.title_html
    assert str(hit.summary_html) == "a &lt; b &amp; c"


def test_a_reader_sees_the_writers_new_commits(make_backend):
    writer = make_backend()
    writer.rebuild(DOCS[:1])
    reader = make_backend()  # another web worker
    assert reader.search(SearchQuery()).total == 1
    writer.index([DOCS[2]])
    assert names(reader.search(SearchQuery(q="公交"))) == ["bus"]
    writer.remove(["drugs"])
    assert reader.search(SearchQuery(q="药品")).total == 0
    writer.index([doc("bus", "公交线路（新）", published=dt.date(2026, 1, 1))])  # replace, not duplicate
    assert reader.search(SearchQuery()).total == 1
    assert reader.search(SearchQuery(q="线路")).hits[0].title == "公交线路（新）"


@pytest.mark.parametrize("q", ["'", "\\", "a & b | !c", "(药品", "药品:*", "' OR 1=1 --", "<->", "药品'"])
def test_query_syntax_of_the_engine_is_just_text(backend, q):
    """Quotes, backslashes and the engines' own operators are searched as words, never parsed."""
    result = backend.search(SearchQuery(q=q))
    if "药品" in q:
        assert set(names(result)) == {"drugs", "food", "xss"}


def test_words_with_quotes_and_backslashes_are_indexed(make_backend):
    backend = make_backend()
    backend.rebuild([doc("odd", "O'Brien\\s 路灯 it's", tags=["a'b"], summary="back\\slash")])
    assert names(backend.search(SearchQuery(q="O'Brien"))) == ["odd"]
    assert names(backend.search(SearchQuery(q="back\\slash"))) == ["odd"]
    assert (
        names(backend.search(SearchQuery(q="路灯", filters={"department": ["dcf-scjgj' OR '1'='1"]}))) == []
    )


# ---------------------------------------------------------------------- what people type

EVERYDAY = [
    doc(
        "bus",
        "公交线路信息",
        tags=["公交", "线路"],
        department="dcf-jtysj",
        department_name="东昌府区交通运输局",
        domain="交通运输",
        title_en="Bus routes",
        summary_en="Bus lines with their first and last buses",
    ),
    doc(
        "elder",
        "养老服务机构名录",
        tags=["养老", "民政"],
        department_name="东昌府区民政局",
        domain="民政服务",
    ),
    doc("gym", "公共体育场馆信息", tags=["体育", "场馆"], domain="教育文化"),
    doc(
        "vaccine",
        "预防接种门诊信息",
        tags=["疫苗", "接种"],
        domain="医疗卫生",
        title_en="Vaccination clinics",
    ),
    doc("marriage", "婚姻登记机关信息", tags=["婚姻", "登记"], domain="民政服务"),
    doc("presale", "商品房预售许可信息", tags=["商品房", "预售"], domain="城建住房"),
    doc("ride", "网约车订单统计", domain="交通运输"),
    doc(
        "hukou",
        "户籍业务办理网点",
        tags=["户籍", "派出所"],
        domain="公共安全",
        title_en="Household registration offices",
    ),
    doc(
        "hosp",
        "医疗机构名录",
        tags=["医院"],
        domain="医疗卫生",
        title_en="Hospitals, health centres and clinics",
        summary_en="Every licensed medical institution with its beds and address",
    ),
    doc("fund", "医保基金支出统计", tags=["医保", "统计"], fields=["住院支出（万元）", "药店支出（万元）"]),
    doc("pharmacy", "医保定点医药机构", tags=["医保", "定点"], summary="定点医院、定点药店和定点诊所"),
    doc("shelter", "应急避难场所", tags=["应急", "避难"], domain="安全生产"),
]
ALIASES = {
    "打疫苗": ["预防接种"],
    "户口": ["户籍"],
    "结婚登记": ["婚姻登记"],
    "避难所": ["应急避难场所"],
    "医保药店": ["医保定点医药机构"],
    "新房": ["商品房"],
}


@pytest.fixture
def everyday(make_backend):
    aliases = dict(ALIASES)
    backend = make_backend(synonyms=lambda: aliases)
    backend.rebuild(EVERYDAY)
    backend.aliases = aliases  # the bureau's list, edited by a test
    return backend


def first(result) -> str | None:
    return result.hits[0].name if result.hits else None


@pytest.mark.parametrize(
    "q,expected", [("公交车", "bus"), ("养老院", "elder"), ("体育馆", "gym"), ("公交车 线路", "bus")]
)
def test_a_compound_word_finds_titles_holding_its_parts(everyday, q, expected):
    result = everyday.search(SearchQuery(q=q))
    assert first(result) == expected and not result.relaxed


@pytest.mark.parametrize(
    "q,expected",
    [
        ("打疫苗", "vaccine"),
        ("哪里可以打疫苗", "vaccine"),
        ("户口", "hukou"),
        ("户口本", "hukou"),
        ("结婚登记", "marriage"),
        ("避难所", "shelter"),
        ("医保药店", "pharmacy"),
    ],
)
def test_everyday_words_find_the_official_ones_through_the_synonym_list(everyday, q, expected):
    assert first(everyday.search(SearchQuery(q=q))) == expected


def test_synonyms_are_marked_in_titles(everyday):
    [hit] = everyday.search(SearchQuery(q="打疫苗")).hits
    assert "<mark>预防接种</mark>" in hit.title_html


def test_the_synonym_list_is_read_at_each_search(everyday):
    """The bureau's edits apply to the next search, without a restart or a reindex."""
    assert first(everyday.search(SearchQuery(q="景点"))) is None
    everyday.aliases["景点"] = ["应急避难场所"]  # whatever the bureau decides
    assert first(everyday.search(SearchQuery(q="景点"))) == "shelter"
    del everyday.aliases["打疫苗"]
    result = everyday.search(
        SearchQuery(q="打疫苗")
    )  # 打 & 疫苗 no more 预防接种: only 疫苗 (a tag), relaxed
    assert result.relaxed and "预防接种" not in result.terms


def test_two_part_needs_fall_back_to_any_word_ranked(everyday):
    result = everyday.search(SearchQuery(q="新房 预售"))  # 新房 → 商品房 (synonym) and 预售: all words
    assert first(result) == "presale" and not result.relaxed
    del everyday.aliases["新房"]
    result = everyday.search(SearchQuery(q="新房预售"))  # no 新房 anywhere: 预售 alone
    assert first(result) == "presale" and result.relaxed


def test_a_word_that_is_not_among_the_indexed_words_falls_back_to_characters(everyday):
    result = everyday.search(SearchQuery(q="网约"))  # a part of 网约车, which segments as one word
    assert names(result) == ["ride"] and result.relaxed
    assert "<mark>网约</mark>" in result.hits[0].title_html


def test_filler_words_of_questions_are_left_out(everyday):
    assert first(everyday.search(SearchQuery(q="请问哪里有公交车的信息"))) == "bus"
    assert everyday.search(SearchQuery(q="哪里")).total == 0  # nothing else asked: searched as it is


@pytest.mark.parametrize(
    "q,expected",
    [
        ("hospital", "hosp"),
        ("Hospitals", "hosp"),
        ("vaccination", "vaccine"),
        ("where are the hospitals", "hosp"),
        ("household registration", "hukou"),
        ("bus routes", "bus"),
        ("medical institution", "hosp"),
        ("first buses", "bus"),
    ],
)
def test_english_queries_find_the_english_title_and_summary(everyday, q, expected):
    result = everyday.search(SearchQuery(q=q))
    assert first(result) == expected
    if expected == "hosp" and "hospital" in q.lower():
        assert result.hits[0].title_en == "Hospitals, health centres and clinics"


def test_an_index_made_before_the_english_fields_keeps_working(make_backend, tmp_path):
    """An instance upgraded to this version searches its old index at once (the new fields
    are added in place) and `portal reindex` fills them."""
    backend = make_backend()
    if isinstance(backend, WhooshBackend):
        from whoosh import index as whoosh_index
        from whoosh.fields import Schema

        from portal.search.whoosh_backend import SCHEMA, whoosh_document

        old = Schema(**{n: SCHEMA[n] for n in SCHEMA.names() if n not in ("title_en", "summary_en", "chars")})
        path = tmp_path / "old-index"
        path.mkdir()
        ix = whoosh_index.create_in(path, old)
        with ix.writer() as writer:
            fields = whoosh_document(DOCS[0])
            writer.add_document(**{k: v for k, v in fields.items() if k in old.names()})
        backend = WhooshBackend(path, refresh_seconds=0)
    else:
        from sqlalchemy import text

        backend.rebuild(DOCS[:1])
        with backend.engine.begin() as conn:  # the table as the version before made it
            conn.execute(text("ALTER TABLE portal_search.document DROP COLUMN title_en"))
        backend = make_backend()
    assert names(backend.search(SearchQuery(q="药品"))) == ["drugs"]
    backend.rebuild(EVERYDAY)
    assert first(backend.search(SearchQuery(q="hospital"))) == "hosp"
    assert first(backend.search(SearchQuery(q="网约"))) == "ride"


@pytest.fixture
def in_processes(monkeypatch):
    """A rebuild of a few documents takes the path of a large one: writer processes, batches,
    and segments closed after a few documents each."""
    from portal.search import whoosh_build

    monkeypatch.setattr(whoosh_build, "PARALLEL_FROM", 3)
    monkeypatch.setattr(whoosh_build, "BATCH", 2)
    monkeypatch.setattr(whoosh_build, "SEGMENT_MB", 0.01)


def answers(backend) -> list:
    queries = [
        SearchQuery(q=q) for q in ("药品", "hospital", "371502-SCJ-0001", "公交车", "医保药店", "网约", "")
    ]
    queries += [SearchQuery(q="药品", filters={"format": ["CSV"]}), SearchQuery(sort="name", start=3, rows=4)]
    return [
        (r.total, [(h.name, round(h.score, 4), str(h.title_html)) for h in r.hits], r.facets)
        for r in map(backend.search, queries)
    ]


def test_a_large_rebuild_written_in_processes_answers_as_one_written_in_one(
    tmp_path, in_processes, monkeypatch
):
    from dataclasses import replace

    # Distinct names and dates: results that tie on score and date are in index order, which
    # the processes do not keep.
    docs = [
        replace(d, name=f"{d.name}-{i}", published=dt.date(2020, 1, 1) + dt.timedelta(days=i))
        for i, d in enumerate(DOCS + EVERYDAY)
    ]
    in_one = WhooshBackend(tmp_path / "one", refresh_seconds=0)
    with monkeypatch.context() as one_core:
        one_core.setattr(os, "cpu_count", lambda: 1)
        assert in_one.rebuild(docs) == len(docs)
    parallel = WhooshBackend(tmp_path / "parallel", refresh_seconds=0)
    parallel.rebuild(DOCS[:2])  # an index to replace
    assert parallel.rebuild(docs) == len(docs)
    assert len(parallel.snapshot().leaves) > 2  # several processes, several segments each
    assert parallel.search(SearchQuery()).total == in_one.search(SearchQuery()).total == len(docs)
    assert answers(parallel) == answers(in_one)


def test_a_rebuild_that_fails_in_a_writer_process_keeps_the_old_index(tmp_path, in_processes):
    backend = WhooshBackend(tmp_path / "index", refresh_seconds=0)
    backend.rebuild(DOCS[:2])
    broken = doc("broken", "坏数据", published="2024-01-01")  # not a date: the writer process fails on it
    with pytest.raises(RuntimeError, match="writer process failed"):
        backend.rebuild(EVERYDAY + [broken] + EVERYDAY)
    assert names(backend.search(SearchQuery(q="药品"))) == ["drugs", "food"]
    assert backend.search(SearchQuery()).total == 2
    backend.rebuild(DOCS[2:4])  # the lock was given back
    assert names(backend.search(SearchQuery(sort="name"))) == ["hosp", "bus"]
