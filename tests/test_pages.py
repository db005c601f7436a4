"""The bureau's pages: notices (公告, dated, the newest on the home page), the guide, FAQ, terms
and privacy policy, in Chinese and English, written in Markdown that can carry no script;
every save is a version, audited; only the bureau edits them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Page
from tests.helpers import hidden_fields, login, post_form


@pytest.fixture
def roles(make_user):
    return {
        "bureau": make_user(bureau=True),
        "curator": make_user(curator_of="dcf-scjgj"),
        "citizen": make_user(),
    }


def client_as(app, who):
    c = app.test_client()
    login(c, *who[1:])
    return c


def notice(client, **fields):
    data = {
        "kind": "notice",
        "title": "平台升级维护公告",
        "title_en": "Maintenance notice",
        "body": "本平台将于 **12 月 10 日** 升级维护。详见[使用指南](/pages/guide)。",
        "body_en": "The portal will be down for maintenance on **10 December**.",
        "published": "y",
        **fields,
    }
    return post_form(client, "/admin/pages/new", data, follow_redirects=True)


def page_id(ctx, title: str) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(Page.id).where(Page.title == title))


def test_a_notice_is_listed_dated_and_the_newest_is_on_the_home_page(app, roles):
    bureau = client_as(app, roles["bureau"])
    assert "平台升级维护公告" in notice(bureau).get_data(as_text=True)
    notice(bureau, title="第二季度数据开放计划", title_en="", body_en="")
    ctx = app.extensions["portal"]
    first, second = page_id(ctx, "平台升级维护公告"), page_id(ctx, "第二季度数据开放计划")
    public = app.test_client()
    listing = public.get("/notices").get_data(as_text=True)
    assert listing.index("第二季度数据开放计划") < listing.index("平台升级维护公告")  # newest first
    assert re.search(r"<time datetime=\"\d{4}-\d\d-\d\d\">", listing)
    home = public.get("/").get_data(as_text=True)
    assert f"/notices/{second}" in home and f"/notices/{first}" not in home
    page = public.get(f"/notices/{first}").get_data(as_text=True)
    assert "<strong>12 月 10 日</strong>" in page and '<a href="/pages/guide">使用指南</a>' in page
    english = public.get(f"/notices/{first}?lang=en").get_data(as_text=True)
    assert "Maintenance notice" in english and "<strong>10 December</strong>" in english
    # No English: the Chinese, with a note saying so.
    fallback = public.get(f"/notices/{second}?lang=en").get_data(as_text=True)
    assert "第二季度数据开放计划" in fallback and "This page has no English version" in fallback
    assert "/notices" in public.get("/pages/guide").get_data(as_text=True)  # the footer links


def test_the_guide_is_edited_with_its_history_kept_and_audited(app, roles):
    public = app.test_client()
    assert "查找数据" in public.get("/pages/guide").get_data(as_text=True)  # the page it starts with
    for kind in ("faq", "terms", "privacy"):
        assert public.get(f"/pages/{kind}").status_code == 200
    assert public.get("/pages/other").status_code == 404
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        guide_id = s.scalar(select(Page.id).where(Page.kind == "guide"))
    bureau = client_as(app, roles["bureau"])
    saved = post_form(
        bureau,
        f"/admin/pages/{guide_id}",
        {
            "title": "使用指南",
            "body": "## 新的指南\n\n- 第一步\n- 第二步",
            "title_en": "",
            "body_en": "",
            "published": "y",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "页面「使用指南」已保存。" in saved and "修改记录" in saved
    page = public.get("/pages/guide").get_data(as_text=True)
    assert "<h2>新的指南</h2>" in page and "<li>第一步</li>" in page
    assert "This page has no English version" in public.get("/pages/guide?lang=en").get_data(as_text=True)
    with ctx.sessions() as s:
        guide = s.get(Page, guide_id)
        assert [v.body[:7] for v in guide.versions] == ["## 新的指南", "## 查找数据"]
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "page_saved")).all()
        assert event.target == f"page:{guide_id}" and event.detail["kind"] == "guide"
    second = post_form(
        bureau,
        "/admin/pages/new",
        {"kind": "guide", "title": "另一个指南", "body": "正文内容"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "该页面已存在，请编辑现有页面" in second


def test_markdown_and_titles_carry_no_script(app, roles):
    bureau = client_as(app, roles["bureau"])
    notice(
        bureau,
        title="<script>alert('t')</script>公告",
        body=(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[点我](javascript:alert(3)) "
            "[外站](//evil.example/x) [数据](data:text/html,hi) ![图](https://evil.example/p.png) "
            "[好链接](https://www.dongchangfu.gov.cn/) [站内](/search?q=药品)"
        ),
        title_en="",
        body_en="",
    )
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        pid = s.scalar(select(Page.id).where(Page.kind == "notice"))
    public = app.test_client()
    for url in (f"/notices/{pid}", "/notices", "/"):
        html = public.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;公告" in html
    page = public.get(f"/notices/{pid}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript' not in page and 'href="//evil' not in page and 'href="data:' not in page
    assert "<img" not in page.split('class="prose"', 1)[1]
    assert '<a href="https://www.dongchangfu.gov.cn/">好链接</a>' in page
    assert '<a href="/search?q=%E8%8D%AF%E5%93%81">站内</a>' in page


def test_an_unpublished_notice_is_not_shown(app, roles):
    bureau = client_as(app, roles["bureau"])
    notice(bureau, published="")
    pid = page_id(app.extensions["portal"], "平台升级维护公告")
    public = app.test_client()
    assert public.get(f"/notices/{pid}").status_code == 404
    assert "平台升级维护公告" not in public.get("/notices").get_data(as_text=True)
    assert "平台升级维护公告" not in public.get("/").get_data(as_text=True)


@pytest.mark.parametrize("who", ["curator", "citizen"])
def test_only_the_bureau_edits_pages(app, roles, who):
    c = client_as(app, roles[who])
    assert c.get("/admin/pages").status_code == 403
    form = c.get("/notices").get_data(as_text=True)
    answer = c.post(
        "/admin/pages/new", data={**hidden_fields(form), "kind": "notice", "title": "假公告", "body": "假的"}
    )
    assert answer.status_code == 403
    assert "假公告" not in app.test_client().get("/notices").get_data(as_text=True)
