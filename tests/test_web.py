"""Public pages show what is published and nothing else (rules.md 6), in both languages."""

from __future__ import annotations

import re

import pytest

HIDDEN = ["执法检查底稿", "公益岗位人员名单", "Bus routes"]


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_home_counts_newest_and_domains(client, portal_data):
    page = text(client.get("/"))
    assert "药品零售企业名录" in page and "企业信用风险分类结果" in page and "公交站点位置" in page
    assert not any(h in page for h in HIDDEN)
    assert re.search(r"<strong>2</strong>\s*<span>无条件开放</span>", page)
    assert re.search(r"<strong>1</strong>\s*<span>有条件开放</span>", page)
    assert "/domain/%E4%BA%A4%E9%80%9A%E8%BF%90%E8%BE%93" in page  # 交通运输


@pytest.mark.parametrize("name", ["371502-scj-0003", "371502-scj-0004", "371502-jty-0002", "no-such-dataset"])
def test_not_open_held_withdrawn_and_unknown_are_not_found(client, portal_data, name):
    assert client.get(f"/dataset/{name}").status_code == 404
    assert client.get(f"/dataset/{name}/download/1.csv").status_code == 404
    assert client.get(f"/dataset/{name}/bundle/1.zip").status_code == 404


@pytest.mark.parametrize("q", ["执法", "公益岗位", "身份证号", "Bus", "routes", "底稿"])
def test_search_never_finds_hidden_datasets(client, portal_data, q):
    page = text(client.get("/search", query_string={"q": q}))
    assert not any(h in page for h in HIDDEN)
    assert "没有找到符合条件的数据" in page


def test_search_chinese_word_finds_longer_title_with_highlight(client, portal_data):
    page = text(client.get("/search", query_string={"q": "药品"}))
    assert "<mark>药品</mark>零售企业名录" in page
    assert "共 1 项" in page


def test_search_by_field_name_code_and_department(client, portal_data):
    assert "公交站点位置" in text(client.get("/search", query_string={"q": "经度"}))
    assert "药品零售企业名录" in text(client.get("/search", query_string={"q": "371502-SCJ-0001"}))
    page = text(client.get("/search", query_string={"q": "交通运输局"}))
    assert "公交站点位置" in page and "药品零售企业名录" not in page


def test_facets_filter_and_count(client, portal_data):
    page = text(client.get("/search"))
    assert "共 3 项" in page
    assert re.search(r"有条件开放</span> <span class=\"n\">1</span>", page)
    filtered = text(client.get("/search", query_string={"open_class": "conditional"}))
    assert "共 1 项" in filtered and "企业信用风险分类结果" in filtered and "公交站点位置" not in filtered


def test_no_dataset_with_every_word_shows_those_with_some_and_says_so(client, portal_data):
    page = text(client.get("/search", query_string={"q": "药品 火星"}))
    assert "没有同时包含全部关键词的数据" in page and "/dataset/371502-scj-0001" in page
    assert "没有找到符合条件的数据" not in page
    every = text(client.get("/search", query_string={"q": "药品 名录"}))
    assert "没有同时包含全部关键词的数据" not in every and "/dataset/371502-scj-0001" in every


def test_empty_result_suggests_what_to_try(client, portal_data):
    page = text(client.get("/search", query_string={"q": "火星 火箭"}))
    assert "没有找到符合条件的数据" in page
    filtered = text(client.get("/search", query_string={"q": "药品", "open_class": "conditional"}))
    assert "去掉筛选条件" in filtered


def test_sort_by_name_and_newest(client, portal_data):
    newest = text(client.get("/search", query_string={"sort": "newest"}))
    assert newest.index("公交站点位置") < newest.index("药品零售企业名录")  # 2025-06-01 before 2024-03-01


def test_paging(client, portal_data):
    from portal.views import catalog

    catalog.PAGE_SIZE, old = 2, catalog.PAGE_SIZE
    try:
        first = text(client.get("/search", query_string={"sort": "name"}))
        second = text(client.get("/search", query_string={"sort": "name", "page": 2}))
    finally:
        catalog.PAGE_SIZE = old
    titles = lambda page: re.findall(r'class="hit-title"><a href="/dataset/([^"]+)"', page)  # noqa: E731
    assert len(titles(first)) == 2 and len(titles(second)) == 1
    assert not set(titles(first)) & set(titles(second))
    current = r'<a class="page-number" aria-current="page" href="[^"]*"><span class="sr">第 %d 页</span>'
    assert re.search(current % 1, first) and 'rel="next"' in first and "共 2 页" in first
    assert re.search(current % 2, second) and 'rel="prev"' in second and 'rel="next"' not in second


