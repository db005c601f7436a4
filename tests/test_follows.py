"""Follow and be told (portal/follows.py): a person follows a dataset, a department, a domain
or a saved search, through the pages; what changes later — by a re-harvest, the department's
answer, a withdrawal — reaches them as a notice (and a mail, at once or in a weekly digest)
exactly once. Atom feeds of the newest datasets, a department, a domain and a dataset's history
parse as valid Atom and carry only public datasets."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import feedparser
from sqlalchemy import select

from portal import feedback, follows
from portal.models import Dataset, Follow, Job, OutboxMessage, User
from portal.worker import tick
from tests.catalogs import PHARMACIES, entry, write_csv
from tests.helpers import harvest, login, post_form

SCJ = "371502-scj-0001"


def _follow(client, kind: str, target: str, page: str):
    return post_form(client, "/follow", {"kind": kind, "target": target}, page=page)


def _notices(client) -> str:
    return client.get("/account/notices").get_data(as_text=True)


def _subjects(ctx, email: str) -> list[str]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(OutboxMessage.subject).where(OutboxMessage.to == email).order_by(OutboxMessage.id)
            )
        )


def _told(ctx, email: str, words: str) -> int:
    """How many notices to `email` say `words`."""
    with ctx.sessions() as s:
        bodies = s.scalars(select(OutboxMessage.body).where(OutboxMessage.to == email))
        return sum(words in b for b in bodies)


def _scj_catalog(src, rows=None, extra_column=False, open_class="无条件开放", more=()):
    header, body = PHARMACIES
    if extra_column:
        header = [*header, "联系电话类型"]
        body = [[*r, "固定电话"] for r in body]
    write_csv(src / "p.csv", header, rows or body, "gbk")
    return [
        entry("371502-SCJ-0001", "药品零售企业名录", open_class, file="p.csv", 关键词="药店、许可"),
        entry("371502-SCJ-0002", "企业信用风险分类结果", "有条件开放", file="p.csv", 开放条件="仅限监管用途"),
        *more,
    ]


def test_a_followed_dataset_tells_its_follower_of_a_new_version_and_new_columns_once(
    portal_data, client, make_user, tmp_path
):
    ctx = portal_data
    _, email, password = make_user()
    login(client, email, password)
    page = client.get(f"/dataset/{SCJ}").get_data(as_text=True)
    assert "关注" in page and 'type="application/atom+xml"' in page
    assert _follow(client, "dataset", SCJ, f"/dataset/{SCJ}").status_code == 302
    assert "已关注 · 取消关注" in client.get(f"/dataset/{SCJ}").get_data(as_text=True)
    assert _subjects(ctx, email) == []  # following tells nothing by itself

    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src", extra_column=True))

    subjects = _subjects(ctx, email)
    assert subjects == ["关注的数据集有变化 · 药品零售企业名录"]  # one notice saying both
    assert _told(ctx, email, "发布了新版本数据") == 1
    assert _told(ctx, email, "新增 联系电话类型；删除 —") == 1
    notices = _notices(client)
    assert "发布了新版本数据" in notices and "新增 联系电话类型" in notices
    with ctx.sessions() as s:  # instant: a mail too (a `mail` job for each)
        assert all(
            m.channel == "both" for m in s.scalars(select(OutboxMessage).where(OutboxMessage.to == email))
        )

    # The same catalog again: nothing changed, nobody told; the job run again tells nobody twice.
    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src", extra_column=True))
    with ctx.sessions.begin() as s:
        follows.check(s, ctx.search, "http://portal.test")
    assert _subjects(ctx, email) == subjects


def test_reclassified_withdrawn_and_back_each_reach_the_follower(portal_data, client, make_user, tmp_path):
    ctx = portal_data
    _, email, password = make_user()
    login(client, email, password)
    _follow(client, "dataset", SCJ, f"/dataset/{SCJ}")
    src = tmp_path / "src"

    harvest(ctx, src, _scj_catalog(src, open_class="有条件开放"))
    assert _told(ctx, email, "开放类型由「无条件开放」改为「有条件开放」") == 1
    assert "开放类型由「无条件开放」改为「有条件开放」" in _notices(client)

    harvest(ctx, src, _scj_catalog(src)[1:])  # the entry leaves the catalog: withdrawn
    assert _told(ctx, email, "暂停公开，处理完成后将恢复") == 1
    assert client.get(f"/dataset/{SCJ}").status_code == 404

    harvest(ctx, src, _scj_catalog(src))
    assert _told(ctx, email, "已恢复公开") == 1

    harvest(ctx, src, _scj_catalog(src, open_class="不予开放"))
    assert _told(ctx, email, "已不再开放") == 1
    assert "已不再开放" in _notices(client)


def test_an_answered_error_report_reaches_followers(portal_data, client, make_user):
    ctx = portal_data
    _, email, password = make_user()
    reporter_id, _, _ = make_user()
    curator_id, _, _ = make_user(curator_of="dcf-scjgj")
    login(client, email, password)
    _follow(client, "dataset", SCJ, f"/dataset/{SCJ}")
    with ctx.sessions.begin() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == SCJ))
        report = feedback.report_error(s, s.get(User, reporter_id), ds, "经营面积单位不明确")
    assert _subjects(ctx, email) == []  # a report alone is not news
    with ctx.sessions.begin() as s:
        report = s.merge(report)
        feedback.answer_error(s, s.get(User, curator_id), report, "单位为平方米，已在字段说明中补充")
    assert _told(ctx, email, "有纠错得到答复") == 1


def test_a_department_a_domain_and_a_saved_search_announce_new_datasets(
    portal_data, client, make_user, tmp_path
):
    ctx = portal_data
    _, email, password = make_user()
    login(client, email, password)
    _follow(client, "department", "dcf-scjgj", "/department/dcf-scjgj")
    _follow(client, "search", "q=药品", "/search?q=药品")
    assert "已关注 · 取消关注" in client.get("/search?q=药品").get_data(as_text=True)
    _follow(client, "domain", "交通运输", "/domain/交通运输")
    with ctx.sessions() as s:
        kinds = sorted(f.kind for f in s.scalars(select(Follow)))
    assert kinds == ["department", "domain", "search"]

    wholesale = entry("371502-SCJ-0005", "药品批发企业名录", file="p.csv", 关键词="药品、批发")
    hidden = entry("371502-SCJ-0006", "药品抽检内部底稿", "不予开放", file="p.csv")
    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src", more=[wholesale, hidden]))
    with ctx.sessions.begin() as s:  # the hourly catch-up sees the index the harvest synced
        follows.check(s, ctx.search, "http://portal.test")

    assert sorted(_subjects(ctx, email)) == [
        "关注的新数据集 · 东昌府区市场监督管理局",
        "关注的新数据集 · 药品",
    ]
    # (nothing new in 交通运输)
    notices = _notices(client)
    assert "药品批发企业名录" in notices
    assert "药品抽检内部底稿" not in notices  # not open: never announced


def test_weekly_digest_collects_notices_into_one_mail_on_monday(portal_data, client, make_user, tmp_path):
    ctx = portal_data
    _, email, password = make_user()
    login(client, email, password)
    _follow(client, "dataset", SCJ, f"/dataset/{SCJ}")
    post_form(client, "/account/follows/mail", {"choice": "weekly"}, page="/account/follows")
    with ctx.sessions() as s:
        assert s.scalar(select(User.notice_mail).where(User.email == email)) == "weekly"

    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src", extra_column=True))
    with ctx.sessions() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.to == email)).all()
        assert rows and {m.channel for m in rows} == {"notice"}  # no mail yet
        mailed = {j.payload.get("message") for j in s.scalars(select(Job).where(Job.kind == "mail"))}
        assert not mailed & {m.id for m in rows}

    monday = dt.datetime(2026, 12, 7, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    tick(ctx, now=monday)
    tick(ctx, now=monday + dt.timedelta(hours=2))  # once a week, however often the tick runs
    with ctx.sessions() as s:
        digests = s.scalars(
            select(OutboxMessage).where(OutboxMessage.to == email, OutboxMessage.channel == "mail")
        ).all()
        assert len(digests) == 1 and "关注动态周报" in digests[0].subject
        assert "发布了新版本数据" in digests[0].body
        assert all(
            m.digested_at for m in s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "notice"))
        )
    assert "关注动态周报" not in _notices(client)  # the digest is mail, the notices are already here


def test_only_the_owner_unfollows_and_only_public_things_can_be_followed(portal_data, client, make_user):
    ctx = portal_data
    _, email, password = make_user()
    _, other_email, other_password = make_user()
    login(client, email, password)
    _follow(client, "dataset", SCJ, f"/dataset/{SCJ}")
    with ctx.sessions() as s:
        mine = s.scalar(select(Follow.id))

    for name in ("371502-scj-0003", "371502-scj-0004", "371502-jty-0002", "no-such"):
        response = _follow(client, "dataset", name, "/account/follows")
        assert response.status_code == 302
        assert "数据不存在" in client.get(response.headers["Location"]).get_data(as_text=True)
    with ctx.sessions() as s:
        assert s.scalar(select(Follow.target).where(Follow.id != mine)) is None

    client.post("/logout")
    login(client, other_email, other_password)
    response = post_form(client, f"/follows/{mine}/delete", {}, page="/account/follows")
    assert response.status_code == 404
    with ctx.sessions() as s:
        assert s.get(Follow, mine) is not None

    client.get("/logout")
    anonymous = client.application.test_client()
    page = anonymous.get(f"/dataset/{SCJ}").get_data(as_text=True)
    assert "登录后关注" in page
    assert anonymous.post("/follow", data={"kind": "dataset", "target": SCJ}).status_code in (302, 400)
    with ctx.sessions() as s:
        assert s.scalar(select(Follow.id).where(Follow.id != mine)) is None


def test_favourites_are_kept_and_shown_while_public(portal_data, client, make_user, tmp_path):
    ctx = portal_data
    _, email, password = make_user()
    login(client, email, password)
    post_form(client, f"/dataset/{SCJ}/favourite", {"on": "1"}, page=f"/dataset/{SCJ}")
    assert "已收藏 · 取消收藏" in client.get(f"/dataset/{SCJ}").get_data(as_text=True)
    assert "药品零售企业名录" in client.get("/account/follows").get_data(as_text=True)
    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src", extra_column=True))  # this catalog's now
    harvest(ctx, tmp_path / "src", _scj_catalog(tmp_path / "src")[1:])  # withdrawn
    assert "药品零售企业名录" not in client.get("/account/follows").get_data(as_text=True)
    post_form(client, f"/dataset/{SCJ}/favourite", {"on": "0"}, page="/account/follows")


def _valid_atom(client, url: str):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    return feed


def test_atom_feeds_are_valid_and_list_only_public_datasets(portal_data, client):
    newest = _valid_atom(client, "/feeds/datasets.atom")
    titles = {e.title for e in newest.entries}
    assert {"药品零售企业名录", "企业信用风险分类结果", "公交站点位置"} <= titles
    assert not titles & {"执法检查底稿", "公益岗位人员名单", "Bus routes"}  # not open, held, withdrawn
    assert all(e.link.startswith("http://") and "/dataset/" in e.link for e in newest.entries)
    assert all(e.updated_parsed for e in newest.entries)

    department = _valid_atom(client, "/feeds/department/dcf-jtysj.atom")
    assert [e.title for e in department.entries] == ["公交站点位置"]
    domain = _valid_atom(client, "/feeds/domain/交通运输.atom")
    assert [e.title for e in domain.entries] == ["公交站点位置"]

    history = _valid_atom(client, f"/dataset/{SCJ}/history.atom")
    assert history.entries and "p.csv" in history.entries[0].title
    assert client.get("/dataset/371502-scj-0003/history.atom").status_code == 404  # not open
    assert client.get("/feeds/department/no-such.atom").status_code == 404
    assert client.get("/feeds/domain/没有的领域.atom").status_code == 404


def test_a_search_too_long_to_keep_is_refused_with_words(portal_data, client, make_user):
    _, email, password = make_user()
    login(client, email, password)
    long_search = "q=药品&" + "&".join(f"department=d{i:03d}{'x' * 10}" for i in range(60))
    response = _follow(client, "search", long_search, "/search?q=药品")
    assert response.status_code == 302
    assert "这个搜索太长" in client.get(response.headers["Location"]).get_data(as_text=True)
    with portal_data.sessions() as s:
        assert s.scalar(select(Follow.id)) is None


def test_the_way_back_after_a_button_stays_on_this_site(portal_data, client, make_user):
    _, email, password = make_user()
    login(client, email, password)
    for back in ("/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/", "/\n/x"):
        response = post_form(
            client, f"/dataset/{SCJ}/favourite", {"on": "1", "back": back}, page=f"/dataset/{SCJ}"
        )
        assert response.status_code == 302
        assert response.headers["Location"] == f"/dataset/{SCJ}", back
    response = post_form(
        client, f"/dataset/{SCJ}/favourite", {"on": "0", "back": "/account/follows"}, page="/"
    )
    assert response.headers["Location"] == "/account/follows"
