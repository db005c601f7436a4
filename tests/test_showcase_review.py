"""The showcase (成果展示) reuses the catalog: an entry links datasets picked from the public
catalog, carries an image cleaned of its metadata and an author, and is public only once the
bureau approved it; each linked dataset's page lists it."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import select

from portal.models import AuditEvent, Dataset, OutboxMessage, ShowcaseItem
from tests import factories
from tests.helpers import hidden_fields, login

GPS = 0x8825


@pytest.fixture
def world(app):
    ctx = app.extensions["portal"]
    with ctx.sessions() as s:
        factories.dataset(s, "371502-scj-0101", "药品零售企业名录", domain="市场监管")
        factories.dataset(s, "371502-scj-0102", "食品经营许可", domain="市场监管")
        factories.dataset(s, "371502-scj-0103", "执法检查底稿", open_class="not_open", status="internal")
        s.commit()
    return ctx


@pytest.fixture
def roles(make_user):
    return {
        "bureau": make_user(bureau=True),
        "curator": make_user(curator_of="dcf-scjgj"),
        "citizen": make_user(name="李四"),
    }


def client_as(app, who):
    c = app.test_client()
    login(c, *who[1:])
    return c


def jpeg_with_gps(width=2400, height=1600) -> bytes:
    image = Image.new("RGB", (width, height), (200, 80, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x013B] = "张三"  # artist
    exif.get_ifd(GPS).update({1: "N", 2: (36.0, 27.0, 1.5), 3: "E", 4: (115.0, 59.0, 7.2)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def png_bomb() -> bytes:
    """A PNG that claims 100,000 × 100,000 pixels in a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def submit(client, datasets=("371502-scj-0101",), image: bytes | None = None, **fields):
    form = client.get("/showcase").get_data(as_text=True)
    data = {
        **hidden_fields(form),
        "title": "药店地图",
        "description": "在地图上查找附近药店和营业信息",
        "url": "https://example.cn/map",
        "author": "东昌开发小组",
        "attribution": "数据来源：东昌府区市场监督管理局《药品零售企业名录》，获取日期：2026-11-21",
        "datasets": list(datasets),
        **fields,
    }
    if image is not None:
        data["image"] = (io.BytesIO(image), "photo.jpg")
    return client.post("/showcase", data=data, content_type="multipart/form-data", follow_redirects=True)


def only_item(ctx) -> ShowcaseItem:
    with ctx.sessions() as s:
        [item] = s.scalars(select(ShowcaseItem)).all()
        s.expunge(item)
        return item


def decide(client, item_id, decision, reason=""):
    form = client.get("/admin/showcase").get_data(as_text=True)
    return client.post(
        f"/admin/showcase/{item_id}/{decision}",
        data={**hidden_fields(form), "reason": reason},
        follow_redirects=True,
    )


def test_an_entry_is_public_only_after_the_bureau_approves_it(app, world, roles):
    citizen = client_as(app, roles["citizen"])
    # The picker: a search posts the form back with the public datasets found, as checkboxes.
    form = citizen.get("/showcase").get_data(as_text=True)
    found = citizen.post(
        "/showcase", data={**hidden_fields(form), "title": "药店地图", "q": "名录", "find": "1"}
    ).get_data(as_text=True)
    assert re.findall(r'name="datasets" value="([^"]+)"', found) == ["371502-scj-0101"]
    assert 'value="药店地图"' in found
    answer = submit(citizen, image=jpeg_with_gps()).get_data(as_text=True)
    assert "已提交，大数据局审核通过后在成果展示中公开。" in answer
    item = only_item(world)
    assert item.status == "pending"

    public = app.test_client()
    assert "药店地图" not in public.get("/showcase").get_data(as_text=True)
    assert "药店地图" not in public.get("/dataset/371502-scj-0101").get_data(as_text=True)
    assert public.get(f"/showcase/{item.id}/image").status_code == 404  # a pending image is not public
    assert citizen.get(f"/showcase/{item.id}/image").status_code == 200  # its submitter sees it
    assert "待审核" in citizen.get("/showcase").get_data(as_text=True)

    bureau = client_as(app, roles["bureau"])
    review = bureau.get("/admin/showcase").get_data(as_text=True)
    assert "药店地图" in review and "东昌开发小组" in review
    assert "「药店地图」已通过审核，现已公开。" in decide(bureau, item.id, "approve").get_data(as_text=True)

    page = public.get("/showcase").get_data(as_text=True)
    assert "药店地图" in page and "东昌开发小组" in page and f"/showcase/{item.id}/image" in page
    dataset_page = public.get("/dataset/371502-scj-0101").get_data(as_text=True)
    assert "使用该数据的应用" in dataset_page and "药店地图" in dataset_page
    assert "药店地图" not in public.get("/dataset/371502-scj-0102").get_data(as_text=True)
    with world.sessions() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "showcase_approved")).all()
        assert event.target == f"showcase:{item.id}"
        [mail] = s.scalars(
            select(OutboxMessage).where(OutboxMessage.subject.like("成果展示已通过审核%"))
        ).all()
        assert mail.to == roles["citizen"][1]
    assert "成果展示已通过审核" in citizen.get("/account/notices").get_data(as_text=True)


