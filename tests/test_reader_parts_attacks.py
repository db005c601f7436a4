"""Attacks on a signed-in reader's own kept parts ({% mine %}, portal/web.py KeptForTheReader),
the grants kept per reader and day (portal/views/catalog.py), the header's unread count, the
counters sent to Redis every second (portal/counters.py) and the portal with Redis away.

Written by the attack review of issue 22's reader parts: every test is an attack that must hold;
those marked "Found by the review" failed before their fix (the docstring says what it was)."""

from __future__ import annotations

import datetime as dt
import re
import sys
import threading
import time
from collections import Counter

import pytest
import redis
from markupsafe import escape
from sqlalchemy import func, select, update

from portal import clock
from portal.models import Dataset, Department, OutboxMessage, User
from tests import factories
from tests.helpers import counted_calls, granted, harvest_world, kept_in_worker, login, table_of

REDIS_URL = "redis://127.0.0.1:6379/13"
AWAY = "redis://127.0.0.1:1/0"  # nothing listens there: Redis away
OPEN, OPEN_TITLE = "371502-scj-0001", "药品零售企业名录"
CONDITIONAL = "371502-scj-0002"
LICENSED = "授权范围内的字段和行"
TOKENS = re.compile(r'name="csrf_token" value="([^"]+)"')
NONCES = re.compile(r'name="form_nonce" value="([^"]+)"')
MENU = '<details class="user-menu">'


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL).ping())
    except redis.ConnectionError:
        return False


def _make_app(settings, **extra):
    from portal.app import create_app

    return create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "TESTING": True,
            **extra,
        }
    )


@pytest.fixture(params=["generation file", "redis"])
def app(request, settings):
    """The portal without Redis (the instance's generation file) and with it (database 13; every
    test's deployment has an identity, so its keys are its own)."""
    extra = {}
    if request.param == "redis":
        if not _redis_up():
            pytest.skip("no Redis on 127.0.0.1:6379")
        extra["redis_url"] = REDIS_URL
    made = _make_app(settings, **extra)
    yield made
    made.extensions["portal"].engine.dispose()


@pytest.fixture
def away_app(settings):
    """The portal configured with Redis, which does not answer (nothing listens on port 1)."""
    made = _make_app(settings, redis_url=AWAY)
    yield made
    made.extensions["portal"].engine.dispose()


def signed_in(app, make_user, **options):
    client = app.test_client()
    user_id, email, password = make_user(**options)
    answer = login(client, email, password)
    assert answer.status_code == 302, "signed in"
    return client, user_id, email, password


def page(client, url: str = f"/dataset/{OPEN}", **kw) -> str:
    answer = client.get(url, **kw)
    assert answer.status_code == 200, (url, answer.status_code)
    return answer.get_data(as_text=True)


def form_of(html: str, action_part: str) -> dict:
    """The hidden fields (token, nonce, and any other) of the form whose action contains `action_part`."""
    found = re.search(
        r'<form method="post" action="[^"]*' + re.escape(action_part) + r'[^"]*".*?</form>', html, re.S
    )
    assert found, action_part
    form = found.group(0)
    action = re.search(r'action="([^"]+)"', form).group(1).replace("&amp;", "&")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return {"action": action, **{k: v.replace("&amp;", "&") for k, v in fields.items()}}


def post_from(client, html: str, action_part: str, **data):
    fields = form_of(html, action_part)
    action = fields.pop("action")
    return client.post(action, data={**fields, **data})


def new_user(ctx, **options):
    """A user made through the service (as the make_user fixture does, without its app)."""
    with ctx.sessions() as s:
        made = factories.user(s, options.pop("kind", "citizen"), **options)
        s.commit()
        return made.id, made.email, factories.PASSWORD


def mine_entries(app) -> list:
    return [k for k in app.extensions["portal"].fragments._entries if k[0][0] == "mine"]


stored = counted_calls  # the statistics table, summed


# ---------------------------------------------------------------------- one reader, another


