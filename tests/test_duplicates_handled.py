"""Likely duplicates handled, not only listed (Art. 15): the bureau sends a pair to both
departments; one proposes which entry is kept and the other confirms — the entry not kept is
withdrawn, its page leads to the kept one, and a harvest does not publish it again — or either
department dismisses the pair with a reason, and it is no longer listed."""

from __future__ import annotations

from sqlalchemy import select

from portal.catalog.duplicates import likely_duplicates
from portal.models import Dataset, DuplicateCase, OutboxMessage
from tests.catalogs import entry, write_catalog, write_csv
from tests.helpers import post_form


def _two_departments(ctx, folder):
    write_csv(folder / "a.csv", ["药店名称", "地址"], [["甲药店", "柳园街道"]])
    write_csv(folder / "b.csv", ["药店名称", "地址"], [["甲药店", "柳园街道"]])
    rows = [
        entry("DCF-DUP-A", "东昌府区零售药店名录", file="a.csv"),
        entry(
            "DCF-DUP-B",
            "东昌府区零售药店名录",
            file="b.csv",
            dept="东昌府区卫生健康局",
            dept_code="dcf-wsjkj",
        ),
    ]
    path = write_catalog(folder / "catalog.csv", rows)
    from harvest.sources import SpreadsheetSource
    from portal.search.sync import sync

    ctx.harvester().run(SpreadsheetSource(path))
    sync(ctx.sessions, ctx.search)
    return path


def _ids(ctx):
    with ctx.sessions() as s:
        return {d.name: d.id for d in s.scalars(select(Dataset).where(Dataset.name.like("dcf-dup-%")))}