def test_the_image_is_resized_and_stripped_of_its_metadata(app, world, roles):
    citizen = client_as(app, roles["citizen"])
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS)  # the upload has a position
    submit(citizen, image=original)
    item = only_item(world)
    decide(client_as(app, roles["bureau"]), item.id, "approve")
    answer = app.test_client().get(f"/showcase/{item.id}/image")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    served = Image.open(io.BytesIO(answer.data))
    assert served.size == (1200, 800)
    assert not served.getexif() and "exif" not in served.info and "comment" not in served.info
    assert b"PhoneMaker" not in answer.data and "张三".encode() not in answer.data
    assert b"secret comment" not in answer.data


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (b"<html><script>alert(1)</script></html>", "请上传 JPEG、PNG 或 WebP 格式的图片"),
        (png_bomb(), "图片尺寸过大，请缩小后再上传"),
        (b"GIF89a" + b"\0" * 100, "请上传 JPEG、PNG 或 WebP 格式的图片"),
    ],
)
def test_a_file_that_is_not_an_image_or_a_bomb_is_refused_with_a_message(app, world, roles, upload, message):
    citizen = client_as(app, roles["citizen"])
    answer = submit(citizen, image=upload).get_data(as_text=True)
    assert message in answer
    with world.sessions() as s:
        assert s.scalar(select(ShowcaseItem)) is None


def test_datasets_are_picked_from_the_public_catalog(app, world, roles):
    citizen = client_as(app, roles["citizen"])
    assert "请选择应用使用的数据集" in submit(citizen, datasets=()).get_data(as_text=True)
    refused = submit(citizen, datasets=("371502-scj-0101", "371502-scj-0103")).get_data(as_text=True)
    assert "以下数据集不存在或未公开：371502-scj-0103" in refused
    assert "执法检查底稿" not in refused


def test_a_rejection_needs_reasons_and_the_submitter_is_told(app, world, roles):
    submit(client_as(app, roles["citizen"]))
    item = only_item(world)
    bureau = client_as(app, roles["bureau"])
    assert "不予展示时请说明理由" in decide(bureau, item.id, "reject").get_data(as_text=True)
    assert "不予展示，已通知提交者" in decide(bureau, item.id, "reject", "与数据无关的广告").get_data(
        as_text=True
    )
    assert "药店地图" not in app.test_client().get("/showcase").get_data(as_text=True)
    with world.sessions() as s:
        assert s.get(ShowcaseItem, item.id).status == "rejected"
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "showcase_rejected")).all()
        assert event.detail["reason"] == "与数据无关的广告"
        [mail] = s.scalars(
            select(OutboxMessage).where(OutboxMessage.subject.like("成果展示未通过审核%"))
        ).all()
        assert "与数据无关的广告" in mail.body
    assert "该成果已审核" in decide(bureau, item.id, "approve").get_data(as_text=True)


def test_a_dataset_no_longer_public_stops_being_listed(app, world, roles):
    submit(client_as(app, roles["citizen"]), datasets=("371502-scj-0101", "371502-scj-0102"))
    item = only_item(world)
    decide(client_as(app, roles["bureau"]), item.id, "approve")
    public = app.test_client()
    assert "食品经营许可" in public.get("/showcase").get_data(as_text=True)
    with world.sessions() as s:
        s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0102")).status = "withdrawn"
        s.commit()
    page = public.get("/showcase").get_data(as_text=True)
    assert "药店地图" in page and "药品零售企业名录" in page and "食品经营许可" not in page


@pytest.mark.parametrize("who", ["curator", "citizen"])
def test_only_the_bureau_reviews(app, world, roles, who):
    submit(client_as(app, roles["citizen"]))
    item = only_item(world)
    c = client_as(app, roles[who])
    assert c.get("/admin/showcase").status_code == 403
    form = c.get("/showcase").get_data(as_text=True)
    assert c.post(f"/admin/showcase/{item.id}/approve", data=hidden_fields(form)).status_code == 403
    assert only_item(world).status == "pending"
    assert "药店地图" not in app.test_client().get("/showcase").get_data(as_text=True)


def test_an_instance_with_showcase_entries_upgrades_them_to_links(tmp_path):
    """Migration 0023: the typed names become links to the datasets they name; entries shown
    before review existed stay shown, hidden ones become rejected; the single pages are there."""
    from alembic import command
    from sqlalchemy import text

    from portal.db import alembic_config, make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0022")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO departments (code, name, created_at) VALUES ('dcf-x', '某局', '2026-01-01')")
        )
        for name in ("371502-x-0001", "371502-x-0002"):
            conn.execute(
                text(
                    "INSERT INTO datasets (name, title, summary, department_id, tags, source_fields, edits, status, "
                    "source_ref, download_count, search_dirty, created_at, updated_at) VALUES (:n, '停车场', '', 1, "
                    "'[]', '{}', '{}', 'published', 'x', 0, 1, '2026-01-01', '2026-01-01')"
                ),
                {"n": name},
            )
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash, name, kind, is_bureau, session_version, created_at) "
                "VALUES ('a@example.cn', 'x', '甲', 'citizen', 0, 1, '2026-01-01')"
            )
        )
        for title, names, hidden in (
            ("停车地图", '["371502-x-0002", " 371502-x-0001", "no-such-name"]', 0),
            ("旧广告", '["371502-x-0001"]', 1),
        ):
            conn.execute(
                text(
                    "INSERT INTO showcase (user_id, title, description, attribution, datasets, created_at, hidden) "
                    "VALUES (1, :t, '介绍介绍介绍介绍介绍', '来源', :d, '2026-01-01', :h)"
                ),
                {"t": title, "d": names, "h": hidden},
            )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT title, status FROM showcase ORDER BY id")).all() == [
            ("停车地图", "approved"),
            ("旧广告", "rejected"),
        ]
        links = conn.execute(
            text("SELECT showcase_id, dataset_id FROM showcase_datasets ORDER BY 1, 2")
        ).all()
        assert links == [(1, 1), (1, 2), (2, 1)]
        kinds = conn.execute(text("SELECT kind FROM pages ORDER BY kind")).scalars().all()
        assert kinds == ["faq", "guide", "privacy", "terms"]
    engine.dispose()