def test_two_readers_of_one_worker_never_see_each_others_menu_buttons_or_token(app, portal_data, make_user):
    """A curator with a notice, a follow and a favourite, then a plain reader, then the curator
    again, all served by one worker from the kept parts: neither sees the other's name, count,
    console link, follow or favourite state, and each one's token posts only for them."""
    first, first_id, first_email, _ = signed_in(
        app, make_user, name="王小明", curator_of="dcf-scjgj", bureau=True
    )
    html = page(first)
    assert post_from(first, html, "/follow").status_code == 302
    html = page(first)
    assert post_from(first, html, "/favourite").status_code == 302
    with portal_data.sessions() as s:
        s.add(OutboxMessage(to=first_email, subject="新版本", body="…", channel="notice"))
        s.commit()
    mine_first = page(first)
    assert "王小明" in mine_first and "已关注" in mine_first and "已收藏" in mine_first
    assert "部门控制台" in mine_first and ">管理<" in mine_first and 'class="unread"' in mine_first
    second, _id, _e, _p = signed_in(app, make_user, name="李四")
    for _ in range(2):  # rendered, then kept
        other = page(second)
        assert "王小明" not in other and "李四" in other
        assert "已关注" not in other and "已收藏" not in other and ">关注<" in other and ">收藏<" in other
        assert "部门控制台" not in other and ">管理<" not in other and 'class="unread"' not in other
    assert "王小明" in page(first) and "李四" not in page(first)
    # the first reader's token and nonce, posted from the second reader's session: refused
    stolen = form_of(page(first), "/rating")
    refused = second.post(
        f"/dataset/{OPEN}/rating",
        data={"csrf_token": stolen["csrf_token"], "form_nonce": stolen["form_nonce"], "stars": "1"},
    )
    assert refused.status_code == 400
    assert not set(TOKENS.findall(page(first))) & set(TOKENS.findall(page(second)))
    if app.extensions["portal"].settings.redis_url:  # nothing of a reader is shared through Redis
        shared = redis.Redis.from_url(REDIS_URL)
        prefix = app.extensions["portal"].fragments.shared.prefix
        texts = [(shared.get(k) or b"").decode() for k in shared.scan_iter(prefix + "*")]
        assert texts and not any("王小明" in t or "李四" in t or "csrf" in t for t in texts)


