"""Parts of pages kept rendered for everyone the page cache does not serve (portal/fragments.py),
tested from the reader's side: a signed-in reader sees a change the moment it commits — in this
process or another, with Redis or with the instance's generation file —, never another reader's
name, follow state, form token or licensed preview, and the same page as a full render."""

from __future__ import annotations

import re

import pytest
import redis
from sqlalchemy import select, update

from portal.models import Dataset, User
from tests.helpers import another_process, granted, kept_in_worker, login, post_form

REDIS_URL = "redis://127.0.0.1:6379/11"
OPEN, OPEN_TITLE = "371502-scj-0001", "药品零售企业名录"


@pytest.fixture(params=["generation file", "redis", "redis, page cache off"])
def app(request, settings):
    """The portal as deployed without Redis (the instance's generation file) and with it (the
    page cache's generation, shared by every node, whether the page cache is on or not)."""
    from portal.app import create_app

    config = {
        "instance": settings.instance_path,
        "database_url": settings.database_url,
        "search_backend": settings.search_backend,
        "TESTING": True,
    }
    if request.param.startswith("redis"):
        redis.Redis.from_url(REDIS_URL).flushdb()
        config["redis_url"] = REDIS_URL
    if request.param.endswith("page cache off"):
        config["page_cache_seconds"] = 0
    app = create_app(config)
    yield app
    app.extensions["portal"].engine.dispose()


def signed_in(app, make_user, name="读者"):
    client = app.test_client()
    _, email, password = make_user(name=name)
    login(client, email, password)
    return client


def kept(app) -> list[str]:
    """Every part the store holds for every reader, as text."""
    return kept_in_worker(app)


def test_a_withdrawal_leaves_every_page_of_a_signed_in_reader_at_its_commit(app, portal_data, make_user):
    from portal.catalog import curation

    reader = signed_in(app, make_user)
    urls = [
        "/",
        "/search?q=药品",
        f"/dataset/{OPEN}",
        f"/api/3/action/package_show?id={OPEN}",
        "/api/3/action/package_search?q=药品",
        f"/api/data/{OPEN}?limit=2",
    ]
    for url in urls * 2:  # rendered, then served from the kept parts
        assert reader.get(url).status_code == 200
    assert any(OPEN_TITLE in part for part in kept(app)) and app.extensions["portal"].fragments.hits >= 6
    found = reader.get("/api/3/action/package_search?q=药品").get_json()["result"]["results"]
    assert OPEN in [d["name"] for d in found]
    curator_id, _, _ = make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:  # the service alone: no request, no search sync, only the commit
        ds = s.scalar(select(Dataset).where(Dataset.name == OPEN))
        curation.withdraw(s, s.get(User, curator_id), ds, reason="含有不应公开的内容")
        s.commit()
    assert reader.get(f"/dataset/{OPEN}").status_code == 404
    assert reader.get(f"/api/3/action/package_show?id={OPEN}").status_code == 404
    assert OPEN_TITLE not in reader.get("/search?q=药品").get_data(as_text=True)
    assert OPEN_TITLE not in reader.get("/").get_data(as_text=True)
    found = reader.get("/api/3/action/package_search?q=药品").get_json()["result"]["results"]
    assert OPEN not in [d["name"] for d in found]
    assert reader.get(f"/api/data/{OPEN}?limit=2").status_code == 404


def test_an_edit_in_another_process_reaches_the_kept_parts(app, portal_data, make_user, settings):
    """The harvest, the CLI, another worker: its own engine and sessions, the same instance
    (and the same Redis when there is one)."""
    reader = signed_in(app, make_user)
    reader.get(f"/dataset/{OPEN}")
    assert OPEN_TITLE in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    with another_process(app, settings) as other, other.sessions() as s:
        s.scalar(select(Dataset).where(Dataset.name == OPEN)).summary = "2026年12月核对后的新版说明"
        s.commit()
    assert "2026年12月核对后的新版说明" in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)


def test_kept_parts_hold_nothing_of_one_reader(app, portal_data, make_user):
    first = signed_in(app, make_user, name="王小明")
    page = first.get(f"/dataset/{OPEN}").get_data(as_text=True)
    post_form(first, "/follow", {"kind": "dataset", "target": OPEN}, page=f"/dataset/{OPEN}")
    assert "已关注" in first.get(f"/dataset/{OPEN}").get_data(as_text=True)
    first.get("/search?q=药品")
    second = signed_in(app, make_user, name="李四")
    page = second.get(f"/dataset/{OPEN}").get_data(as_text=True)
    assert "王小明" not in page and "李四" in page
    assert "已关注" not in page and ">关注<" in page
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page))
    assert tokens and not tokens & set(re.findall(r'name="csrf_token" value="([^"]+)"', "".join(kept(app))))
    assert not any("csrf_token" in part or "王小明" in part or "李四" in part for part in kept(app))
    # Each reader's own parts (menu, buttons, forms) are kept for them, with no token in them.
    own = "".join(kept_in_worker(app, readers=True))
    assert "王小明" in own and "李四" in own and not tokens & set(re.findall(r'value="([^"]+)"', own))
    # The second reader's own forms work (their token, their nonce).
    answer = post_form(
        second, f"/dataset/{OPEN}/rating", {"stars": "5", "comment": "字段齐全"}, page=f"/dataset/{OPEN}"
    )
    assert answer.status_code in (200, 302)
    assert "字段齐全" in second.get(f"/dataset/{OPEN}").get_data(as_text=True)


