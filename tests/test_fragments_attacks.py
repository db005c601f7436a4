"""Attacks on the kept parts of pages (portal/fragments.py): an attacker, a curious citizen and a
careless department try to see another reader's data in a kept part, to make the portal serve
something stale after a change, to poison a key, to fill the store, and to catch it out while
Redis is away. Each test states what a reader would see; the oracle for staleness is the page a
full render gives at that moment (the store and Redis's shared parts emptied first)."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import re
import socket
import threading

import pytest
import redis
from sqlalchemy import func, select

from portal.models import Dataset, Department, Grant, LicensedDownload, OutboxMessage, User
from tests.helpers import (
    SEARCH_BACKEND,
    accept,
    another_process,
    approve,
    granted,
    kept_in_worker,
    login,
    post_form,
    submit,
)

REDIS_URL = "redis://127.0.0.1:6379/12"
OPEN, OPEN_TITLE = "371502-scj-0001", "药品零售企业名录"
LINK = f'href="/dataset/{OPEN}"'  # a search highlights the words of a title: its link is what is listed
COND = "371502-scj-0002"
BUS = "371502-jty-0001"
# What differs between two renders of one page for one reader: the forms' per-render secrets.
SECRETS = re.compile(r'name="(csrf_token|form_nonce)" value="[^"]*"')


def _config(settings, kind: str, **extra) -> dict:
    config = {
        "instance": settings.instance_path,
        "database_url": settings.database_url,
        "search_backend": settings.search_backend,
        "TESTING": True,
        **extra,
    }
    if kind.startswith("redis"):
        config["redis_url"] = REDIS_URL
    if kind.endswith("page cache off"):
        config["page_cache_seconds"] = 0
    return config


@pytest.fixture(params=["generation file", "redis", "redis, page cache off"])
def app(request, settings):
    """As tests/test_fragments.py: without Redis (the generation file), with Redis (db 12 here),
    and with Redis but no page cache."""
    from portal.app import create_app

    if request.param.startswith("redis"):
        redis.Redis.from_url(REDIS_URL).flushdb()
    app = create_app(_config(settings, request.param))
    yield app
    app.extensions["portal"].engine.dispose()


def uses_redis(app) -> bool:
    return bool(app.extensions["portal"].settings.redis_url)


def signed_in(app, make_user, name="读者", **kind):
    client = app.test_client()
    _, email, password = make_user(name=name, **kind)
    login(client, email, password)
    return client


def holder_client(app, people):
    client = app.test_client()
    login(client, people["applicant"][1], people["applicant"][2])
    return client


def shared_parts(app) -> dict[str, str]:
    """Redis's second level: every part text other workers and nodes would be served."""
    if not uses_redis(app):
        return {}
    r = redis.Redis.from_url(REDIS_URL)
    ns = app.extensions["portal"].cache_namespace
    return {k.decode(): (r.get(k) or b"").decode() for k in r.scan_iter(f"portal:{ns}:parts:*")}


def kept_texts(app) -> list[str]:
    """Every part kept for every reader: in this worker and, with Redis, shared."""
    return kept_in_worker(app) + list(shared_parts(app).values())


def forget_parts(app) -> None:
    """Empty this worker's store and Redis's shared parts (the next request renders in full)."""
    app.extensions["portal"].fragments.clear()
    if uses_redis(app):
        r = redis.Redis.from_url(REDIS_URL)
        for key in shared_parts(app):
            r.delete(key)


def fresh(app, client, url, **kw):
    """The answer a full render gives now."""
    forget_parts(app)
    return client.get(url, **kw)


def page(response) -> str:
    return SECRETS.sub("", response.get_data(as_text=True))


def _diff(served: str, rendered: str) -> str:
    lines = difflib.unified_diff(
        served.splitlines(), rendered.splitlines(), "served", "rendered", lineterm="", n=0
    )
    return "\n".join(line[:300] for line in list(lines)[:12])


def assert_as_rendered(app, client, urls) -> None:
    """Each URL answers as a full render would, now (status, body, file name). Every answer is
    taken before the first full render, which empties the store."""
    served = [(url, client.get(url)) for url in urls]
    for url, answer in served:
        rendered = fresh(app, client, url)
        assert (answer.status_code, page(answer)) == (rendered.status_code, page(rendered)), (
            f"{url}: kept part differs from a full render (stale): {_diff(page(answer), page(rendered))}"
        )
        assert answer.headers.get("Content-Disposition") == rendered.headers.get("Content-Disposition"), url


@contextlib.contextmanager
def committing_in(where, app, settings):
    """A session of this process (`here`) or of another process (`elsewhere`)."""
    if where == "here":
        with app.extensions["portal"].sessions() as s:
            yield s, app.extensions["portal"]
    else:
        with another_process(app, settings) as other, other.sessions() as s:
            yield s, other


def dataset(s, name=OPEN) -> Dataset:
    return s.scalar(select(Dataset).where(Dataset.name == name))


def csv_url(portal_data, name=OPEN) -> str:
    with portal_data.sessions() as s:
        table = dataset(s, name).current_distributions[0].tables[0]
        return f"/dataset/{name}/download/{table.id}.csv"


# ====================================================================== one reader's data