def test_readers_served_at_once_by_one_worker_each_get_their_own_part(app, portal_data, make_user):
    """Two readers, each in two browsers, asking together from eight threads: every page names
    its own reader and carries its own session's token (each browser's last page then posts)."""
    readers = []
    for name in ("甲读者", "乙读者"):
        _id, email, password = make_user(name=name)
        for _ in range(2):
            client = app.test_client()
            login(client, email, password)
            readers.append((name, client))
    wrong: list = []
    last: dict = {}

    def read(name, client):
        try:
            for _ in range(8):
                html = client.get(f"/dataset/{OPEN}").get_data(as_text=True)
                others = [n for n, _c in readers if n != name]
                if name not in html or any(o in html for o in others):
                    wrong.append((name, "name"))
                last[id(client)] = html
        except Exception as exc:  # a thread's failure is the test's
            wrong.append((name, repr(exc)))

    threads = [threading.Thread(target=read, args=r) for r in readers * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
    for n, (_name, client) in enumerate(readers):
        assert post_from(client, last[id(client)], "/rating", stars=str(n + 1)).status_code == 302


def test_two_browsers_of_one_reader_rating_at_once_both_succeed(portal_data, make_user):
    """Found by posting from two sessions of one reader at once: two first ratings in flight
    together (two tabs: different nonces) both read 'no rating yet'; the second's insert meets
    the first's committed row. It becomes an update of it, not a 500."""
    from sqlalchemy import event

    from portal import feedback
    from portal.models import Rating

    user_id, _e, _p = make_user()
    one, two = portal_data.sessions(), portal_data.sessions()

    def the_other_commits_first(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO RATINGS") and one.in_transaction():
            one.commit()

    try:
        ds = one.scalar(select(Dataset).where(Dataset.name == OPEN))
        feedback.rate(one, one.get(User, user_id), ds, 4)
        one.flush()
        connection = two.connection()
        event.listen(connection, "before_cursor_execute", the_other_commits_first)
        ds_two = two.scalar(select(Dataset).where(Dataset.name == OPEN))
        feedback.rate(two, two.get(User, user_id), ds_two, 5, "第二个标签页")
        two.commit()
    finally:
        one.close()
        two.close()
    with portal_data.sessions() as s:
        ratings = s.scalars(select(Rating).where(Rating.user_id == user_id)).all()
        assert [(r.stars, r.comment) for r in ratings] == [(5, "第二个标签页")]


def test_one_reader_in_two_browsers_gets_each_sessions_own_token(app, portal_data, make_user):
    _id, email, password = make_user(name="张三")
    one, two = app.test_client(), app.test_client()
    login(one, email, password)
    login(two, email, password)
    a, b = page(one), page(two)  # the second served from the part the first kept
    assert app.extensions["portal"].fragments.hits
    assert set(TOKENS.findall(a)) and not set(TOKENS.findall(a)) & set(TOKENS.findall(b))
    for client, html in ((one, b), (two, a)):  # the other browser's form: refused
        assert post_from(client, html, "/rating", stars="2").status_code == 400
    assert post_from(one, a, "/rating", stars="4").status_code == 302
    assert post_from(two, b, "/rating", stars="5").status_code == 302


def test_a_password_reset_ends_the_old_sessions_menu_at_once(app, portal_data, make_user):
    """session_version moves: the old browser is signed out (no kept menu served to it), the
    new sign-in gets a part of its own."""
    from portal import accounts

    user_id, email, password = make_user(name="赵六")
    old = app.test_client()
    login(old, email, password)
    assert "赵六" in page(old) and "赵六" in page(old)
    with portal_data.sessions() as s:  # what accounts.reset_password does to the row
        user = s.get(User, user_id)
        user.session_version += 1
        user.password_hash = accounts.generate_password_hash(
            "Another-pass-2026", method=accounts.PASSWORD_METHOD
        )
        s.commit()
    stale = page(old)
    assert "赵六" not in stale and MENU not in stale and "后可纠错和评价" in stale
    new = app.test_client()
    assert login(new, email, "Another-pass-2026").status_code == 302
    fresh = page(new)
    assert "赵六" in fresh
    assert post_from(new, fresh, "/rating", stars="3").status_code == 302
    assert len({k[0][-1][:2] for k in mine_entries(app)}) == 2  # (id, version 1) and (id, version 2)


def test_language_and_care_switches_show_at_once_in_the_menu(app, portal_data, make_user):
    reader, *_ = signed_in(app, make_user, name="钱七", curator_of="dcf-scjgj")
    assert "部门控制台" in page(reader) and "部门控制台" in page(reader)
    reader.get("/lang/en")
    english = page(reader)
    assert "部门控制台" not in english and "钱七" in english and 'lang="en"' in english
    assert post_from(reader, english, "/rating", stars="5").status_code == 302
    reader.get("/lang/zh")
    reader.get("/care/on")
    care = page(reader)
    assert "部门控制台" in care and 'class="care"' in care
    reader.get("/care/off")
    assert 'class="care"' not in page(reader)


def test_role_rename_notices_follows_and_logout_show_at_once(app, portal_data, make_user):
    reader, user_id, email, _ = signed_in(app, make_user, name="孙八")
    base = page(reader)
    assert ">管理<" not in base and "部门控制台" not in base
    with portal_data.sessions() as s:  # made bureau, then curator (no public change: User rows)
        s.execute(update(User).where(User.id == user_id).values(is_bureau=True))
        s.commit()
    assert ">管理<" in page(reader)
    with portal_data.sessions() as s:
        dept = s.scalar(select(Department.id).where(Department.code == "dcf-scjgj"))
        s.execute(update(User).where(User.id == user_id).values(curator_department_id=dept, is_bureau=False))
        s.commit()
    now = page(reader)
    assert "部门控制台" in now and ">管理<" not in now
    with portal_data.sessions() as s:  # removed as curator, renamed
        s.execute(update(User).where(User.id == user_id).values(curator_department_id=None, name="孙八改"))
        s.commit()
    now = page(reader)
    assert "部门控制台" not in now and "孙八改" in now
    with portal_data.sessions() as s:
        s.add(OutboxMessage(to=email, subject="一", body="…", channel="notice"))
        s.add(OutboxMessage(to=email, subject="二", body="…", channel="notice"))
        s.add(OutboxMessage(to=email, subject="邮件", body="…", channel="mail"))  # mail is not a notice
        s.add(OutboxMessage(to="someone-else@example.cn", subject="别人的", body="…", channel="notice"))
        s.commit()
    assert re.search(r'<span class="unread"[^>]*>2</span>', page(reader))
    reader.get("/account/notices")  # read
    assert 'class="unread"' not in page(reader)
    html = page(reader)
    assert post_from(reader, html, "/follow").status_code == 302
    followed = page(reader)
    assert "已关注" in followed
    assert post_from(reader, followed, "/follows/").status_code == 302  # unfollow
    assert "已关注" not in page(reader)
    assert post_from(reader, page(reader), "/favourite").status_code == 302
    assert "已收藏" in page(reader)
    assert post_from(reader, page(reader), "/favourite").status_code == 302
    assert "已收藏" not in page(reader)
    assert post_from(reader, page(reader), "/logout").status_code == 302
    gone = page(reader)
    assert "孙八改" not in gone and MENU not in gone


def test_a_forged_host_keeps_a_readers_part_to_that_host(app, portal_data, make_user):
    reader, *_ = signed_in(app, make_user, name="周九")
    reader.set_cookie("session", reader.get_cookie("session").value, domain="evil.example")
    forged = page(reader, headers={"Host": "evil.example"})
    assert "周九" in forged
    other, *_ = signed_in(app, make_user, name="吴十")
    for _ in range(2):
        html = page(other)
        assert "evil.example" not in html and "周九" not in html
    assert "evil.example" not in page(reader)


# ---------------------------------------------------------------------- kept forms still post


def test_a_kept_form_posts_once_and_is_refused_the_second_time(app, portal_data, make_user):
    reader, *_ = signed_in(app, make_user)
    page(reader)
    hits = app.extensions["portal"].fragments.hits
    served = page(reader)
    assert app.extensions["portal"].fragments.hits > hits
    nonces = NONCES.findall(served)
    assert len(nonces) == len(set(nonces)) >= 5 and not any("nonce-" in n or "csrf-" in n for n in nonces)
    tokens = set(TOKENS.findall(served))
    assert len(tokens) == 1 and not any(t.startswith("csrf-") for t in tokens)
    fields = form_of(served, "/errors")
    fields.pop("action")
    first = reader.post(f"/dataset/{OPEN}/errors", data={**fields, "text": "电话字段有误"})
    assert first.status_code == 302
    again = reader.post(f"/dataset/{OPEN}/errors", data={**fields, "text": "电话字段有误"})
    told = again.get_data(as_text=True) + (
        reader.get(again.headers["Location"]).get_data(as_text=True) if again.status_code == 302 else ""
    )
    assert "此表单已提交过" in told
    with portal_data.sessions() as s:
        from portal.models import ErrorReport

        assert (
            s.scalar(select(func.count()).select_from(ErrorReport).where(ErrorReport.text == "电话字段有误"))
            == 1
        )
    # a forged nonce of the mark's shape is just another nonce, a token of the mark's shape is refused
    from portal import web

    forged = reader.post(
        f"/dataset/{OPEN}/rating",
        data={"csrf_token": web.TOKEN_MARK, "form_nonce": web.NONCE_MARK, "stars": "1"},
    )
    assert forged.status_code == 400


@pytest.mark.parametrize(
    "name",
    [
        "csrf-0123456789abcdef",
        "nonce-0123456789abcdef nonce-0123456789abcdef",
        'x" name="csrf_token" value="csrf-0123456789abcdef',
        "{{ csrf_token() }}{% endmine %}",
    ],
)
def test_a_name_that_looks_like_a_mark_injects_nothing(app, portal_data, make_user, name):
    reader, *_ = signed_in(app, make_user, name=name)
    other, *_ = signed_in(app, make_user, name="正常读者")
    for _ in range(2):
        html = page(reader)
        tokens = TOKENS.findall(html)
        assert len(set(tokens)) == 1 and len(tokens) == html.count('name="csrf_token"')
        nonces = NONCES.findall(html)
        assert len(nonces) == len(set(nonces)) == html.count('name="form_nonce"')
        assert str(escape(name)) in html  # shown as text, escaped
        assert post_from(reader, html, "/rating", stars="4").status_code == 302
    assert mine_entries(app)  # kept: the name changed no count of forms
    assert str(escape(name)) not in page(other)


def test_the_real_mark_in_a_name_is_not_kept_and_reaches_no_one_else(app, portal_data, make_user):
    """The marks are random per process and never leave it; even if one were known, a part
    holding it in text is refused by the store (rendered each time) and shows only its own
    reader's token to that reader."""
    from portal import web

    reader, *_ = signed_in(app, make_user, name=f"我 {web.TOKEN_MARK} {web.NONCE_MARK}")
    other, *_ = signed_in(app, make_user, name="旁人")
    html = page(reader)
    own = set(TOKENS.findall(html))
    page(reader)
    assert not any("我 " in str(v[3]) for v in app.extensions["portal"].fragments._entries.values())
    assert post_from(reader, page(reader), "/rating", stars="4").status_code == 302
    theirs = page(other)
    assert (
        not own & set(TOKENS.findall(theirs))
        and web.TOKEN_MARK not in theirs
        and web.NONCE_MARK not in theirs
    )


def test_catalog_text_shaped_like_a_mark_or_holding_the_mark_is_never_filled(app, portal_data, make_user):
    """A department's summary with mark-like text, and even with this process's real marks:
    it lives in the parts kept for everyone, which are never filled, so it shows as typed and
    carries no reader's token; the forms around it keep theirs."""
    from portal import web

    summary = f"说明 csrf-0123456789abcdef nonce-fedcba9876543210 {web.TOKEN_MARK} {web.NONCE_MARK}"
    with portal_data.sessions() as s:
        s.execute(update(Dataset).where(Dataset.name == OPEN).values(summary=summary))
        s.commit()
    reader, *_ = signed_in(app, make_user)
    for _ in range(2):
        html = page(reader)
        assert summary in html
        tokens = TOKENS.findall(html)
        assert len(set(tokens)) == 1 and not any(t in summary for t in tokens)
        assert len(NONCES.findall(html)) == len(set(NONCES.findall(html))) == html.count('name="form_nonce"')
        assert post_from(reader, html, "/rating", stars="3").status_code == 302


# ---------------------------------------------------------------------- the store's budget


def test_junk_query_strings_keep_the_accounted_size_within_the_budget(app, portal_data, make_user):
    store = app.extensions["portal"].fragments
    store.max_bytes = 60_000
    reader, *_ = signed_in(app, make_user)
    for n in range(120):
        page(reader, f"/dataset/{OPEN}?utm_source={n}")
    assert store._size <= store.max_bytes
    assert store._size == sum(e[2] for e in store._entries.values())


def _deep_size(value: object) -> int:
    """Bytes CPython holds for a key or a kept text (tuples and their strings)."""
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(_deep_size(v) for v in value)
    return sys.getsizeof(value)


def test_the_store_stays_within_its_budget_counting_the_keys_it_holds(app, portal_data, make_user):
    """Found by the review: the follow part's key holds request.full_path (up to MAX_URL_LENGTH, 2048
    characters), and the store counts only the text it keeps (Fragments._keep's nbytes), never
    the key. One signed-in reader asking a dataset page with junk query strings (no rate limit:
    it is a 'plain' page) stores ~1.6 KB of counted text under ~2 KB of uncounted key per
    request: the worker holds ~2.5x PORTAL_FRAGMENT_CACHE_BYTES (64 MB per worker by default;
    a raw UTF-8 query string, decoded by werkzeug, makes the key up to 4 bytes a character),
    and every other reader's kept parts are pushed out meanwhile. Now a key counts as held."""
    store = app.extensions["portal"].fragments
    store.max_bytes = 200_000
    reader, *_ = signed_in(app, make_user)
    junk = "a" * 1_980
    for n in range(250):
        assert reader.get(f"/dataset/{OPEN}?z{n}={junk}").status_code == 200
    assert store._size <= store.max_bytes  # what the store counts holds
    held = sum(_deep_size(k) + _deep_size(e[3]) for k, e in store._entries.items() if isinstance(e[3], str))
    assert held <= store.max_bytes, f"{held} bytes held for a budget of {store.max_bytes}"


# ---------------------------------------------------------------------- grants


def test_a_grant_made_revoked_and_expired_shows_at_once_to_its_holder(
    app, portal_data, make_user, people, monkeypatch
):
    from licenses import grants as grants_module

    holder = app.test_client()
    login(holder, people["applicant"][1], people["applicant"][2])
    stranger, *_ = signed_in(app, make_user)
    for _ in range(2):  # kept: no grant yet
        assert LICENSED not in page(holder, f"/dataset/{CONDITIONAL}")
        assert LICENSED not in page(stranger, f"/dataset/{CONDITIONAL}")
    grant = granted(portal_data, people, fields=["企业名称", "所属街道"])
    assert LICENSED in page(holder, f"/dataset/{CONDITIONAL}")
    assert LICENSED not in page(stranger, f"/dataset/{CONDITIONAL}")
    assert LICENSED not in page(app.test_client(), f"/dataset/{CONDITIONAL}")
    # overnight past its last day: the holder's page is everyone's again (and kept as such)
    later = dt.datetime.combine(grant.valid_until + dt.timedelta(days=1), dt.time(9), tzinfo=clock.zone())
    monkeypatch.setattr(clock, "now", lambda: later)
    assert LICENSED not in page(holder, f"/dataset/{CONDITIONAL}")
    monkeypatch.undo()
    assert LICENSED in page(holder, f"/dataset/{CONDITIONAL}")
    with portal_data.sessions() as s:
        from portal.models import Grant

        grants_module.revoke(
            s,
            s.get(User, people["bureau"][0]),
            s.get(Grant, grant.id),
            reason="超出授权范围使用数据，依约撤销",
        )
        s.commit()
    for _ in range(2):
        assert LICENSED not in page(holder, f"/dataset/{CONDITIONAL}")
    assert not any(LICENSED in text for text in kept_in_worker(app))


def test_a_grant_suspended_and_resumed_with_its_dataset_shows_at_once(app, portal_data, make_user, people):
    """Withdrawn: the page is gone (and so is the grant's view); published again: the holder
    sees the licensed view again at once, nobody else ever does."""
    from portal.catalog import curation

    granted(portal_data, people, fields=["企业名称", "所属街道"])
    holder = app.test_client()
    login(holder, people["applicant"][1], people["applicant"][2])
    stranger, *_ = signed_in(app, make_user)
    assert LICENSED in page(holder, f"/dataset/{CONDITIONAL}")
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == CONDITIONAL))
        curation.withdraw(s, s.get(User, people["curator"][0]), ds, reason="核对中")
        s.commit()
    assert holder.get(f"/dataset/{CONDITIONAL}").status_code == 404
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == CONDITIONAL))
        curation.publish(s, s.get(User, people["curator"][0]), ds)
        s.commit()
    assert LICENSED not in page(stranger, f"/dataset/{CONDITIONAL}")
    assert LICENSED in page(holder, f"/dataset/{CONDITIONAL}")
    assert LICENSED not in page(stranger, f"/dataset/{CONDITIONAL}")
    assert not any(LICENSED in text for text in kept_in_worker(app))