def test_a_pair_sent_by_the_bureau_is_merged_by_the_two_departments(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    path = _two_departments(ctx, ctx.settings.instance_path.parent / "src")
    ids = _ids(ctx)
    bureau, scj, wsj = (
        make_user(bureau=True),
        make_user(curator_of="dcf-scjgj"),
        make_user(curator_of="dcf-wsjkj"),
    )
    with ctx.sessions() as s:
        assert any({p.a.name, p.b.name} == {"dcf-dup-a", "dcf-dup-b"} for p in likely_duplicates(s))

    auth.login(bureau[1], bureau[2])
    page = post_form(
        client,
        "/admin/duplicates/send",
        {"a": ids["dcf-dup-a"], "b": ids["dcf-dup-b"]},
        page="/admin/duplicates",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "已发给两个部门核对" in page and "待核对" in page
    with ctx.sessions() as s:
        told = {
            m.to for m in s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("疑似重复目录%")))
        }
        assert {scj[1], wsj[1]} <= told
        assert not any({p.a.name, p.b.name} == {"dcf-dup-a", "dcf-dup-b"} for p in likely_duplicates(s))
        case_id = s.scalar(select(DuplicateCase.id))
    auth.logout()

    auth.login(scj[1], scj[2])  # 市场监管局 proposes keeping 卫健局's entry
    assert "东昌府区零售药店名录" in client.get("/console/duplicates").get_data(as_text=True)
    post_form(
        client,
        f"/console/duplicates/{case_id}/propose",
        {"keep": ids["dcf-dup-b"]},
        page="/console/duplicates",
    )
    confirm = post_form(
        client,
        f"/console/duplicates/{case_id}/confirm",
        {},
        page="/console/duplicates",
        follow_redirects=True,
    )
    assert "合并须由另一部门确认" in confirm.get_data(as_text=True)  # not by the proposer
    auth.logout()

    auth.login(wsj[1], wsj[2])
    page = post_form(
        client,
        f"/console/duplicates/{case_id}/confirm",
        {},
        page="/console/duplicates",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "已合并" in page
    auth.logout()
    moved = client.get("/dataset/dcf-dup-a")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/dataset/dcf-dup-b")
    assert client.get("/dataset/dcf-dup-b").status_code == 200
    assert "dcf-dup-a" not in client.get("/search?q=零售药店").get_data(as_text=True)

    from harvest.sources import SpreadsheetSource

    ctx.harvester().run(SpreadsheetSource(path))  # the catalog still lists both
    with ctx.sessions() as s:
        merged = s.scalar(select(Dataset).where(Dataset.name == "dcf-dup-a"))
        assert merged.status == "withdrawn" and merged.merged_into_id == ids["dcf-dup-b"]
    assert client.get("/dataset/dcf-dup-a").status_code == 301


def test_a_pair_is_dismissed_with_a_reason_and_no_one_else_may_touch_it(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _two_departments(ctx, ctx.settings.instance_path.parent / "src")
    ids = _ids(ctx)
    bureau, scj = make_user(bureau=True), make_user(curator_of="dcf-scjgj")
    stranger = make_user(curator_of="dcf-jtysj")
    auth.login(bureau[1], bureau[2])
    post_form(
        client,
        "/admin/duplicates/send",
        {"a": ids["dcf-dup-a"], "b": ids["dcf-dup-b"]},
        page="/admin/duplicates",
    )
    again = post_form(
        client,
        "/admin/duplicates/send",
        {"a": ids["dcf-dup-b"], "b": ids["dcf-dup-a"]},
        page="/admin/duplicates",
        follow_redirects=True,
    )
    assert "已在核对中" in again.get_data(as_text=True)
    auth.logout()
    with ctx.sessions() as s:
        case_id = s.scalar(select(DuplicateCase.id))

    auth.login(stranger[1], stranger[2])  # another department's curator
    assert client.get("/console/duplicates").get_data(as_text=True).count("零售药店") == 0
    assert client.post(
        f"/console/duplicates/{case_id}/dismiss", data={"reason": "不是同一数据集合"}
    ).status_code in (400, 404)
    auth.logout()

    auth.login(scj[1], scj[2])
    short = post_form(
        client,
        f"/console/duplicates/{case_id}/dismiss",
        {"reason": "不是"},
        page="/console/duplicates",
        follow_redirects=True,
    )
    assert "至少 5 字" in short.get_data(as_text=True)
    page = post_form(
        client,
        f"/console/duplicates/{case_id}/dismiss",
        {"reason": "两者统计口径不同：一个含诊所，一个不含"},
        page="/console/duplicates",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "已说明不是重复目录" in page
    with ctx.sessions() as s:
        case = s.get(DuplicateCase, case_id)
        assert case.status == "dismissed" and "统计口径" in case.reason
        assert {d.status for d in s.scalars(select(Dataset).where(Dataset.name.like("dcf-dup-%")))} == {
            "published"
        }


def test_an_entry_that_is_not_public_cannot_be_the_one_kept(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _two_departments(ctx, ctx.settings.instance_path.parent / "src")
    ids = _ids(ctx)
    bureau, scj, wsj = (
        make_user(bureau=True),
        make_user(curator_of="dcf-scjgj"),
        make_user(curator_of="dcf-wsjkj"),
    )
    auth.login(bureau[1], bureau[2])
    post_form(
        client,
        "/admin/duplicates/send",
        {"a": ids["dcf-dup-a"], "b": ids["dcf-dup-b"]},
        page="/admin/duplicates",
    )
    auth.logout()
    with ctx.sessions() as s:
        case_id = s.scalar(select(DuplicateCase.id))
    auth.login(scj[1], scj[2])
    post_form(
        client,
        f"/console/duplicates/{case_id}/propose",
        {"keep": ids["dcf-dup-a"]},
        page="/console/duplicates",
    )
    with ctx.sessions.begin() as s:  # then 市场监管局 withdraws the entry it proposed to keep
        s.get(Dataset, ids["dcf-dup-a"]).status = "withdrawn"
    auth.logout()
    auth.login(wsj[1], wsj[2])
    page = post_form(
        client,
        f"/console/duplicates/{case_id}/confirm",
        {},
        page="/console/duplicates",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "须为公开的条目" in page
    with ctx.sessions() as s:
        assert s.get(Dataset, ids["dcf-dup-b"]).status == "published"