def test_a_readers_own_part_is_kept_for_them_with_new_form_secrets_each_time(app, portal_data, make_user):
    """The account menu, the follow buttons and the forms are kept per reader: a page served
    from them carries this session's token and new nonces (a form posted twice is still
    refused), and what they show of the reader changes the moment it changes."""
    reader_id, email, password = make_user(name="张三")
    reader = app.test_client()
    login(reader, email, password)
    first = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    hits = app.extensions["portal"].fragments.hits
    again = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    assert app.extensions["portal"].fragments.hits > hits  # served from the kept parts
    nonces = re.compile(r'name="form_nonce" value="([^"]+)"')
    assert len(set(nonces.findall(again))) == len(nonces.findall(again)) >= 4  # one per form, all new
    assert not set(nonces.findall(first)) & set(nonces.findall(again))
    posted = post_form(
        reader, f"/dataset/{OPEN}/rating", {"stars": "4", "comment": "有用"}, page=f"/dataset/{OPEN}"
    )
    assert posted.status_code in (200, 302)
    # the same rendering of the form posted twice: refused, whatever was kept
    form = re.search(r'action="/dataset/[^"]+/rating".*?</form>', again, re.S).group(0)
    fields = dict(re.findall(r'name="(csrf_token|form_nonce)" value="([^"]+)"', form))
    twice = [
        reader.post(f"/dataset/{OPEN}/rating", data={**fields, "stars": "3", "comment": "再评"})
        for _ in (1, 2)
    ]
    assert twice[0].status_code in (200, 302)
    assert "此表单已提交过" in reader.get(twice[1].headers.get("Location", "/")).get_data(as_text=True) or (
        "此表单已提交过" in twice[1].get_data(as_text=True)
    )
    # A notice arrives (mail is no public change): the menu counts it at once.
    from portal.models import OutboxMessage

    with portal_data.sessions() as s:
        s.add(OutboxMessage(to=email, subject="新版本", body="…", channel="notice"))
        s.commit()
    assert 'class="unread"' in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    # Renamed and made a curator (a user row is no public change either): shown at once.
    with portal_data.sessions() as s:
        s.execute(update(User).where(User.id == reader_id).values(name="张三丰"))
        s.commit()
    page = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    assert "张三丰" in page
    assert "部门控制台" not in page
    from portal.models import Department

    with portal_data.sessions() as s:
        department = s.scalar(select(Department.id).where(Department.code == "dcf-scjgj"))
        s.execute(update(User).where(User.id == reader_id).values(curator_department_id=department))
        s.commit()
    assert "部门控制台" in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)


def test_the_kept_page_is_the_page_a_full_render_gives(app, portal_data, make_user):
    reader = signed_in(app, make_user)
    for url in (f"/dataset/{OPEN}", "/search?q=药品&page=1", "/", f"/api/3/action/package_show?id={OPEN}"):
        app.extensions["portal"].fragments.clear()
        rendered = reader.get(url).get_data(as_text=True)
        served = reader.get(url).get_data(as_text=True)
        # The only per-request differences are the forms' tokens and nonces.
        strip = re.compile(r'name="(csrf_token|form_nonce)" value="[^"]*"')
        assert strip.sub("", served) == strip.sub("", rendered), url


def test_a_comment_shows_at_once_to_other_signed_in_readers(app, portal_data, make_user):
    reader, writer = signed_in(app, make_user), signed_in(app, make_user)
    reader.get(f"/dataset/{OPEN}")
    post_form(
        writer,
        f"/dataset/{OPEN}/rating",
        {"stars": "4", "comment": "地址字段很有用"},
        page=f"/dataset/{OPEN}",
    )
    assert "地址字段很有用" in reader.get(f"/dataset/{OPEN}").get_data(as_text=True)


def test_a_count_added_in_bulk_shows_within_the_parts_lifetime(app, portal_data, make_user):
    """Downloads are added to the dataset's count by a bulk UPDATE (portal/counters.py), which
    moves no generation: a kept page shows the new count once its parts expire (the page
    cache's lifetime, PORTAL_PAGE_CACHE_SECONDS), or at the next public change."""
    import time

    reader = signed_in(app, make_user)
    before = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    with portal_data.sessions() as s:
        s.execute(
            update(Dataset).where(Dataset.name == OPEN).values(download_count=Dataset.download_count + 1234)
        )
        s.commit()
    kept_count = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    app.extensions["portal"].fragments.seconds = 0.2  # instead of a minute
    app.extensions["portal"].fragments.clear()
    reader.get(f"/dataset/{OPEN}")
    time.sleep(0.3)
    after = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    assert "1234" not in before and "1234" not in kept_count and "1234" in after