def test_a_page_past_the_last_shows_the_last_page(client, portal_data):
    """Never 「第 999 / 3 页」 with nothing on it: an old or typed page number leads to the last page."""
    from portal.views import catalog

    catalog.PAGE_SIZE, old = 2, catalog.PAGE_SIZE
    try:
        response = client.get("/search", query_string={"sort": "name", "page": 999})
        assert response.status_code == 302 and "page=2" in response.headers["Location"]
        assert "sort=name" in response.headers["Location"]
        assert (
            client.get("/search", query_string={"q": "火星", "page": 3}).headers["Location"]
            == "/search?q=%E7%81%AB%E6%98%9F"
        )
        assert client.get("/search", query_string={"page": 10**30}).status_code == 302  # no overflow, no 500
    finally:
        catalog.PAGE_SIZE = old


@pytest.mark.parametrize("q", ["", "   ", "%", "*", "％", "**", "%%"])
def test_a_blank_or_wildcard_search_shows_every_dataset_under_a_plain_heading(client, portal_data, q):
    page = text(client.get("/search", query_string={"q": q}))
    assert "共 3 项，全部开放数据" in page and "关键词" not in page
    assert 'value=""' in page.split('id="q"')[1][:80]  # the box is left empty, not holding "%"


def test_dataset_page_shows_every_catalog_field_schema_preview_downloads_and_attribution(client, portal_data):
    page = text(client.get("/dataset/371502-scj-0001"))
    for expected in [
        "371502-SCJ-0001",
        "东昌府区市场监督管理局",
        "市场监管",
        "每月",
        "2024-03-01",
        "药店",
        "企业名称",
        "文本",
        "聊城市鲁西大药房古楼店",
        "CSV",
        "XLSX",
        "JSON",
        "PARQUET",
        "数据来源：东昌府区市场监督管理局《药品零售企业名录》，获取日期：",
        "当前版本",
        "package_show",
    ]:
        assert expected in page, expected
    assert len(re.findall(r"<code class=\"sha\">[0-9a-f]{64}</code>", page)) == 4


def test_conditional_page_shows_conditions_and_basis_but_no_data(client, portal_data):
    page = text(client.get("/dataset/371502-scj-0002"))
    assert "仅限监管用途" in page and "《中华人民共和国数据安全法》第三十八条" in page
    assert "可申请的字段" in page and "企业名称" in page
    assert "聊城市鲁西大药房古楼店" not in page and "/download/" not in page


def test_preview_pages(client, portal_data):
    from portal.views import catalog

    catalog.PREVIEW_ROWS, old = 20, catalog.PREVIEW_ROWS
    # the preview table only (the map preview names every stop of the table in its points)
    first = text(client.get("/dataset/371502-jty-0001")).split('class="preview"', 1)[1].split("</nav>")[0]
    third = text(client.get("/dataset/371502-jty-0001", query_string={"preview": 3}))
    third = third.split('class="preview"', 1)[1].split("</nav>")[0]
    catalog.PREVIEW_ROWS = old
    assert "东昌路0号站" in first and "东昌路19号站" in first and "东昌路20号站" not in first
    assert "东昌路40号站" in third and "第 3 / 3 页" in third


def test_department_domain_and_open_lists(client, portal_data):
    dept = text(client.get("/department/dcf-scjgj"))
    assert "药品零售企业名录" in dept and "公交站点位置" not in dept and "执法检查底稿" not in dept
    domain = text(client.get("/domain/交通运输"))
    assert "公交站点位置" in domain and "药品零售企业名录" not in domain
    lists = text(client.get("/department/dcf-scjgj/lists"))
    unconditional, conditional = lists.split('id="conditional"')
    assert "药品零售企业名录" in unconditional and "企业信用风险分类结果" in conditional
    assert "仅限监管用途" in conditional and not any(h in lists for h in HIDDEN)
    assert client.get("/department/nope").status_code == 404


def test_open_list_files(client, portal_data):
    import io

    from openpyxl import load_workbook

    csv_text = client.get("/department/dcf-scjgj/lists/conditional.csv").get_data().decode("utf-8-sig")
    assert (
        csv_text.splitlines()[0].startswith("信息资源代码,信息资源名称")
        and "企业信用风险分类结果" in csv_text
    )
    assert "法律依据" in csv_text.splitlines()[0]
    xlsx = client.get("/department/dcf-scjgj/lists/unconditional.xlsx")
    rows = list(load_workbook(io.BytesIO(xlsx.get_data())).active.iter_rows(values_only=True))
    assert rows[1][:2] == ("371502-SCJ-0001", "药品零售企业名录") and len(rows) == 2