# ---------------------------------------------------------------------- counters


def _counters(ctx, url):
    from portal.counters import Counters

    return Counters(ctx.sessions, url, namespace=f"attack-{time.monotonic_ns()}")


def test_redis_away_between_add_and_send_loses_and_doubles_nothing(ctx):
    if not _redis_up():
        pytest.skip("no Redis")
    web = _counters(ctx, REDIS_URL)
    web.send_seconds = 3600  # buffered, sent by hand
    web.add("download", 5, n=3)
    up = web.redis
    web.redis = redis.Redis.from_url(AWAY)
    web.send()  # refused: kept for the table
    web.add("download", 5, n=2)
    web.redis = up
    web.send()
    assert sum(web.pending().values()) == 5
    web.flush_own()  # this process's refused ones to the table
    web.flush()  # and what Redis holds
    web.flush()
    assert stored(ctx, kind="download", dataset_id=5) == 5
    assert web.pending() == Counter()


def test_flush_and_send_from_many_threads_count_each_call_once(ctx):
    if not _redis_up():
        pytest.skip("no Redis")
    web = _counters(ctx, REDIS_URL)
    queue = _counters(ctx, REDIS_URL)
    queue.prefix = web.prefix  # the same portal
    web.send_seconds = 3600
    stop = threading.Event()

    def adder():
        for _ in range(400):
            web.add("api_data", 6)

    def sender():
        while not stop.is_set():
            web.send()

    def flusher(c):
        while not stop.is_set():
            c.flush()

    workers = [threading.Thread(target=adder) for _ in range(4)]
    others = [
        threading.Thread(target=sender),
        threading.Thread(target=flusher, args=(web,)),
        threading.Thread(target=flusher, args=(queue,)),
    ]
    for t in others + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in others:
        t.join()
    web.flush()
    assert stored(ctx, kind="api_data", dataset_id=6) == 1600