def test_no_name_follow_favourite_notice_or_token_of_one_reader_reaches_another(app, portal_data, make_user):
    first = signed_in(app, make_user, name="王小明")
    post_form(first, "/follow", {"kind": "dataset", "target": OPEN}, page=f"/dataset/{OPEN}")
    post_form(first, f"/dataset/{OPEN}/favourite", {"on": "1"}, page=f"/dataset/{OPEN}")
    with portal_data.sessions() as s:
        email = s.scalar(select(User.email).where(User.name == "王小明"))
        s.add(OutboxMessage(to=email, subject="新版本", body="…", channel="notice"))
        s.commit()
    urls = [f"/dataset/{OPEN}", "/search?q=药品", "/", "/department/dcf-scjgj", f"/dataset/{BUS}"]
    first_pages = {url: first.get(url).get_data(as_text=True) for url in urls}
    assert "已关注" in first_pages[f"/dataset/{OPEN}"] and "已收藏" in first_pages[f"/dataset/{OPEN}"]
    assert 'class="unread"' in first_pages["/"]
    second = signed_in(app, make_user, name="李四")
    anonymous = app.test_client()
    for url in urls:
        for reader, name in ((second, "李四"), (anonymous, None)):
            html = reader.get(url).get_data(as_text=True)
            assert "王小明" not in html and "已关注" not in html and "已收藏" not in html, url
            assert 'class="unread"' not in html, url
            first_tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', first_pages[url]))
            assert not first_tokens & set(re.findall(r'name="csrf_token" value="([^"]+)"', html)), url
            if name:
                assert name in html, url
    assert not any("王小明" in t or "csrf_token" in t or "form_nonce" in t for t in kept_texts(app))
    # The second reader's own forms, rendered around the first one's kept parts, post.
    answer = post_form(
        second,
        f"/dataset/{OPEN}/rating",
        {"stars": "4", "comment": "二号读者的评价"},
        page=f"/dataset/{OPEN}",
    )
    assert answer.status_code == 302
    assert "二号读者的评价" in first.get(f"/dataset/{OPEN}").get_data(as_text=True)


@pytest.mark.parametrize("app", ["generation file"], indirect=True)
def test_console_and_admin_links_stay_with_their_holders_in_either_order(app, portal_data, make_user):
    bureau = signed_in(app, make_user, name="局管理员", bureau=True)
    curator = signed_in(app, make_user, name="科员", curator_of="dcf-scjgj")
    citizen = signed_in(app, make_user, name="市民")
    anonymous = app.test_client()
    admin_link, console_link = 'href="/admin/"', 'href="/console"'
    for url in ("/", f"/dataset/{OPEN}", "/search?q=公交", "/lists"):
        for order in ((bureau, curator, citizen, anonymous), (anonymous, citizen, curator, bureau)):
            seen = {id(c): c.get(url).get_data(as_text=True) for c in order}
            assert admin_link in seen[id(bureau)] and console_link not in seen[id(bureau)], url
            assert console_link in seen[id(curator)] and admin_link not in seen[id(curator)], url
            for other in (citizen, anonymous):
                assert admin_link not in seen[id(other)] and console_link not in seen[id(other)], url
            assert "退出" not in seen[id(anonymous)] and "登录" in seen[id(anonymous)], url


def test_language_and_large_text_never_mix(app, portal_data, make_user):
    english = app.test_client()
    english.set_cookie("lang", "en")
    care = signed_in(app, make_user)
    care.set_cookie("care", "1")
    chinese = app.test_client()
    asked_english = signed_in(app, make_user)
    for url in (f"/dataset/{OPEN}", "/search?q=药品", "/", "/department/dcf-scjgj"):
        for _round in range(2):  # rendered, then served from the kept parts, in every order
            en = english.get(url).get_data(as_text=True)
            by_link = asked_english.get(url + ("&" if "?" in url else "?") + "lang=en").get_data(as_text=True)
            zh = chinese.get(url).get_data(as_text=True)
            big = care.get(url).get_data(as_text=True)
            for html in (en, by_link):
                assert '<html lang="en"' in html and "Datasets" in html and "数据目录</a>" not in html, url
                assert 'class="care"' not in html and "Standard view" not in html, url
            assert '<html lang="zh-CN"' in zh and "Datasets" not in zh and "标准版" not in zh, url
            assert 'class="care"' in big and "标准版" in big and "Datasets" not in big, url
            assert '<html lang="zh-CN"' in big and "关怀版</a>" not in big, url
        if url.startswith("/dataset"):
            assert "Catalog record" in en and "目录信息" in zh and "目录信息" in big


def test_a_flashed_message_reaches_its_reader_only(app, portal_data, make_user):
    writer, reader = signed_in(app, make_user, name="评价人"), signed_in(app, make_user, name="旁观者")
    reader.get(f"/dataset/{OPEN}")
    answer = post_form(
        writer, f"/dataset/{OPEN}/rating", {"stars": "5", "comment": "很好"}, page=f"/dataset/{OPEN}"
    )
    assert answer.status_code == 302
    mine = writer.get(answer.headers["Location"]).get_data(as_text=True)
    theirs = reader.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'class="flash' in mine.split('<main id="main"')[1].split("<h1")[0]
    assert 'class="flash' not in theirs.split('<main id="main"')[1].split("<h1")[0]
    assert not any('class="flash message"' in t for t in kept_texts(app))


