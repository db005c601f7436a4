"""API tokens' daily quotas, limits per token, and the batched counters behind them — on the
real database, with the portal's clock moved where a day must pass."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import redis
from sqlalchemy import event, select

from portal import accounts, clock
from portal.counters import Counters
from portal.models import ApiToken, Dataset, User
from tests.helpers import counted_calls, empty_redis

OPEN = "371502-scj-0001"


@pytest.fixture
def moment(monkeypatch):
    """The portal's clock, set by the test: moment["now"] is Beijing time."""
    state = {"now": dt.datetime(2026, 12, 6, 10, 0, tzinfo=clock.zone())}
    monkeypatch.setattr(clock, "now", lambda: state["now"])
    return state


def token_for(app, make_user, quota: int | None = None) -> tuple[int, str]:
    user_id, _email, _password = make_user()
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        row, token = accounts.create_token(s, s.get(User, user_id), "脚本", 30)
        row.daily_quota = quota
        s.commit()
        return row.id, token


stored = counted_calls  # the statistics table, summed


def test_a_token_over_its_daily_quota_is_refused_until_beijing_midnight(
    app, client, portal_data, make_user, moment
):
    token_id, token = token_for(app, make_user, quota=3)
    auth = {"Authorization": f"Bearer {token}"}
    answers = [client.get(f"/api/data/{OPEN}", headers=auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[-1].headers["X-Quota-Remaining"] == "0"

    refused = client.get(f"/api/3/action/package_show?id={OPEN}", headers=auth)
    assert refused.status_code == 429
    assert "今日的调用次数已用完" in refused.get_json()["error"]["message"]
    assert refused.headers["Retry-After"] == str(14 * 3600)  # 10:00 → midnight in Beijing
    english = client.get(f"/api/data/{OPEN}?lang=en", headers=auth)
    assert english.status_code == 429 and "daily" in english.get_json()["error"]["message"].lower()

    # without the token the same address is still answered: the quota is the token's
    assert client.get(f"/api/data/{OPEN}").status_code == 200

    moment["now"] = dt.datetime(2026, 12, 7, 0, 0, 1, tzinfo=clock.zone())  # the next Beijing day
    assert client.get(f"/api/data/{OPEN}", headers=auth).status_code == 200
    portal_data.counters.flush()
    assert stored(portal_data, token_id=token_id, day=dt.date(2026, 12, 6)) == 3  # refused calls not counted
    assert stored(portal_data, token_id=token_id, day=dt.date(2026, 12, 7)) == 1


def test_the_quota_holds_after_a_restart_from_what_was_flushed(app, client, portal_data, make_user, moment):
    token_id, token = token_for(app, make_user, quota=2)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/data/{OPEN}", headers=auth).status_code == 200
    assert client.get(f"/api/data/{OPEN}", headers=auth).status_code == 200
    portal_data.counters.flush()
    restarted = Counters(portal_data.sessions)  # a new process: nothing in memory
    assert restarted.quota_take(token_id, 2) is None
    assert restarted.quota_take(token_id, 3) == 3


def test_the_default_quota_comes_from_the_setting(app, client, portal_data, make_user, moment):
    portal_data.settings.api_daily_quota = 1
    _token_id, token = token_for(app, make_user)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/data/{OPEN}", headers=auth).status_code == 200
    assert client.get(f"/api/data/{OPEN}", headers=auth).status_code == 429


def test_rate_limits_count_per_token_not_per_address(app, client, portal_data, make_user):
    app.config["DATA_API_RATE"] = "2 per minute"
    _a, first = token_for(app, make_user)
    _b, second = token_for(app, make_user)
    one = {"Authorization": f"Bearer {first}"}
    two = {"Authorization": f"Bearer {second}"}
    assert [client.get(f"/api/data/{OPEN}", headers=one).status_code for _ in range(3)] == [200, 200, 429]
    # the same address, another token: its own allowance
    assert [client.get(f"/api/data/{OPEN}", headers=two).status_code for _ in range(2)] == [200, 200]
    # and the address without a token has its own
    assert client.get(f"/api/data/{OPEN}").status_code == 200
    # one token from another address is still the same token
    elsewhere = client.get(f"/api/data/{OPEN}", headers=one, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 429


def test_a_bad_token_gets_no_allowance_of_its_own(client, portal_data):
    answer = client.get(f"/api/data/{OPEN}", headers={"Authorization": "Bearer dcf_not-a-token"})
    assert answer.status_code == 401


def test_usage_is_shown_per_token_on_the_account_page(app, client, auth, portal_data, make_user, moment):
    user_id, email, password = make_user()
    with portal_data.sessions() as s:
        _row, token = accounts.create_token(s, s.get(User, user_id), "夜间同步", 30)
        s.commit()
    for _ in range(4):
        client.get(f"/api/data/{OPEN}", headers={"Authorization": f"Bearer {token}"})
    moment["now"] += dt.timedelta(days=1)
    client.get(f"/api/data/{OPEN}/fields", headers={"Authorization": f"Bearer {token}"})
    portal_data.counters.flush()
    auth.login(email, password)
    page = client.get("/account").get_data(as_text=True)
    section = page[page.index('id="api-usage"') :]
    row = section[section.index("夜间同步") : section.index("</tr>", section.index("夜间同步"))]
    cells = [c.split(">")[-1] for c in row.split("</td>")[1:5]]
    assert cells == ["1", "10000", "9999", "5"]  # today, quota, left today, last 30 days


def test_counters_flush_exactly_once_even_when_a_flush_fails_halfway(portal_data, moment):
    counters = Counters(portal_data.sessions)
    for dataset_id in (1, 2, 3):
        counters.add("download", dataset_id, n=dataset_id)
    statements = {"n": 0}

    def fail_on_the_third(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO DAILY_COUNTERS"):
            statements["n"] += 1
            if statements["n"] == 2:
                raise RuntimeError("the database went away")

    event.listen(portal_data.engine, "before_cursor_execute", fail_on_the_third)
    try:
        with pytest.raises(RuntimeError):
            counters.flush()
    finally:
        event.remove(portal_data.engine, "before_cursor_execute", fail_on_the_third)
    assert stored(portal_data) == 0  # the first upsert was rolled back with the rest
    counters.add("download", 1)  # counted meanwhile
    assert sum(counters.pending().values()) == 7
    counters.flush()
    counters.flush()  # nothing more to add
    assert {i: stored(portal_data, dataset_id=i) for i in (1, 2, 3)} == {1: 2, 2: 2, 3: 3}
    assert counters.pending() == Counter()


def test_a_batch_committed_but_not_forgotten_is_not_added_again(portal_data, moment):
    counters = Counters(portal_data.sessions)
    batch = Counter({(clock.today().isoformat(), "download", 7, 0): 5})
    assert counters.apply("batch-1", batch) is True
    assert counters.apply("batch-1", batch) is False  # the process died before forgetting it: retried
    assert stored(portal_data, dataset_id=7) == 5


def test_counters_in_redis_are_shared_and_flushed_once(portal_data, moment):
    url = "redis://127.0.0.1:6379/12"
    empty_redis(url)
    one = Counters(portal_data.sessions, url, namespace="t")
    two = Counters(portal_data.sessions, url, namespace="t")  # another worker process
    one.add("api_data", 5, 9)
    two.add("api_data", 5, 9, n=2)
    assert one.quota_take(9, 2) == 1 and two.quota_take(9, 2) == 2 and one.quota_take(9, 2) is None
    assert sum(two.pending().values()) == 3
    one.flush()
    two.flush()
    assert stored(portal_data, dataset_id=5, token_id=9) == 3
    assert one.pending() == Counter()


def test_with_redis_away_calls_are_still_counted_once(portal_data, moment):
    """Redis stops answering: downloads and API calls are counted in the process instead (none
    fails, none lost), quotas still hold, and when Redis is back one flush adds both."""
    url = "redis://127.0.0.1:6379/12"
    empty_redis(url)
    counters = Counters(portal_data.sessions, "redis://127.0.0.1:1/0", namespace="t")
    counters.add("download", 5, n=2)
    assert counters.quota_take(9, 2) == 1 and counters.quota_take(9, 2) == 2
    assert counters.quota_take(9, 2) is None  # the quota holds without Redis
    counters.add("api_data", 5, 9)
    assert sum(counters.pending().values()) == 3
    counters.redis = redis.Redis.from_url(url)  # Redis is back
    counters.add("download", 5)
    counters.flush()
    assert stored(portal_data, kind="download", dataset_id=5) == 3
    assert stored(portal_data, kind="api_data", dataset_id=5, token_id=9) == 1
    assert counters.pending() == Counter()
    counters.flush()
    assert stored(portal_data, kind="download", dataset_id=5) == 3  # nothing counted twice


def test_the_minute_tick_flushes_what_downloads_counted(client, portal_data, moment):
    from portal.worker import tick
    from tests.helpers import table_of

    t = table_of(portal_data, OPEN)
    client.get(f"/dataset/{OPEN}/download/{t.id}.csv")
    client.get(f"/dataset/{OPEN}/download/{t.id}.csv")
    assert stored(portal_data, kind="download") == 0  # not yet: counted in memory
    tick(portal_data, dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC))
    assert stored(portal_data, kind="download") == 2


def test_what_a_web_process_counted_is_flushed_when_it_exits(portal_data, moment):
    from portal import counters as counters_module

    counters = Counters(portal_data.sessions)
    counters.start_flushing(3600)  # the minute thread of a web process without Redis
    counters.add("download", 11, n=4)
    counters_module._flush_at_exit()
    assert stored(portal_data, dataset_id=11) == 4


def test_a_web_process_sends_its_counts_to_redis_together_and_at_exit(portal_data, moment):
    """With Redis a web process does not ask it once per call: its counts go every second in one
    transaction, the last ones when it exits, and the job queue's flush adds each once."""
    import time

    from portal import counters as counters_module

    url = "redis://127.0.0.1:6379/12"
    empty_redis(url)
    web = Counters(portal_data.sessions, url, namespace="t")
    queue = Counters(portal_data.sessions, url, namespace="t")  # the job queue's process
    web.start_flushing(3600, send_seconds=0.05)
    try:
        for _ in range(5):
            web.add("download", 5)
        web.add("api_data", 5)
        for _ in range(200):  # the thread sends them (within 0.05 s; a busy machine may take longer)
            if sum(queue.pending().values()) == 6:
                break
            time.sleep(0.05)
        assert queue.pending() == Counter(
            {
                (clock.today().isoformat(), "download", 5, 0): 5,
                (clock.today().isoformat(), "api_data", 5, 0): 1,
            }
        )
    finally:
        web.stop_flushing()
    web.send_seconds = 3600  # counted after the thread's last round: still in the process at exit
    web.add("download", 5, n=2)
    assert sum(queue.pending().values()) == 6 and sum(web.pending().values()) == 8
    counters_module._flush_at_exit()
    assert sum(queue.pending().values()) == 8
    queue.flush()
    queue.flush()
    assert stored(portal_data, kind="download", dataset_id=5) == 7
    assert stored(portal_data, kind="api_data", dataset_id=5) == 1


def test_the_bureau_sets_one_tokens_quota_and_it_is_audited(
    app, client, auth, portal_data, make_user, moment
):
    from portal.models import AuditEvent
    from tests.helpers import post_form

    token_id, token = token_for(app, make_user)
    _bid, bureau_email, bureau_password = make_user(bureau=True)
    auth.login(bureau_email, bureau_password)
    page = client.get("/admin/users").get_data(as_text=True)
    assert f'id="quota-{token_id}"' in page
    answer = post_form(client, f"/admin/tokens/{token_id}/quota", {"quota": "1"}, page="/admin/users")
    assert answer.status_code == 302
    bad = post_form(client, f"/admin/tokens/{token_id}/quota", {"quota": "-5"}, page="/admin/users")
    assert bad.status_code == 400
    auth.logout()  # the session cookie stays: the token still counts
    with portal_data.sessions() as s:
        assert s.get(ApiToken, token_id).daily_quota == 1
        event_ = s.scalar(select(AuditEvent).where(AuditEvent.action == "token_quota_changed"))
        assert event_.target == f"token:{token_id}" and event_.detail["after"] == 1
    auth_header = {"Authorization": f"Bearer {token}"}
    first = client.get(f"/api/data/{OPEN}", headers=auth_header)
    assert first.status_code == 200
    assert client.get(f"/api/data/{OPEN}", headers=auth_header).status_code == 429


def test_calls_answered_from_the_page_cache_are_counted_once_each(settings):
    """With Redis, anonymous API answers are kept by the page cache: each hit is still a call."""
    from portal.app import create_app
    from tests.helpers import harvest_world

    url = "redis://127.0.0.1:6379/13"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "redis_url": url,
            "TESTING": True,
        }
    )
    ctx = app.extensions["portal"]
    try:
        harvest_world(ctx, settings.instance_path.parent / "src")
        client = app.test_client()
        answers = [client.get(f"/api/data/{OPEN}?limit=1") for _ in range(3)]
        assert [a.headers.get("X-Page-Cache") for a in answers] == ["miss", "hit", "hit"]
        assert all("X-Portal-Count" not in a.headers for a in answers)
        ctx.counters.flush()
        with ctx.sessions() as s:
            dataset_id = s.scalar(select(Dataset.id).where(Dataset.name == OPEN))
        assert stored(ctx, kind="api_data", dataset_id=dataset_id) == 3
    finally:
        ctx.engine.dispose()


def test_head_and_preflight_requests_neither_count_nor_use_a_quota(app, client, portal_data, make_user):
    """The attack review: 50 HEADs added 50 'calls' to the public statistics, and a browser's
    preflight used up a token's quota."""
    _token_id, token = token_for(app, make_user, quota=2)
    auth = {"Authorization": f"Bearer {token}"}
    before = stored(portal_data, kind="api_data")
    for _ in range(5):
        client.head(f"/api/data/{OPEN}?limit=1")
        client.options(f"/api/data/{OPEN}", headers=auth)
    assert [client.get(f"/api/data/{OPEN}", headers=auth).status_code for _ in range(3)] == [200, 200, 429]
    portal_data.counters.flush()
    assert stored(portal_data, kind="api_data") - before == 2


def test_an_account_cannot_multiply_its_quota_with_new_tokens(app, portal_data, make_user):
    user_id, _email, _password = make_user()
    with portal_data.sessions() as s:
        user = s.get(User, user_id)
        made = [accounts.create_token(s, user, f"令牌{i}", 30)[0] for i in range(accounts.MOST_TOKENS)]
        with pytest.raises(accounts.AccountError, match="最多同时持有"):
            accounts.create_token(s, user, "再一个", 30)
        accounts.revoke_token(s, user, made[0].id)
        # revoking one frees a place, but not a new day's worth of tokens
        with pytest.raises(accounts.AccountError, match="24 小时内最多新建"):
            accounts.create_token(s, user, "换一个", 30)