def test_at_exit_with_redis_away_the_buffered_counts_reach_the_table(ctx):
    from portal import counters as counters_module

    web = _counters(ctx, AWAY)
    web.start_flushing(3600, send_seconds=3600)  # the thread will not send before the exit
    try:
        web.add("download", 9, n=3)
        web.add("api_data", 9)
    finally:
        web.stop_flushing()
    counters_module._flush_at_exit()
    counters_module._alive.discard(web)
    assert stored(ctx, kind="download", dataset_id=9) == 3 and stored(ctx, kind="api_data", dataset_id=9) == 1


class _HungRedis:
    """A Redis whose MULTI/EXEC waits until told, then fails (a connection lost)."""

    def __init__(self) -> None:
        self.inside, self.release = threading.Event(), threading.Event()

    def pipeline(self, transaction=True):
        hung = self

        class Pipe:
            def hincrby(self, *a):
                return self

            def execute(self):
                hung.inside.set()
                hung.release.wait(5)
                raise redis.ConnectionError("lost")

        return Pipe()


def test_counts_in_flight_when_the_process_exits_are_not_lost(ctx):
    """Found by the review: at exit, _flush_at_exit runs flush_own while the counters thread may be inside
    send() with the batch it took from _unsent: if that MULTI/EXEC then fails (Redis slow or
    gone at shutdown), send() puts the batch back in _pending after the last flush has run, and
    the process ends with it: counted downloads/API calls are lost. (The daemon thread is not
    stopped or joined before the last flush.) Now the thread is stopped first."""
    from portal import counters as counters_module

    web = _counters(ctx, "")
    hung = _HungRedis()
    web.redis = hung  # type: ignore[assignment]
    web.start_flushing(3600, send_seconds=0.01)
    web.send_seconds = 0.01
    try:
        web.add("download", 8, n=4)
        assert hung.inside.wait(5)  # the thread has taken the batch and waits on Redis
        counters_module._flush_at_exit()  # the process's last flush
    finally:
        hung.release.set()
        web.stop_flushing()
    counters_module._alive.discard(web)
    assert stored(ctx, kind="download", dataset_id=8) == 4