def test_licensed_previews_and_rows_reach_no_one_else_in_either_order(app, portal_data, make_user, people):
    """A grant holder's page shows licensed rows; another holder with a narrower grant, a
    signed-in stranger and an anonymous reader never get them, whoever asks first."""
    granted(portal_data, people, fields=["企业名称", "所属街道"])
    other_id, other_email, other_password = make_user("company", name="另一家公司")
    with portal_data.sessions() as s:
        application = submit(s, s.get(User, other_id))
        approve(s, s.get(User, people["curator"][0]), application, fields=["企业名称"])
        accept(s, s.get(User, other_id), application)
    holder, narrow = holder_client(app, people), app.test_client()
    login(narrow, other_email, other_password)
    stranger, anonymous = signed_in(app, make_user, name="路人"), app.test_client()
    licensed = "授权范围内的字段和行"
    for order in ((holder, narrow, stranger, anonymous), (anonymous, stranger, narrow, holder)):
        seen = {id(c): c.get(f"/dataset/{COND}").get_data(as_text=True) for c in order}
        assert licensed in seen[id(holder)] and "所属街道" in seen[id(holder)].split("see-filter")[1]
        narrow_form = seen[id(narrow)].split("see-filter")[1].split("</form>")[0]
        assert licensed in seen[id(narrow)] and "所属街道" not in narrow_form
        for c in (stranger, anonymous):
            assert licensed not in seen[id(c)] and "see-filter" not in seen[id(c)]
        rows = {id(c): c.get(f"/api/data/{COND}?limit=3") for c in order}
        assert rows[id(holder)].status_code == 200 and "所属街道" in rows[id(holder)].get_data(as_text=True)
        assert rows[id(narrow)].status_code == 200
        assert "所属街道" not in rows[id(narrow)].get_data(as_text=True)
        assert rows[id(stranger)].status_code == 403 and rows[id(anonymous)].status_code == 401
        shows = {id(c): c.get(f"/api/3/action/package_show?id={COND}").get_json() for c in order}
        assert len({json.dumps(v, sort_keys=True) for v in shows.values()}) == 1  # one answer for all


def test_each_view_of_licensed_rows_on_the_page_is_logged(app, portal_data, people):
    """portal/views/previews.py logs the licensed rows a page shows "as the API logs it": once
    per call. A kept part renders once, so later views by the holder are not in the grant's log."""
    grant = granted(portal_data, people, fields=["企业名称", "所属街道"])
    holder = holder_client(app, people)
    for _view in range(3):
        assert "授权范围内的字段和行" in holder.get(f"/dataset/{COND}").get_data(as_text=True)
    with portal_data.sessions() as s:
        logged = s.scalar(select(func.count()).where(LicensedDownload.grant_id == grant.id))
    assert logged == 3, (
        f"three views of licensed rows on the dataset page, {logged} in the grant's log: the "
        "kept part (views/catalog.py _dataset_parts → previews._filtered → log_api_rows) logs the "
        "first render only"
    )


@pytest.mark.parametrize("app", ["redis", "redis, page cache off"], indirect=True)
def test_licensed_rows_are_not_copied_into_redis(app, portal_data, people):
    """The page cache keeps every page of a grant holder out of Redis (portal/page_cache.py: "anyone
    with a grant is never served from or stored into the cache"). The shared level of the kept
    parts (fragments.py SharedParts) stores the holder's dataset page parts, licensed rows
    included, in Redis for every node: conditional data in a cache shared by every process."""
    granted(portal_data, people, fields=["企业名称", "所属街道"])
    holder = holder_client(app, people)
    assert "授权范围内的字段和行" in holder.get(f"/dataset/{COND}").get_data(as_text=True)
    in_redis = [k for k, v in shared_parts(app).items() if "授权范围内的字段和行" in str(json.loads(v))]
    assert not in_redis, (
        f"{len(in_redis)} part(s) with a grant's licensed rows stored in Redis "
        "(views/catalog.py _dataset_key names the grant; SharedParts.put shares it anyway)"
    )


# ====================================================================== staleness after a change


def _withdraw(s, who):
    from portal.catalog import curation

    curation.withdraw(s, who["curator"], dataset(s), reason="含有不应公开的内容")


def _restrict(s, who, storage, to_class, decide):
    from portal.catalog import curation
    from portal.models import RestrictionRequest

    ds = dataset(s)
    curation.reclassify(
        s, storage, who["curator"], ds, to_class, "《中华人民共和国数据安全法》第二十一条", reason="需要限制"
    )
    if decide:
        s.flush()
        request = s.scalar(select(RestrictionRequest).where(RestrictionRequest.dataset_id == ds.id))
        curation.decide_restriction(s, storage, who["bureau"], request, approve=True)


def _edit(s, who, **changes):
    from portal.catalog import curation

    curation.edit_metadata(s, who["curator"], dataset(s), changes)


def _rename_department(s, who):
    s.scalar(select(Department).where(Department.code == "dcf-scjgj")).name = "东昌府区市场监督管理局（更名）"


def _comment(s, who):
    from portal import feedback

    feedback.rate(s, who["citizen"], dataset(s), 2, "第三行的地址写错了街道")


def _report(s, who):
    from portal import feedback

    feedback.report_error(s, who["citizen"], dataset(s), "第三行的电话号码少了一位数字")


CHANGES = {
    "withdrawn": lambda s, who, storage: _withdraw(s, who),
    "held (restriction pending)": lambda s, who, storage: _restrict(s, who, storage, "conditional", False),
    "reclassified conditional": lambda s, who, storage: _restrict(s, who, storage, "conditional", True),
    "reclassified not open": lambda s, who, storage: _restrict(s, who, storage, "not_open", True),
    "title edited": lambda s, who, storage: _edit(s, who, title="药品零售企业名录（2026年核对版）"),
    "summary edited": lambda s, who, storage: _edit(s, who, summary="2026年12月核对后的新版说明"),
    "department renamed": lambda s, who, storage: _rename_department(s, who),
    "commented": lambda s, who, storage: _comment(s, who),
    "error reported": lambda s, who, storage: _report(s, who),
}


