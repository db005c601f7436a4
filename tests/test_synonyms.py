"""The bureau's synonym list (/admin/synonyms): the bureau adds, changes and removes entries,
each change is audited, and searches in every process follow without a restart."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, SearchSynonym
from tests.helpers import post_form


@pytest.fixture
def bureau(client, auth, make_user):
    _, email, password = make_user(bureau=True, name="大数据局张三")
    auth.login(email, password)
    return client


def hits(client, q: str) -> list[str]:
    """The datasets the search page lists (titles are marked up where they match)."""
    import re

    page = client.get("/search", query_string={"q": q}).get_data(as_text=True)
    return re.findall(r'<h2 class="hit-title"><a href="/dataset/([^"]+)"', page)


BUS_STOPS, PHARMACIES = "371502-jty-0001", "371502-scj-0001"


def audit(ctx, action: str) -> list[AuditEvent]:
    with ctx.sessions() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_the_bureau_adds_a_synonym_and_search_finds_by_it_at_once(portal_data, bureau):
    assert hits(bureau, "候车亭") == []
    page = post_form(
        bureau, "/admin/synonyms", {"term": "候车亭", "expansions": "公交站点、站台"}, follow_redirects=True
    )
    assert "已保存：搜索「候车亭」也查找「公交站点、站台」。" in page.get_data(as_text=True)
    assert hits(bureau, "候车亭") == [BUS_STOPS]
    assert hits(bureau, "哪里有候车亭") == [BUS_STOPS]
    [event] = audit(portal_data, "search_synonym_added")
    assert event.target == "synonym:候车亭" and event.detail == {"expansions": ["公交站点", "站台"]}
    assert event.actor_id is not None
    listing = bureau.get("/admin/synonyms", query_string={"q": "候车"}).get_data(as_text=True)
    assert "候车亭" in listing and "公交站点、站台" in listing


def test_changing_and_removing_an_entry(portal_data, bureau):
    post_form(bureau, "/admin/synonyms", {"term": "Bus Stop", "expansions": "公交站点"})
    page = post_form(
        bureau,
        "/admin/synonyms",
        {"term": "bus stop", "expansions": "药品零售\n公交站点"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "也查找「药品零售、公交站点」" in page
    [event] = audit(portal_data, "search_synonym_changed")
    assert event.detail == {"before": ["公交站点"], "expansions": ["药品零售", "公交站点"]}
    assert PHARMACIES in hits(bureau, "bus stop")
    with portal_data.sessions() as s:
        row = s.scalar(select(SearchSynonym).where(SearchSynonym.term == "bus stop"))
    page = post_form(
        bureau, f"/admin/synonyms/{row.id}/remove", {}, page="/admin/synonyms", follow_redirects=True
    )
    assert "已删除同义词「bus stop」。" in page.get_data(as_text=True)
    assert PHARMACIES not in hits(bureau, "bus stop")
    [removed] = audit(portal_data, "search_synonym_removed")
    assert removed.target == "synonym:bus stop" and removed.detail == {"expansions": ["药品零售", "公交站点"]}
    assert bureau.post(f"/admin/synonyms/{row.id}/remove", data={}).status_code in (400, 404)  # gone


@pytest.mark.parametrize(
    "term,expansions,message",
    [
        ("", "户籍", "请填写检索词"),
        ("户口簿", "", "请填写规范用词"),
        ("户", "户籍", "检索词须为 2–50 个字"),
        ("户口簿", "户口簿", "规范用词不能与检索词相同"),
        ("户口簿", "、".join(f"词{i}" for i in range(11)), "规范用词最多 10 个"),
    ],
)
def test_an_entry_that_cannot_be_used_is_refused_with_the_reason(
    portal_data, bureau, term, expansions, message
):
    with portal_data.sessions() as s:
        before = s.scalars(select(SearchSynonym.term)).all()
    page = post_form(
        bureau, "/admin/synonyms", {"term": term, "expansions": expansions}, follow_redirects=True
    )
    assert message in page.get_data(as_text=True)
    with portal_data.sessions() as s:
        assert s.scalars(select(SearchSynonym.term)).all() == before
    assert audit(portal_data, "search_synonym_added") == []


def test_other_processes_follow_within_seconds(portal_data, bureau, settings, monkeypatch):
    """Another web worker (its own PortalContext) reads the list again once its few seconds
    are up: no restart, no reindex."""
    from portal.context import PortalContext
    from portal.search import SearchQuery
    from portal.search import synonyms as synonyms_module

    other = PortalContext(settings)
    try:

        def found() -> list[str]:
            return [h.title for h in other.search.search(SearchQuery(q="候车亭")).hits]

        assert found() == []
        post_form(bureau, "/admin/synonyms", {"term": "候车亭", "expansions": "公交站点"})
        now = synonyms_module.time.monotonic()
        monkeypatch.setattr(synonyms_module.time, "monotonic", lambda: now + other.synonyms.seconds + 0.1)
        assert found() == ["公交站点位置"]
    finally:
        other.engine.dispose()


def test_the_page_in_english(bureau):
    bureau.get("/lang/en")
    page = bureau.get("/admin/synonyms").get_data(as_text=True)
    assert "Search synonyms" in page and "What people type" in page