def test_a_token_keeps_its_daily_quota_when_redis_goes_away(settings, tmp_path):
    """Found by the review: with Redis a token's calls are counted in Redis (quota key) and their counts go
    to the table only with the minute flush; when Redis stops answering, quota_take seeds this
    process's count from the table (+ its _pending), which holds none of today's calls yet (nor
    this process's _unsent ones): a token with a quota of 3 gets 3 more calls — in every worker
    process — while Redis is away. Now a process counts on from the last count Redis gave it."""
    if not _redis_up():
        pytest.skip("no Redis")
    from portal import accounts

    web = _make_app(settings, redis_url=REDIS_URL)
    try:
        ctx = web.extensions["portal"]
        harvest_world(ctx, tmp_path / "src")
        user_id, _e, _p = new_user(ctx)
        with ctx.sessions() as s:
            row, token = accounts.create_token(s, s.get(User, user_id), "脚本", 30)
            row.daily_quota = 3
            s.commit()
        client = web.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        answers = [client.get(f"/api/data/{OPEN}?limit=1", headers=auth).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        ctx.counters.redis = redis.Redis.from_url(AWAY)  # Redis goes away
        later = [client.get(f"/api/data/{OPEN}?limit=1", headers=auth).status_code for _ in range(3)]
        assert later == [429, 429, 429], f"calls answered past the quota of 3: {later}"
    finally:
        web.extensions["portal"].engine.dispose()


# ---------------------------------------------------------------------- Redis away


def test_with_redis_away_every_page_form_download_and_call_still_works(away_app, tmp_path):
    ctx = away_app.extensions["portal"]
    harvest_world(ctx, tmp_path / "src")
    anonymous = away_app.test_client()
    assert OPEN_TITLE in page(anonymous)
    assert page(anonymous, f"/dataset/{OPEN}?col=&op=eq&val=")
    t = table_of(ctx, OPEN)
    for _ in range(2):
        assert anonymous.get(f"/dataset/{OPEN}/download/{t.id}.csv").status_code == 200
    assert anonymous.get(f"/api/data/{OPEN}?limit=2").status_code == 200
    assert anonymous.get(f"/api/3/action/package_show?id={OPEN}").status_code == 200
    reader, *_ = signed_in(away_app, lambda **o: new_user(ctx, **o), name="断线读者")
    for _ in range(2):
        html = page(reader)
        assert "断线读者" in html and len(set(NONCES.findall(html))) == len(NONCES.findall(html))
    assert post_from(reader, html, "/rating", stars="5", comment="断线也能评").status_code == 302
    assert "断线也能评" in page(reader)
    assert post_from(reader, page(reader), "/follow").status_code == 302
    assert "已关注" in page(reader)
    assert not mine_entries(away_app)  # nothing kept while the generation is unknown
    ctx.counters.flush_own()
    with ctx.sessions() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.name == OPEN))
    assert stored(ctx, kind="download", dataset_id=ds_id) == 2
    assert stored(ctx, kind="api_data", dataset_id=ds_id) == 1


