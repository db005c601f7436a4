"""The page cache (portal/page_cache.py) with the real Redis: anonymous readers get cached
answers; the moment a change to the catalog commits — in this process or another — nobody
does; signed-in users, token holders and downloads never touch it."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from portal.models import Dataset, User
from tests.helpers import login, post_form

REDIS_URL = "redis://127.0.0.1:6379/10"


@pytest.fixture
def app(settings):
    from portal.app import create_app

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "redis_url": REDIS_URL,
            "TESTING": True,
        }
    )
    yield app
    app.extensions["portal"].engine.dispose()


def app_with_redis_away(settings, **config):
    """The portal configured with a Redis nothing answers at."""
    from portal.app import create_app

    return create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "redis_url": "redis://127.0.0.1:1/0",
            "TESTING": True,
            **config,
        }
    )


def cache_state(response) -> str | None:
    return response.headers.get("X-Page-Cache")


PAGES = [
    "/",
    "/search?q=药品",
    "/dataset/371502-scj-0001",
    "/api/3/action/package_show?id=371502-scj-0001",
    "/api/3/action/package_search?q=药品",
    "/api/data/371502-scj-0001?limit=2",
    "/catalog.ttl",
]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_readers_get_the_same_answer_from_the_cache(client, portal_data, url):
    first, second = client.get(url), client.get(url)
    assert first.status_code == second.status_code == 200
    assert (cache_state(first), cache_state(second)) == ("miss", "hit")
    assert second.get_data() == first.get_data()
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert "X-Portal-Cacheable" not in second.headers and "X-RateLimit-Remaining" not in second.headers


def test_a_withdrawn_dataset_leaves_every_cached_page_at_its_commit(client, portal_data, make_user):
    from portal.catalog import curation

    curator_id, _, _ = make_user(curator_of="dcf-scjgj")
    urls = [
        "/dataset/371502-scj-0001",
        "/search?q=药品",
        "/api/3/action/package_search?q=药品",
        "/api/3/action/package_show?id=371502-scj-0001",
        "/",
    ]
    for url in urls:
        client.get(url)
    assert cache_state(client.get("/dataset/371502-scj-0001")) == "hit"
    with portal_data.sessions() as s:  # the service alone: no request, no search sync, only the commit
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        curation.withdraw(s, s.get(User, curator_id), ds, reason="含有不应公开的内容")
        s.commit()
    assert client.get("/dataset/371502-scj-0001").status_code == 404
    assert "药品零售企业名录" not in client.get("/search?q=药品").get_data(as_text=True)
    found = client.get("/api/3/action/package_search?q=药品").get_json()["result"]["results"]
    assert "371502-scj-0001" not in [d["name"] for d in found]
    assert client.get("/api/3/action/package_show?id=371502-scj-0001").status_code == 404
    assert "药品零售企业名录" not in client.get("/").get_data(as_text=True)


def test_a_harvest_in_another_process_reclassifying_to_not_open_invalidates(
    client, portal_data, settings, tmp_path
):
    from harvest.sources import SpreadsheetSource
    from portal.config import Settings
    from portal.context import PortalContext
    from tests.catalogs import entry, write_catalog

    assert cache_state(client.get("/dataset/371502-jty-0001")) == "miss"
    assert cache_state(client.get("/dataset/371502-jty-0001")) == "hit"
    # The nightly harvest: its own process, its own engine and sessions, the same Redis.
    harvest_side = PortalContext(
        Settings(
            instance_path=settings.instance_path,
            database_url=settings.database_url,
            search_backend=settings.search_backend,
            redis_url=REDIS_URL,
        )
    )
    catalog = write_catalog(
        tmp_path / "src/jty.csv",
        [
            entry(
                "371502-JTY-0001",
                "公交站点位置",
                "不予开放",
                file="stops.csv",
                dept="东昌府区交通运输局",
                dept_code="dcf-jtysj",
                数据领域="交通运输",
            )
        ],
    )
    harvest_side.harvester().run(SpreadsheetSource(catalog))
    harvest_side.engine.dispose()
    assert client.get("/dataset/371502-jty-0001").status_code == 404
    assert "公交站点位置" not in client.get("/search").get_data(as_text=True)


def test_signed_in_users_are_never_served_from_nor_stored_into_the_cache(client, app, portal_data, make_user):
    _, email, password = make_user(name="王小明")
    reader = app.test_client()
    assert cache_state(reader.get("/dataset/371502-scj-0001")) == "miss"
    login(client, email, password)
    page = client.get("/dataset/371502-scj-0001")
    assert cache_state(page) is None and "王小明" in page.get_data(as_text=True)
    anonymous = reader.get("/dataset/371502-scj-0001")
    assert cache_state(anonymous) == "hit" and "王小明" not in anonymous.get_data(as_text=True)


def test_languages_and_formats_are_cached_apart(client, app, portal_data):
    chinese = client.get("/dataset/371502-scj-0001").get_data(as_text=True)
    english = app.test_client()
    english.set_cookie("lang", "en")
    first = english.get("/dataset/371502-scj-0001")
    assert cache_state(first) == "miss"
    assert first.get_data(as_text=True) != chinese and 'lang="en"' in first.get_data(as_text=True)
    assert cache_state(english.get("/dataset/371502-scj-0001")) == "hit"
    turtle = client.get("/catalog", headers={"Accept": "text/turtle"})
    jsonld = client.get("/catalog", headers={"Accept": "application/ld+json"})
    assert cache_state(jsonld) == "miss" and jsonld.mimetype == "application/ld+json" != turtle.mimetype


def test_downloads_and_token_holders_bypass_the_cache(client, portal_data):
    with portal_data.sessions() as s:
        table = (
            s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
            .current_distributions[0]
            .tables[0]
        )
    download = client.get(f"/dataset/371502-scj-0001/download/{table.id}.csv")
    assert download.status_code == 200 and cache_state(download) is None
    again = client.get(f"/dataset/371502-scj-0001/download/{table.id}.csv")
    assert cache_state(again) is None
    with_token = client.get("/api/data/371502-scj-0002", headers={"Authorization": "Bearer dcf_forged"})
    assert with_token.status_code == 401 and cache_state(with_token) is None
    anonymous = client.get("/api/data/371502-scj-0002")
    assert anonymous.status_code == 401 and cache_state(anonymous) is None  # refusals are never stored


def test_a_download_does_not_empty_the_cache(client, portal_data):
    """Downloads write a count and an event on every request; they must not flush the cache."""
    with portal_data.sessions() as s:
        table = (
            s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
            .current_distributions[0]
            .tables[0]
        )
    client.get("/dataset/371502-scj-0001")
    assert client.get(f"/dataset/371502-scj-0001/download/{table.id}.csv").status_code == 200
    assert cache_state(client.get("/dataset/371502-scj-0001")) == "hit"


def test_a_comment_shows_to_anonymous_readers_at_once(client, app, portal_data, make_user):
    """Feedback changes what the dataset page shows: the cached page goes with it."""
    reader = app.test_client()
    reader.get("/dataset/371502-scj-0001")
    assert cache_state(reader.get("/dataset/371502-scj-0001")) == "hit"
    _, email, password = make_user()
    login(client, email, password)
    post_form(
        client,
        "/dataset/371502-scj-0001/rating",
        {"stars": "4", "comment": "地址字段很有用"},
        page="/dataset/371502-scj-0001",
    )
    page = reader.get("/dataset/371502-scj-0001")
    assert cache_state(page) == "miss" and "地址字段很有用" in page.get_data(as_text=True)


def test_without_redis_pages_are_rendered_and_changes_still_commit(settings):
    """Redis down: the portal answers as if there were no cache, and a change still commits
    (rate limits are off here: they need Redis too, which is another matter)."""
    app = app_with_redis_away(settings, RATELIMIT_ENABLED=False)
    ctx = app.extensions["portal"]
    client = app.test_client()
    home = client.get("/")
    assert home.status_code == 200 and cache_state(home) is None
    with ctx.sessions() as s:
        from portal.models import Department

        s.add(Department(code="dcf-test", name="测试部门"))
        s.commit()  # the bump fails after the commit: logged, not raised
    assert client.get("/department/dcf-test").status_code == 200
    ctx.engine.dispose()


def test_a_download_is_served_without_asking_the_cache(settings, portal_data, caplog):
    """Files are never stored, so a download does not wait on Redis first: with Redis away a
    page notes the cache missing, a download has nothing to note. Nothing fails meanwhile:
    counts and rate limits fall back to the process (portal/counters.py, portal/limits.py)."""
    import logging

    from tests.helpers import table_of

    app = app_with_redis_away(settings)
    client = app.test_client()
    table = table_of(portal_data, "371502-scj-0001")
    with caplog.at_level(logging.WARNING, logger="portal.page_cache"):
        for url in (
            f"/dataset/371502-scj-0001/download/{table.id}.csv",
            f"/dataset/371502-scj-0001/download/{table.id}.excel.csv",
        ):
            answer = client.get(url)
            assert answer.status_code == 200 and answer.get_data().count(b"\n") > 1
        assert "page cache unavailable" not in caplog.text
        assert client.get("/dataset/371502-scj-0001").status_code == 200
        assert "page cache unavailable" in caplog.text
    assert client.get("/api/data/371502-scj-0001?limit=2").get_json()["records"]
    app.extensions["portal"].engine.dispose()