def test_licensed_previews_are_kept_for_their_grant_only(app, portal_data, make_user, people):
    """A conditional dataset's page shows its grant holder the data inside the grant; another
    signed-in reader (before or after) sees the sample only."""
    granted(portal_data, people, fields=["企业名称", "所属街道"])
    stranger = signed_in(app, make_user)
    holder = app.test_client()
    login(holder, people["applicant"][1], people["applicant"][2])
    licensed = "授权范围内的字段和行"
    assert licensed not in stranger.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert licensed in holder.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert licensed in holder.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert licensed not in stranger.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert licensed not in app.test_client().get("/dataset/371502-scj-0002").get_data(as_text=True)


def test_the_store_keeps_within_its_size_and_refuses_a_form_token():
    from portal.fragments import FileGeneration, Fragments, text_size

    class Fixed(FileGeneration):
        def __init__(self) -> None:
            pass

    store = Fragments(Fixed(), max_bytes=8_000, seconds=60)
    renders = []

    def render(text: str):
        def make() -> str:
            renders.append(text)
            return text

        return make

    for n in range(12):
        store.get_or_render(("page", n), "g1", render("页" * 300), text_size)  # ~800 bytes each, key included
    assert store._size <= 8_000 and ("page", 0) not in store._entries and ("page", 11) in store._entries
    store.get_or_render(("page", 9), "g1", render("x"), text_size)
    assert renders[-1] != "x"  # kept: not rendered again
    store.get_or_render(("page", 9), "g2", render("新"), text_size)
    assert renders[-1] == "新"  # another generation: rendered again
    form = '<form><input type="hidden" name="csrf_token" value="abc"></form>'
    store.get_or_render(("form",), "g2", render(form), text_size)
    assert ("form",) not in store._entries
    store.get_or_render(("later",), "", render("Redis away"), text_size)
    assert ("later",) not in store._entries  # no generation known: nothing kept


def test_a_file_is_refused_the_moment_its_dataset_is_withdrawn_elsewhere(
    app, portal_data, make_user, settings
):
    """A download reads no row while its dataset stays public (what serving the file needs is
    kept per worker): a withdrawal committed by another process ends it at once."""
    from portal.catalog import curation

    with portal_data.sessions() as s:
        table = s.scalar(select(Dataset).where(Dataset.name == OPEN)).current_distributions[0].tables[0]
    url = f"/dataset/{OPEN}/download/{table.id}.csv"
    reader = app.test_client()
    assert reader.get(url).status_code == 200 and reader.get(url).status_code == 200
    curator_id, _, _ = make_user(curator_of="dcf-scjgj")
    with another_process(app, settings) as other, other.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == OPEN))
        curation.withdraw(s, s.get(User, curator_id), ds, reason="含有不应公开的内容")
        s.commit()
    assert reader.get(url).status_code == 404
    assert reader.get(f"/dataset/{OPEN}/download/{table.id}.parquet").status_code == 404


def test_a_forged_host_header_keeps_its_links_to_itself(app, portal_data, make_user):
    """The dataset page shows absolute API links (curl examples): asked for with another Host
    header, they name that host, and nobody else is served them."""
    attacker = app.test_client()
    forged = attacker.get(f"/dataset/{OPEN}", headers={"Host": "evil.example"}).get_data(as_text=True)
    assert "evil.example" in forged
    for reader in (app.test_client(), signed_in(app, make_user)):
        page = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
        assert "evil.example" not in page and "localhost" in page
        assert "evil.example" not in reader.get(f"/api/3/action/package_show?id={OPEN}").get_data(
            as_text=True
        )


def test_with_redis_a_page_new_to_a_worker_is_rendered_once_for_all(app, portal_data, make_user, settings):
    """Workers (and nodes) share the rendered text through Redis: the second worker serves the
    first one's parts, and holds nothing of the first one's reader either."""
    from portal.app import create_app

    if not app.extensions["portal"].settings.redis_url:
        pytest.skip("without Redis each worker renders for itself")
    first = signed_in(app, make_user, name="王小明")
    page = first.get(f"/dataset/{OPEN}").get_data(as_text=True)
    second_worker = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "redis_url": REDIS_URL,
            "page_cache_seconds": app.extensions["portal"].settings.page_cache_seconds,
            "TESTING": True,
        }
    )
    reader = signed_in(second_worker, make_user, name="李四")
    served = reader.get(f"/dataset/{OPEN}").get_data(as_text=True)
    # Nothing of the page rendered again: the misses are this reader's own (follow marks,
    # account menu, follow buttons, forms) and the dataset's row (facts, not text: each worker
    # reads them itself).
    assert second_worker.extensions["portal"].fragments.misses == 5
    assert OPEN_TITLE in served and "王小明" not in served and "李四" in served
    strip = re.compile(r'name="(csrf_token|form_nonce)" value="[^"]*"|王小明|李四')
    assert strip.sub("", served) == strip.sub("", page)
    shared = redis.Redis.from_url(REDIS_URL)
    texts = [shared.get(k).decode() for k in shared.scan_iter("portal:*:parts:*")]
    assert texts and not any("csrf_token" in t or "王小明" in t or "李四" in t for t in texts)
    second_worker.extensions["portal"].engine.dispose()