def test_with_redis_away_rate_limits_still_hold_in_memory(away_app, tmp_path):
    ctx = away_app.extensions["portal"]
    harvest_world(ctx, tmp_path / "src")
    away_app.config["DATA_API_RATE"] = "3 per minute"
    client = away_app.test_client()
    answers = [client.get(f"/api/data/{OPEN}?limit=1").status_code for _ in range(5)]
    assert answers[:3] == [200, 200, 200] and 429 in answers[3:]


def test_downloads_skip_the_page_cache_and_pages_still_use_it(settings, tmp_path):
    if not _redis_up():
        pytest.skip("no Redis")
    web = _make_app(settings, redis_url=REDIS_URL)
    try:
        ctx = web.extensions["portal"]
        harvest_world(ctx, tmp_path / "src")
        client = web.test_client()
        t = table_of(ctx, OPEN)
        for _ in range(3):
            answer = client.get(f"/dataset/{OPEN}/download/{t.id}.csv")
            assert answer.status_code == 200 and "X-Page-Cache" not in answer.headers
        pages = [client.get(f"/dataset/{OPEN}").headers.get("X-Page-Cache") for _ in range(2)]
        assert pages == ["miss", "hit"]
        ctx.counters.flush()
        with ctx.sessions() as s:
            ds_id = s.scalar(select(Dataset.id).where(Dataset.name == OPEN))
        assert stored(ctx, kind="download", dataset_id=ds_id) == 3
    finally:
        web.extensions["portal"].engine.dispose()