def test_english_at_a_click_catalog_text_unchanged(client, portal_data):
    switched = client.get("/lang/en", headers={"Referer": "http://localhost/dataset/371502-scj-0001"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/dataset/371502-scj-0001"
    page = text(client.get("/dataset/371502-scj-0001"))
    assert "Catalog record" in page and "Resource code" in page and 'lang="en"' in page
    assert "药品零售企业名录" in page  # the department's own words stay
    assert "目录信息" in text(client.get("/dataset/371502-scj-0001", query_string={"lang": "zh"}))


def test_language_switch_never_redirects_off_site(client):
    response = client.get("/lang/en", query_string={"next": "https://evil.example/phish"})
    assert response.headers["Location"] == "/"


def test_care_mode_enlarges_text(client, portal_data):
    client.get("/care/on")
    assert '<body class="care">' in text(client.get("/"))
    client.get("/care/off")
    assert '<body class="">' in text(client.get("/"))


def test_an_english_title_the_department_gives_is_found_by_english_queries(client, portal_data, make_user):
    """Issue 17, item 3: English queries find datasets by their English fields."""
    from tests.helpers import login, post_form

    assert "/dataset/371502-scj-0001" not in text(client.get("/search", query_string={"q": "pharmacy"}))
    _, email, password = make_user(curator_of="dcf-scjgj")
    login(client, email, password)
    post_form(
        client,
        "/console/datasets/371502-scj-0001/edit",
        {"title_en": "Retail pharmacies"},
        page="/console/datasets/371502-scj-0001",
    )
    for q in ("pharmacy", "Retail pharmacies", "pharmacies 药品"):
        assert "/dataset/371502-scj-0001" in text(client.get("/search", query_string={"q": q})), q
    client.get("/lang/en")
    page = text(client.get("/search", query_string={"q": "pharmacy"}))
    assert '<p class="title-en" lang="en">Retail pharmacies</p>' in page
    assert "<title>Retail pharmacies ·" in text(client.get("/dataset/371502-scj-0001"))  # as the heading says


CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def facet_words(page: str, facet: str) -> list[str]:
    """The words of one facet's values, tags and counts left out."""
    section = re.search(rf'<h2 id="facet-{facet}">(.*?)</section>', page, re.S)
    if not section:
        return []
    return [
        re.sub(r"<[^>]+>", "", v)
        for v in re.findall(
            r'<span class="facet-value">(.*?)</span> <span class="n">', section.group(1), re.S
        )
    ]


def test_english_pages_show_data_domains_and_update_cycles_in_english(client, portal_data):
    """The controlled values (data domains, update cycles) are words of the interface: English on
    English pages in the filters, the chosen filters, the home page's tiles and a domain's heading."""
    client.get("/lang/en")
    for path in ("/search", "/department/dcf-scjgj", "/search?domain=交通运输"):
        page = text(client.get(path))
        seen = facet_words(page, "domain") + facet_words(page, "update_cycle")
        assert seen and not [w for w in seen if CJK.search(w)], (path, seen)
    chosen = text(client.get("/search", query_string={"domain": "交通运输"}))
    assert re.search(r"Domain: <span>Transport</span>", chosen)
    home = text(client.get("/"))
    tiles = [
        re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<span class="topic-name">(.*?)</span></span>', home)
    ]
    assert "Transport" in tiles and not [t for t in tiles if CJK.search(t)], tiles
    domain = text(client.get("/domain/交通运输"))
    assert "<h1>Transport</h1>" in domain and "<title>Transport ·" in domain
    assert "<h1>交通运输</h1>" in text(client.get("/domain/交通运输", query_string={"lang": "zh"}))


def test_a_tables_columns_have_types_in_words_not_arrow_names(client, portal_data):
    """The schema says 文本, 整数 (Text, Integer), not `string`, `int64`, `time32[s]`."""
    for lang, expected in (("zh", "文本"), ("en", "Text")):
        page = text(client.get("/dataset/371502-scj-0001", query_string={"lang": lang}))
        schema = re.search(r'<table class="schema">(.*?)</table>', page, re.S).group(1)
        types = re.findall(r"</td><td>([^<]*)</td></tr>", schema)
        assert expected in types, (lang, types)
        assert not [
            t for t in types if re.search(r"string|int\d|double|float|time\d|date\d|timestamp|\[", t)
        ], types