@pytest.mark.parametrize("where", ["here", "elsewhere"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_reaches_every_kept_part_at_its_commit(
    app, portal_data, make_user, people, settings, change, where
):
    reader = signed_in(app, make_user, name="读者")
    anonymous = app.test_client()
    urls = [
        "/",
        "/search?q=药品",
        "/search",
        "/department/dcf-scjgj",
        f"/dataset/{OPEN}",
        f"/dataset/{OPEN}?preview=1",
        f"/api/3/action/package_show?id={OPEN}",
        "/api/3/action/package_search?q=药品",
        f"/api/data/{OPEN}?limit=2",
        f"/api/data/{OPEN}?limit=2&format=csv",
        csv_url(portal_data),
    ]
    for url in urls * 2:
        reader.get(url)
        anonymous.get(url)
    with committing_in(where, app, settings) as (s, ctx):
        who = {
            "curator": s.get(User, people["curator"][0]),
            "bureau": s.get(User, people["bureau"][0]),
            "citizen": s.get(User, people["stranger"][0]),
        }
        CHANGES[change](s, who, ctx.storage)
        s.commit()
    assert_as_rendered(app, reader, urls)
    if change in ("withdrawn", "held (restriction pending)", "reclassified not open"):
        for client in (reader, anonymous):
            assert client.get(f"/dataset/{OPEN}").status_code == 404
            assert client.get(urls[-1]).status_code == 404, urls[-1]
            assert LINK not in client.get("/").get_data(as_text=True)
            assert LINK not in client.get("/search?q=药品").get_data(as_text=True)
            assert OPEN not in client.get("/api/3/action/package_search?q=药品").get_data(as_text=True)
            assert client.get(f"/api/data/{OPEN}?limit=2").status_code == 404


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_version_purged_by_the_gate_is_refused_at_once(app, portal_data, settings, where):
    """A careless department's file found to hold personal information after all (portal
    rescan): the version is removed; its download link, kept as servable, must stop."""
    from harvest import gate

    url = csv_url(portal_data)
    reader = app.test_client()
    assert reader.get(url).status_code == 200 and reader.get(url).status_code == 200
    with committing_in(where, app, settings) as (s, ctx):
        dist = dataset(s).current_distributions[0]
        gate.remove_version(ctx.storage, dist)
        s.commit()
    assert reader.get(url).status_code == 404
    assert_as_rendered(
        app,
        reader,
        [f"/dataset/{OPEN}", f"/api/data/{OPEN}?limit=2", f"/api/3/action/package_show?id={OPEN}"],
    )


def _revoke(s, grant_id, who):
    from licenses import grants

    grants.revoke(s, who, s.get(Grant, grant_id), reason="超出授权用途使用数据，予以撤销")


@pytest.mark.parametrize("where", ["here", "elsewhere"])
@pytest.mark.parametrize("how", ["revoked", "suspended (dataset held)", "sandbox only"])
def test_a_grant_that_ends_ends_the_holders_licensed_previews_and_rows(
    app, portal_data, people, settings, how, where
):
    grant = granted(portal_data, people, fields=["企业名称", "所属街道"])
    holder = holder_client(app, people)
    urls = [f"/dataset/{COND}", f"/api/data/{COND}?limit=2", f"/api/3/action/package_show?id={COND}"]
    for url in urls * 2:
        assert holder.get(url).status_code == 200
    with committing_in(where, app, settings) as (s, ctx):
        if how == "revoked":
            _revoke(s, grant.id, s.get(User, people["bureau"][0]))
        elif how == "sandbox only":
            dataset(s, COND).sandbox_only = True
        else:
            dataset(s, COND).status = "held"
        s.commit()
    assert_as_rendered(app, holder, urls)
    if how != "sandbox only":
        assert "授权范围内的字段和行" not in holder.get(f"/dataset/{COND}").get_data(as_text=True)
        assert holder.get(f"/api/data/{COND}?limit=2").status_code in (403, 404)


def test_a_grant_that_expires_overnight_ends_its_kept_previews(app, portal_data, people, monkeypatch):
    from portal import clock

    grant = granted(portal_data, people, fields=["企业名称", "所属街道"])
    holder = holder_client(app, people)
    assert "授权范围内的字段和行" in holder.get(f"/dataset/{COND}").get_data(as_text=True)
    assert "授权范围内的字段和行" in holder.get(f"/dataset/{COND}").get_data(as_text=True)
    the_day_after = dt.datetime.combine(
        grant.valid_until + dt.timedelta(days=1), dt.time(9), tzinfo=clock.zone()
    )
    monkeypatch.setattr(clock, "now", lambda: the_day_after)
    assert "授权范围内的字段和行" not in holder.get(f"/dataset/{COND}").get_data(as_text=True)
    assert holder.get(f"/api/data/{COND}?limit=2").status_code == 403


def test_a_search_sync_in_another_process_reaches_kept_search_pages(
    app, portal_data, make_user, people, settings
):
    """The harvest (another process) edits a title and syncs the index: the generation moves at
    the sync's commit. A web worker notices the index's new commit within `refresh_seconds`
    (portal/search/whoosh_backend.py); a search asked in that window renders the old index at
    the NEW generation and is kept, so the old result outlives the window by the parts'
    lifetime (page_cache_seconds, 60 s) instead of 1 s."""
    from portal.catalog import curation
    from portal.search.sync import sync

    if SEARCH_BACKEND != "whoosh":
        pytest.skip("PostgreSQL's search reads the database itself: no snapshot to lag")
    reader = signed_in(app, make_user)
    backend = app.extensions["portal"].search
    assert "口岸版" not in reader.get("/search?q=药品").get_data(as_text=True)
    backend.refresh_seconds = 3600  # the window a request falls into, held open
    with another_process(app, settings) as other:
        with other.sessions() as s:
            curator = s.get(User, people["curator"][0])
            curation.edit_metadata(s, curator, dataset(s), {"title": "药品零售企业名录（口岸版）"})
            s.commit()
        sync(other.sessions, other.search)
    reader.get("/search?q=药品")  # inside the window: the old index
    backend.refresh_seconds = 0  # the window has passed: this worker reads the new index
    assert "口岸版" in reader.get("/search?q=零售").get_data(as_text=True)  # a search not asked before
    served = reader.get("/search?q=药品").get_data(as_text=True)
    assert "口岸版" in fresh(app, reader, "/search?q=药品").get_data(as_text=True)  # what a render gives
    assert "口岸版" in served, (
        "a search rendered from the old index just after another process's sync is kept at the "
        "new generation and served after the worker reads the new index"
    )


# ====================================================================== keys: collisions, poisoning


def test_a_forwarded_host_keeps_its_links_to_itself(app, portal_data, make_user, settings):
    """Behind a proxy (PORTAL_PROXIES=1) X-Forwarded-Host names the host: a client can send any."""
    from portal.app import create_app

    proxied = create_app(_config(settings, "generation file", proxies=1))
    attacker, reader = proxied.test_client(), signed_in(proxied, make_user)
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    urls = [
        f"/dataset/{OPEN}",
        f"/api/3/action/package_show?id={OPEN}",
        "/api/3/action/package_search?q=药品",
        f"/api/data/{OPEN}?limit=1",
    ]
    for url in urls:
        answer = attacker.get(url, headers=forged)
        assert "evil.example" in answer.get_data(as_text=True) + answer.headers.get("Link", ""), url
    for url in urls:
        for client in (reader, proxied.test_client()):
            answer = client.get(url)
            assert "evil.example" not in answer.get_data(as_text=True) + str(answer.headers), url
    proxied.extensions["portal"].engine.dispose()


@pytest.mark.parametrize("app", ["generation file", "redis"], indirect=True)
def test_the_try_it_form_of_one_reader_is_not_kept_for_everyone(app, portal_data, make_user):
    """The try-it form shows back what was asked (`api_col`, `api_val`, `api_fields`,
    templates/dataset/_api.html): a page asked with them is the asker's own, never the plain
    page's kept part — else anyone could put words into the form every reader is shown. (Found
    here: they were missing from views/catalog.py PREVIEW_QUERY_ARGS.)"""
    planted = "请致电4008123123领取补贴"
    attacker = app.test_client()
    attacker.get(f"/dataset/{OPEN}?api_col=企业名称&api_val={planted}&api_fields=x,{planted}")
    reader = signed_in(app, make_user)
    html = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    assert planted not in html, (
        "a stranger's try-it values are shown to every reader of the plain dataset page: "
        "views/catalog.py PREVIEW_QUERY_ARGS lacks api_col/api_val/api_fields"
    )


ODD_QUERIES = [
    "/search?q=药品&q=公交",
    "/search?q=药品&page=0",
    "/search?q=药品&page=-3",
    "/search?q=药品&page=abc",
    "/search?q=%F0%9F%92%8A%E8%8D%AF%E5%93%81",
    "/search?q=" + "药" * 300,
    "/search?q=<script>alert(1)</script>",
    "/search?q=药品&unknown=" + "x" * 500,
    "/search?department=dcf-scjgj&department=dcf-jtysj",
    "/search?open_class=not_open",
    "/search?sort=downloads&sort=name",
    "/department/dcf-scjgj?department=dcf-jtysj",
    f"/dataset/{OPEN}?preview=abc",
    f"/dataset/{OPEN}?preview=-1",
    f"/dataset/{OPEN}?preview=99999999999999999999",
    f"/dataset/{OPEN}?table=999999",
    f"/api/data/{OPEN}?format=CSV",
    f"/api/data/{OPEN}?limit=1&limit=2",
    f"/api/data/{OPEN}?eq[企业名称]=<b>x</b>",
    "/api/3/action/package_search?q=药品&rows=1&rows=1000",
    "/api/3/action/package_search?fq=organization:dcf-scjgj&q=" + "公" * 300,
]


@pytest.mark.parametrize("app", ["generation file", "redis, page cache off"], indirect=True)
def test_odd_query_strings_answer_as_a_full_render_and_poison_nothing(app, portal_data, make_user):
    attacker = signed_in(app, make_user, name="攻击者")
    for url in ODD_QUERIES:
        attacker.get(url)
    reader = signed_in(app, make_user)
    assert_as_rendered(app, reader, ODD_QUERIES)
    for url in ODD_QUERIES:
        attacker.get(url)
    plain = [
        f"/dataset/{OPEN}",
        "/search?q=药品",
        "/search",
        f"/api/data/{OPEN}",
        "/api/3/action/package_search?q=药品",
    ]
    for url in plain:
        html = reader.get(url).get_data(as_text=True)
        assert (
            "<script>alert" not in html and "unknown=" not in html and "99999999999999999999" not in html
        ), url
    assert_as_rendered(app, reader, plain)
    assert reader.get(f"/api/data/{OPEN}?format=csv").mimetype == "text/csv"
    assert reader.get(f"/api/data/{OPEN}?format=json").mimetype == "application/json"
    assert reader.get(f"/api/data/{OPEN}?format=csv").mimetype == "text/csv"


def test_package_search_by_post_and_by_get_give_one_answer_and_do_not_mix(app, portal_data):
    client = app.test_client()
    by_get = client.get("/api/3/action/package_search?q=药品&rows=5").get_json()
    by_json = client.post("/api/3/action/package_search", json={"q": "药品", "rows": 5}).get_json()
    by_form = client.post("/api/3/action/package_search", data={"q": "药品", "rows": "5"}).get_json()
    other = client.post("/api/3/action/package_search", json={"q": "公交", "rows": 5}).get_json()
    assert by_get == by_json == by_form
    assert other != by_get and OPEN not in [d["name"] for d in other["result"]["results"]]
    assert client.post("/api/3/action/package_search", json={"rows": "many"}).status_code == 409
    assert client.post("/api/3/action/package_search", json={"rows": 5, "q": "药品"}).get_json() == by_get


@pytest.mark.parametrize("app", ["generation file", "redis"], indirect=True)
def test_answers_of_errors_are_never_kept(app, portal_data, make_user, monkeypatch):
    from portal.views import catalog as catalog_views

    reader = signed_in(app, make_user)
    assert reader.get("/dataset/371502-scj-0003").status_code == 404  # not open
    assert reader.get("/dataset/no-such-thing").status_code == 404
    assert reader.get(f"/api/data/{OPEN}?format=xml").status_code == 400
    assert reader.get(f"/api/data/{OPEN}?eq[不存在]=1").status_code == 400
    assert reader.get("/api/3/action/package_search?rows=x").status_code == 409
    past = reader.get("/search?q=药品&page=999")
    assert past.status_code == 302
    assert reader.get(past.headers["Location"]).status_code == 200
    assert not any(re.search(r'"success": ?false', t) or "format 须为" in t for t in kept_texts(app))
    real, failures = catalog_views._dataset_parts, []

    def fails_once(ds, page_number):
        if not failures:
            failures.append(1)
            raise RuntimeError("the storage hiccupped")
        return real(ds, page_number)

    monkeypatch.setattr(catalog_views, "_dataset_parts", fails_once)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert reader.get(f"/dataset/{BUS}").status_code == 500
    assert reader.get(f"/dataset/{BUS}").status_code == 200 and failures == [1]
    assert "公交站点位置" in app.test_client().get(f"/dataset/{BUS}").get_data(as_text=True)


@pytest.mark.parametrize("app", ["generation file", "redis"], indirect=True)
def test_a_data_file_back_in_place_shows_again(app, portal_data, make_user):
    """A file unreadable for a moment (a network share remounting, an object store's hiccup):
    the page says "temporarily unavailable". Once it is back, the next reader must see the
    preview — not the kept "unavailable" for the parts' lifetime, on every node through Redis."""
    reader = signed_in(app, make_user)
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        path = ctx.storage.local_path(dataset(s, BUS).current_distributions[0].tables[0].parquet_path)
    away = path.with_name(path.name + ".away")
    path.rename(away)
    try:
        assert "数据文件暂时不可用" in reader.get(f"/dataset/{BUS}").get_data(as_text=True)
    finally:
        away.rename(path)
    html = reader.get(f"/dataset/{BUS}").get_data(as_text=True)
    assert "数据文件暂时不可用" not in html, (
        "the page rendered while the file was away is kept and served after the file is back "
        "(views/catalog.py _preview → None is kept in the body part)"
    )


def test_a_department_title_with_markup_stays_text_in_every_kept_copy(
    app, portal_data, make_user, people, settings
):
    """A careless department's title with markup in it: escaped when the part is rendered, and
    still text when another worker takes the part from Redis (kept as text plus a markup flag)."""
    from portal.app import create_app
    from portal.catalog import curation

    planted = '<img src=x onerror="alert(1)">'
    with portal_data.sessions() as s:
        curation.edit_metadata(s, s.get(User, people["curator"][0]), dataset(s), {"summary": planted})
        s.commit()
    workers = [app]
    if uses_redis(app):
        workers.append(create_app(_config(settings, "redis")))
    for worker in workers:
        reader = signed_in(worker, make_user)
        for url in (f"/dataset/{OPEN}", f"/dataset/{OPEN}", "/", f"/api/3/action/package_show?id={OPEN}"):
            body = reader.get(url).get_data(as_text=True)
            assert planted not in body, url
        assert "&lt;img src=x onerror=" in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    for worker in workers[1:]:
        worker.extensions["portal"].engine.dispose()


# ====================================================================== resources


def _budget_app(request, settings, budget):
    """A worker of the same portal, configured as the test's `app`, with a store of `budget` bytes."""
    from portal.app import create_app

    return create_app(_config(settings, request.node.callspec.params["app"], fragment_cache_bytes=budget))


@pytest.mark.parametrize("app", ["generation file", "redis, page cache off"], indirect=True)
def test_many_distinct_urls_stay_within_the_store_budget(request, portal_data, settings):
    budget = 400_000
    app = _budget_app(request, settings, budget)
    client = app.test_client()
    store = app.extensions["portal"].fragments
    for n in range(60):
        client.get(f"/search?q=药品&n={n}")
        client.get(f"/api/data/{BUS}?limit=45&n={n}")
        client.get(f"/api/3/action/package_search?q=公交&n={n}")
    assert 0 < store._size <= budget
    assert sum(n for _g, _e, n, _v in store._entries.values()) == store._size
    # One answer bigger than an eighth of the budget is served, never kept.
    assert all(n <= budget // 8 for _g, _e, n, _v in store._entries.values())
    app.extensions["portal"].engine.dispose()


def test_preview_page_numbers_past_the_last_do_not_make_new_parts(app, portal_data):
    """`?preview=N` is clamped to the last page when rendered, but the key holds N as asked
    (views/catalog.py `dataset`: page = max(…, 1) only) and the plain page is exempt from the rate
    limit: one client makes any number of kept copies of the same page."""
    client = app.test_client()
    store = app.extensions["portal"].fragments
    client.get(f"/dataset/{OPEN}")
    before = len(store._entries)
    for n in range(2, 40):
        assert client.get(f"/dataset/{OPEN}?preview={n}").status_code == 200
    made = len(store._entries) - before
    assert made <= 1, (
        f"{made} kept copies of one page (a {OPEN} table has one preview page): key the part by "
        "the page as rendered (clamped to the served tables' last preview page)"
    )


@pytest.mark.parametrize("app", ["generation file"], indirect=True)
def test_what_keys_hold_counts_against_the_budget(request, portal_data, settings):
    """package_search takes a POSTed JSON body (CSRF-exempt, up to MAX_CONTENT_LENGTH, 50 MB)
    and keys its kept answer by the whole body: unknown members make a key of any size while
    the answer, the only thing counted, stays small."""
    budget = 1_000_000
    app = _budget_app(request, settings, budget)
    client = app.test_client()
    store = app.extensions["portal"].fragments
    for n in range(6):
        answer = client.post("/api/3/action/package_search", json={"rows": 0, "pad": f"{n}" + "x" * 400_000})
        assert answer.status_code == 200
    held = store._size + sum(len(repr(key)) for key in store._entries)
    assert held <= budget, (
        f"{held} bytes held for a budget of {budget}: views/api.py package_search keys by "
        "json.dumps(args) and portal/fragments.py counts only the value"
    )
    app.extensions["portal"].engine.dispose()


@pytest.mark.parametrize("app", ["redis, page cache off"], indirect=True)
def test_redis_holds_no_more_shared_parts_than_the_budget(request, portal_data, settings):
    """PORTAL_FRAGMENT_CACHE_BYTES bounds a worker's store; the shared level in Redis
    (SharedParts.put: SET with a TTL, no bound) takes every distinct URL for its lifetime."""
    budget = 300_000
    app = _budget_app(request, settings, budget)
    client = app.test_client()
    for n in range(80):
        client.get(f"/search?q=药品&n={n}")
    held = sum(len(v) for v in shared_parts(app).values())
    app.extensions["portal"].engine.dispose()
    assert held <= budget, (
        f"{held} bytes of shared parts in Redis after one anonymous client asked 80 URLs "
        f"(budget {budget}): nothing bounds portal:<ns>:parts:* but the TTL"
    )


# ====================================================================== Redis away


@contextlib.contextmanager
def redis_away(app):
    """The kept parts' (and the page cache's) Redis stops answering: every command refused, on
    the one client the generation, the shared parts, the page cache and the commit listener use."""
    client = app.extensions["portal"].fragments.generation.client

    def refused(*_args, **_kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    client.execute_command = refused
    try:
        yield
    finally:
        del client.execute_command


@pytest.mark.parametrize("app", ["redis", "redis, page cache off"], indirect=True)
def test_while_redis_is_away_pages_render_and_show_changes(app, portal_data, make_user, people):
    from portal.catalog import curation

    reader = signed_in(app, make_user)
    url = csv_url(portal_data)
    urls = ["/", "/search?q=药品", f"/dataset/{OPEN}", f"/dataset/{BUS}", url]
    for u in urls * 2:
        assert reader.get(u).status_code == 200
    with redis_away(app):
        for u in urls:
            assert reader.get(u).status_code == 200
            assert app.test_client().get(u).status_code == 200
        with portal_data.sessions() as s:
            curation.edit_metadata(
                s, s.get(User, people["other_curator"][0]), dataset(s, BUS), {"summary": "停电期间改过的说明"}
            )
            curation.withdraw(s, s.get(User, people["curator"][0]), dataset(s), reason="含有不应公开的内容")
            s.commit()
        assert "停电期间改过的说明" in reader.get(f"/dataset/{BUS}").get_data(as_text=True)
        assert reader.get(url).status_code == 404 and reader.get(f"/dataset/{OPEN}").status_code == 404
        assert LINK not in reader.get("/search?q=药品").get_data(as_text=True)
        assert LINK not in app.test_client().get("/").get_data(as_text=True)


@pytest.mark.parametrize("app", ["redis", "redis, page cache off"], indirect=True)
def test_a_withdrawal_during_a_redis_outage_stays_withdrawn_after_it(app, portal_data, make_user, people):
    """The withdrawal commits while Redis is away: the generation cannot move (page_cache.py
    logs it). When Redis answers again it still holds the old generation, and every worker's
    store still holds parts rendered at it."""
    from portal.catalog import curation

    reader = signed_in(app, make_user)
    url = csv_url(portal_data)
    for u in [url, "/search?q=药品", "/"] * 2:
        assert reader.get(u).status_code == 200
    with redis_away(app):
        with portal_data.sessions() as s:
            curation.withdraw(s, s.get(User, people["curator"][0]), dataset(s), reason="含有不应公开的内容")
            s.commit()
        assert reader.get(url).status_code == 404
    served = reader.get(url).status_code
    listed = LINK in reader.get("/search?q=药品").get_data(as_text=True)
    assert served == 404 and not listed, (
        f"after the outage a withdrawn dataset's file answers {served} and search lists it: {listed} "
        "(parts kept before the outage are valid again at the generation Redis still holds)"
    )


@pytest.mark.parametrize("app", ["redis, page cache off"], indirect=True)
def test_a_redis_restarted_empty_does_not_bring_old_parts_back(app, portal_data, make_user, people):
    """Redis as a cache often runs without persistence: a restart empties it, and its counter
    starts again from 0. After as many public commits as before (a harvest makes hundreds a
    minute) the counter reads the same value again, and parts a worker kept at that value
    before the restart are served as current."""
    from portal import page_cache
    from portal.catalog import curation

    ctx = app.extensions["portal"]
    client = ctx.fragments.generation.client
    for _ in range(3):
        page_cache.bump(client, ctx.cache_namespace)
    reader = signed_in(app, make_user)
    url = csv_url(portal_data)
    for u in [url, "/search?q=药品"] * 2:
        assert reader.get(u).status_code == 200
    counter = page_cache.generation_key(ctx.cache_namespace)
    before = client.get(counter)
    client.flushdb()  # restarted, empty
    with portal_data.sessions() as s:
        curation.withdraw(s, s.get(User, people["curator"][0]), dataset(s), reason="含有不应公开的内容")
        s.commit()
    client.set(counter, before)  # other commits of the hour: the counter reads the same again
    status = reader.get(url).status_code
    listed = LINK in reader.get("/search?q=药品").get_data(as_text=True)
    assert status == 404 and not listed, (
        f"a withdrawn dataset's file answers {status} (search lists it: {listed}) after Redis restarted: the generation "
        f"{before!r} repeats and parts kept at it before the restart are served (fragments.py "
        "RedisGeneration: a counter that can start again)"
    )


@contextlib.contextmanager
def silent_server():
    """A Redis that accepts connections and never answers (a partition, a stuck server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def take() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=take, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.parametrize("app", ["redis, page cache off"], indirect=True)
def test_a_redis_that_stops_answering_does_not_hang_every_page(app, portal_data, make_user):
    """Without the page cache, a signed-in reader's page needed no Redis before kept parts; now
    every page reads the generation from Redis first, with a client made as portal/context.py
    makes it (redis.Redis.from_url(url), no timeout of its own: redis-py 8 waits 5 s, redis-py
    5 to 7, which pyproject.toml allows, for ever)."""
    reader = signed_in(app, make_user)
    assert reader.get("/search?q=药品").status_code == 200
    fragments = app.extensions["portal"].fragments
    answers: list[int] = []
    with silent_server() as silent:
        from portal.context import redis_client

        stuck = redis_client(f"redis://127.0.0.1:{silent}/12")  # as the portal makes its client
        working, fragments.generation.client = fragments.generation.client, stuck
        fragments.shared.client = stuck
        asking = threading.Thread(target=lambda: answers.append(reader.get("/search?q=公交").status_code))
        asking.start()
        asking.join(30)  # a liveness bound, far above any render: not a speed assertion
        hung = asking.is_alive()
    asking.join()
    fragments.generation.client = fragments.shared.client = working
    assert not hung, "a page waited more than 30 s on a Redis that does not answer (no socket timeout)"
    assert answers == [200]


@pytest.mark.parametrize("app", ["generation file"], indirect=True)
def test_a_full_disk_at_a_commit_neither_fails_the_change_nor_leaves_it_unseen(
    app, portal_data, make_user, people, monkeypatch
):
    """Without Redis the generation is a file rewritten after each public commit
    (fragments.py FileGeneration.bump, called from page_cache.on_public_change's after_commit).
    With the disk full the rewrite fails: the change is committed all the same, and must be
    neither reported as failed to the person who made it (page_cache.invalidate_on_commit logs
    and goes on for Redis) nor left unseen by readers of kept parts."""
    import errno

    from portal import fragments
    from portal.catalog import curation

    reader = signed_in(app, make_user)
    url = csv_url(portal_data)
    assert reader.get(url).status_code == 200 and reader.get(url).status_code == 200

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fragments.os, "replace", disk_full)
    raised = None
    with portal_data.sessions() as s:
        curation.withdraw(s, s.get(User, people["curator"][0]), dataset(s), reason="含有不应公开的内容")
        try:
            s.commit()
        except OSError as exc:
            raised = exc
    monkeypatch.undo()
    with portal_data.sessions() as s:
        assert dataset(s).status == "withdrawn"  # committed either way
    status = reader.get(url).status_code
    assert raised is None and status == 404, (
        f"the withdrawal's commit raised {raised!r} after committing, and the withdrawn dataset's "
        f"file answers {status}: the generation file was not rewritten and nothing else moves it"
    )
