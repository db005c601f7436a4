"""A department uploads its catalog in the console (portal/catalog/department_catalog.py): alone or
in a ZIP with its data files; a dry run shows what would change, entry by entry, and nothing is
published until the curator confirms; the catalog speaks for its own department only; a ZIP
cannot write outside its folder or grow past the size limit."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import select

from portal.models import Dataset
from tests.catalogs import entry, write_catalog
from tests.helpers import post_form


def _zip(tmp_path, entries, files: dict[str, str]) -> bytes:
    catalog = write_catalog(tmp_path / "目录.csv", entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.write(catalog, "目录.csv")
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def _upload(client, name: str, body: bytes):
    return post_form(
        client,
        "/console/catalog",
        {"catalog": (io.BytesIO(body), name)},
        page="/console/catalog",
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)


def _statuses(ctx) -> dict[str, str]:
    with ctx.sessions() as s:
        return {d.name: d.status for d in s.scalars(select(Dataset).where(Dataset.name.like("dcf-cat-%")))}


def test_a_departments_catalog_is_checked_then_harvested_when_confirmed(
    app, client, auth, make_user, tmp_path
):
    ctx = app.extensions["portal"]
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    entries = [
        entry("DCF-CAT-001", "个体工商户登记信息", file="data/firms.csv"),
        entry("DCF-CAT-002", "广告经营许可信息", file="data/ads.csv"),
        entry(
            "DCF-CAT-003",
            "道路运输许可",
            file="data/ads.csv",
            dept="东昌府区交通运输局",
            dept_code="dcf-jtysj",
        ),
    ]
    files = {
        "data/firms.csv": "字号,街道\n甲商店,柳园街道\n",
        "data/ads.csv": "单位,许可证号\n乙广告公司,GG001\n",
    }
    page = _upload(client, "市场监管局目录.zip", _zip(tmp_path, entries, files))
    assert "试采集结果" in page and "DCF-CAT-001" in page
    assert "不是上传目录表的部门" in page  # another department's entry: refused, with the reason
    assert _statuses(ctx) == {}  # the dry run published nothing

    page = post_form(
        client, "/console/catalog/confirm", {}, page="/console/catalog", follow_redirects=True
    ).get_data(as_text=True)
    assert "已确认" in page
    assert _statuses(ctx) == {"dcf-cat-001": "published", "dcf-cat-002": "published"}
    assert client.get("/dataset/dcf-cat-001").status_code == 200
    again = post_form(client, "/console/catalog/confirm", {}, page="/console/catalog", follow_redirects=True)
    assert "已确认过" in again.get_data(as_text=True) or "请先上传" in again.get_data(as_text=True)

    # The next catalog drops an entry: the dry run says it would be withdrawn, the harvest does it.
    page = _upload(
        client, "目录-12月.zip", _zip(tmp_path, entries[:1], {"data/firms.csv": files["data/firms.csv"]})
    )
    assert "已撤回" in page and "DCF-CAT-002" in page
    assert _statuses(ctx)["dcf-cat-002"] == "published"
    post_form(client, "/console/catalog/confirm", {}, page="/console/catalog")
    assert _statuses(ctx) == {"dcf-cat-001": "published", "dcf-cat-002": "withdrawn"}


def test_a_zip_cannot_escape_its_folder_or_exceed_the_limit(app, client, auth, make_user, tmp_path):
    ctx = app.extensions["portal"]
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("目录.csv", "信息资源代码\n")
        zf.writestr("../../escaped.csv", "x")
    assert "不安全的路径" in _upload(client, "a.zip", buffer.getvalue())
    assert not (ctx.settings.instance_path / "escaped.csv").exists()
    assert not list((ctx.settings.instance_path / "sources").rglob("escaped.csv"))

    ctx.settings.upload_max_mb = 1
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("目录.csv", "信息资源代码\n")
        zf.writestr("data/big.csv", "0" * (5 * 1024 * 1024))  # 5 MB unpacked from a few KB
    assert len(bomb.getvalue()) < 100_000
    assert "超过上限" in _upload(client, "b.zip", bomb.getvalue())
    assert "请上传目录表" in _upload(client, "c.exe", b"MZ")
    assert not [p for p in (ctx.settings.instance_path / "sources").rglob("*") if p.is_file()]  # nothing left


def test_only_a_curator_uploads_a_catalog(client, auth, make_user):
    _, email, password = make_user("company")
    auth.login(email, password)
    assert client.get("/console/catalog").status_code in (403, 404)
