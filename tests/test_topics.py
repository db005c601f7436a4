"""Topics (专题): the bureau gathers public datasets on a theme (picked from the catalog with a
search that works without script); a topic page shows only what is public now. Related
datasets on a dataset page: near ones, public ones, never itself."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Dataset, FieldDescription
from tests import factories
from tests.helpers import hidden_fields, login, post_form


@pytest.fixture
def world(app):
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        factories.dataset(s, "371502-mz-0001", "养老机构名录", dept="dcf-mzj", domain="民政服务")
        factories.dataset(s, "371502-mz-0002", "社区养老服务中心", dept="dcf-mzj", domain="民政服务")
        factories.dataset(
            s, "371502-mz-0003", "养老补贴发放名单", dept="dcf-mzj", domain="民政服务", status="held"
        )
        factories.dataset(
            s, "371502-mz-0004", "养老床位统计", dept="dcf-mzj", domain="民政服务", open_class="not_open"
        )
        factories.dataset(s, "371502-wj-0001", "医疗机构名录", dept="dcf-wjj", domain="医疗卫生")
        factories.dataset(s, "371502-jt-0001", "公交站点位置", dept="dcf-jtj", domain="交通运输")
        s.commit()
    return ctx


@pytest.fixture
def roles(make_user):
    return {
        "bureau": make_user(bureau=True),
        "curator": make_user(curator_of="dcf-mzj"),
        "citizen": make_user(),
    }


def client_as(app, who):
    c = app.test_client()
    login(c, *who[1:])
    return c


def dataset_links(html: str) -> list[str]:
    return re.findall(r'href="/dataset/([^"#?]+)"', html)


def make_topic(client, datasets, **fields):
    data = {
        "slug": "elderly-care",
        "title": "养老服务",
        "title_en": "Elderly care",
        "description": "养老机构、社区服务等数据",
        "description_en": "Care homes and community services",
        "position": "1",
        "published": "y",
        "datasets": datasets,
        **fields,
    }
    return post_form(client, "/admin/topics/new", data, follow_redirects=True)


def test_the_bureau_picks_datasets_by_searching_and_publishes_a_topic(app, world, roles):
    bureau = client_as(app, roles["bureau"])
    form = bureau.get("/admin/topics/new").get_data(as_text=True)
    # The picker without script: "查找" posts the form as typed, the results come back as checkboxes.
    found = bureau.post(
        "/admin/topics/new",
        data={**hidden_fields(form), "title": "养老服务", "slug": "elderly-care", "q": "养老", "find": "1"},
    ).get_data(as_text=True)
    boxes = re.findall(r'name="datasets" value="([^"]+)"', found)
    assert sorted(boxes) == ["371502-mz-0001", "371502-mz-0002"]  # held and not-open ones are not offered
    assert 'value="养老服务"' in found  # what was typed is kept
    saved = make_topic(bureau, ["371502-mz-0002", "371502-mz-0001"]).get_data(as_text=True)
    assert "专题「养老服务」已保存。" in saved

    public = app.test_client()
    listing = public.get("/topics").get_data(as_text=True)
    assert "养老服务" in listing and "/topics/elderly-care" in listing
    page = public.get("/topics/elderly-care").get_data(as_text=True)
    assert dataset_links(page) == ["371502-mz-0002", "371502-mz-0001"]  # in the bureau's order
    assert "Elderly care" in public.get("/topics/elderly-care?lang=en").get_data(as_text=True)
    assert "/topics/elderly-care" in public.get("/").get_data(as_text=True)  # linked from the home page
    with world.sessions() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "topic_saved")).all()
        assert event.target == "topic:elderly-care"


def test_a_dataset_no_longer_public_leaves_the_topic_page_by_itself(app, world, roles):
    bureau = client_as(app, roles["bureau"])
    make_topic(bureau, ["371502-mz-0001", "371502-mz-0002", "371502-wj-0001"])
    public = app.test_client()
    assert len(dataset_links(public.get("/topics/elderly-care").get_data(as_text=True))) == 3
    with world.sessions() as s:
        s.scalar(select(Dataset).where(Dataset.name == "371502-mz-0001")).status = "withdrawn"
        s.scalar(select(Dataset).where(Dataset.name == "371502-wj-0001")).open_class = "not_open"
        s.commit()
    page = public.get("/topics/elderly-care").get_data(as_text=True)
    assert dataset_links(page) == ["371502-mz-0002"]
    assert "养老机构名录" not in page and "医疗机构名录" not in page
    assert "1 项" in public.get("/topics").get_data(as_text=True)
    with world.sessions() as s:  # public again: back on the page, nobody edited the topic
        s.scalar(select(Dataset).where(Dataset.name == "371502-mz-0001")).status = "published"
        s.commit()
    assert "371502-mz-0001" in dataset_links(public.get("/topics/elderly-care").get_data(as_text=True))


def test_a_topic_takes_only_public_datasets_and_a_draft_is_not_shown(app, world, roles):
    bureau = client_as(app, roles["bureau"])
    refused = make_topic(bureau, ["371502-mz-0001", "371502-mz-0003"]).get_data(as_text=True)
    assert "以下数据集不存在或未公开：371502-mz-0003" in refused
    bad_slug = make_topic(bureau, ["371502-mz-0001"], slug="养老").get_data(as_text=True)
    assert "标识须为 3–60 个小写字母、数字或连字符" in bad_slug
    make_topic(bureau, ["371502-mz-0001"], published="")
    assert app.test_client().get("/topics/elderly-care").status_code == 404
    assert "养老服务" not in app.test_client().get("/topics").get_data(as_text=True)


@pytest.mark.parametrize("who", ["curator", "citizen", None])
def test_only_the_bureau_edits_topics(app, world, roles, who):
    c = client_as(app, roles[who]) if who else app.test_client()
    assert c.get("/admin/topics").status_code == (403 if who else 302)  # signed out: to the login page
    form = c.get("/topics").get_data(as_text=True)
    answer = c.post(
        "/admin/topics/new",
        data={**hidden_fields(form), "slug": "x-y-z", "title": "偷偷建的专题", "published": "y"},
    )
    assert answer.status_code in ((400, 403) if who else (302, 400))
    with world.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "topic_saved")) is None


def test_related_datasets_are_near_public_and_never_the_dataset_itself(app, world):
    with world.sessions() as s:
        mz = s.scalar(select(Dataset).where(Dataset.name == "371502-mz-0001"))
        bus = s.scalar(select(Dataset).where(Dataset.name == "371502-jt-0001"))
        for ds in (mz, bus):  # a shared column links a dataset of another department and domain
            s.add(FieldDescription(dataset_id=ds.id, name="统一社会信用代码"))
        s.commit()
    page = app.test_client().get("/dataset/371502-mz-0001").get_data(as_text=True)
    related = page.split('id="related"', 1)[1].split("</section>", 1)[0]
    names = dataset_links(related)
    assert names[0] == "371502-mz-0002"  # same domain, department and title word
    assert "371502-jt-0001" in names  # shared column
    assert "371502-mz-0001" not in names  # never itself
    assert "371502-mz-0003" not in names and "371502-mz-0004" not in names  # held, not open
    with world.sessions() as s:
        s.scalar(select(Dataset).where(Dataset.name == "371502-mz-0002")).status = "withdrawn"
        s.commit()
    page = app.test_client().get("/dataset/371502-mz-0001").get_data(as_text=True)
    assert "371502-mz-0002" not in dataset_links(page.split('id="related"', 1)[1])
