"""A department uploads a new version of a data file in the console (portal/catalog/uploads.py):
in chunks written straight to disk, resumable; checked in a dry run that changes nothing public;
masked where the report finds personal data; published only when the curator confirms, with the
replaced version kept in the history."""

from __future__ import annotations

import gc
import hashlib
import io
import tracemalloc

from sqlalchemy import select

from portal.models import Dataset, Upload
from tests.catalogs import entry, write_catalog, write_csv
from tests.helpers import hidden_fields, post_form

NAME = "dcf-up-001"


def _dataset(ctx, folder):
    from harvest.sources import SpreadsheetSource
    from portal.search.sync import sync

    write_csv(folder / "shops.csv", ["店名", "街道"], [["甲超市", "柳园街道"], ["乙超市", "古楼街道"]])
    ctx.harvester().run(
        SpreadsheetSource(
            write_catalog(folder / "catalog.csv", [entry("DCF-UP-001", "超市名录", file="shops.csv")])
        )
    )
    sync(ctx.sessions, ctx.search)


def _start(client, size: int, filename: str = "超市名录2026.csv"):
    page = client.get(f"/console/datasets/{NAME}/upload").get_data(as_text=True)
    token = hidden_fields(page)["csrf_token"]
    answer = client.post(
        f"/console/datasets/{NAME}/uploads",
        json={"filename": filename, "size": size},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json(), token


def _send(client, upload, token, body: bytes, offset: int = 0, finish: bool = True):
    while offset < len(body):
        chunk = body[offset : offset + upload["chunk"]]
        answer = client.put(
            f"{upload['url']}?offset={offset}",
            data=chunk,
            headers={"X-CSRFToken": token, "Content-Type": "application/octet-stream"},
        )
        assert answer.status_code in (200, 409), answer.get_data(as_text=True)
        offset = answer.get_json()["received"]
        del answer, chunk
        gc.collect()  # the test client's request and response refer to each other (and to the chunk)
    return client.post(upload["finish"], headers={"X-CSRFToken": token}) if finish else None


NEW_VERSION = (
    "东昌府区超市名录（2026年12月）\n"  # a title row above the header
    "店名,街道,负责人手机\n"
    "甲超市,柳园街道,13812345678\n"
    "乙超市,古楼街道,13987654321\n"
    "丙超市,新区街道,15612345678\n"
).encode()


def test_a_new_version_is_checked_masked_and_published_only_when_confirmed(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    upload, token = _start(client, len(NEW_VERSION))
    assert _send(client, upload, token, NEW_VERSION).status_code == 200

    report = client.get(upload["report"]).get_data(as_text=True)
    assert "暂缓发布" in report and "负责人手机" in report and "138****5678" in report
    assert "东昌府区超市名录（2026年12月）" in report  # the title row, found and left out
    auth.logout()
    page = client.get(f"/dataset/{NAME}").get_data(as_text=True)
    assert "2 行" in page and "负责人手机" not in page  # nothing public changed by the check
    auth.login(curator[1], curator[2])

    post_form(
        client,
        f"/console/uploads/{upload['id']}/masking",
        {"mask:负责人手机": "partial"},
        page=upload["report"],
    )
    report = client.get(upload["report"]).get_data(as_text=True)
    assert "检查未发现问题" in report, report[report.find("<main") :][:2000]
    post_form(client, f"/console/uploads/{upload['id']}/publish", {}, page=upload["report"])
    assert "新版本已发布处理" in client.get(upload["report"]).get_data(as_text=True)
    auth.logout()

    page = client.get(f"/dataset/{NAME}").get_data(as_text=True)
    assert "3 行" in page and "负责人手机" in page
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == NAME))
        assert ds.status == "published"
        assert len(ds.distributions) == 2 and ds.distributions[0].superseded_at is not None  # history kept
        table = ds.current_distributions[0].tables[0]
        download = client.get(f"/dataset/{NAME}/download/{table.id}.csv").get_data(as_text=True)
    assert "13812345678" not in download and "138" in download and "甲超市" in download


def test_an_interrupted_upload_resumes_and_never_holds_the_file_in_memory(
    app, client, auth, make_user, monkeypatch
):
    from portal.catalog import uploads

    monkeypatch.setattr(uploads, "CHUNK_BYTES", 8 * 1024 * 1024)  # several chunks of a 110 MB file
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    rows = "".join(f"店{i},柳园街道\n" for i in range(4_500_000))
    body = ("店名,街道\n" + rows).encode()  # about 110 MB
    upload, token = _start(client, len(body))

    first = client.put(
        f"{upload['url']}?offset=0", data=body[: upload["chunk"]], headers={"X-CSRFToken": token}
    )
    assert first.get_json()["received"] == upload["chunk"]
    wrong = client.put(
        f"{upload['url']}?offset=0", data=body[: upload["chunk"]], headers={"X-CSRFToken": token}
    )
    assert wrong.status_code == 409 and wrong.get_json()["received"] == upload["chunk"]  # resume from here
    state = client.get(f"/console/uploads/{upload['id']}/state").get_json()
    assert state == {"received": upload["chunk"], "size": len(body), "status": "receiving"}

    tracemalloc.start()
    _send(client, upload, token, body, offset=state["received"], finish=False)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The test client holds the chunk it sends; the portal reads it in 1 MiB blocks straight to
    # disk: the traced peak is a few chunks, never the file.
    assert peak < 2 * upload["chunk"] + 4 * 1024 * 1024 < len(body) / 3, peak
    with ctx.sessions() as s:
        kept = s.get(Upload, upload["id"])
        assert kept.received == len(body)
    from portal.catalog.uploads import part_path

    assert (
        hashlib.sha256(part_path(ctx.uploads_folder, kept).read_bytes()).digest()
        == hashlib.sha256(body).digest()
    )


def test_uploads_belong_to_their_department_and_refuse_what_they_cannot_hold(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    owner, other = make_user(curator_of="dcf-scjgj"), make_user(curator_of="dcf-jtysj")
    auth.login(owner[1], owner[2])
    upload, token = _start(client, 10)
    refused = client.post(
        f"/console/datasets/{NAME}/uploads",
        json={"filename": "../../etc/passwd.sh", "size": 10},
        headers={"X-CSRFToken": token},
    )
    assert refused.status_code == 400 and "CSV 或 XLSX" in refused.get_data(as_text=True)
    too_big = client.post(
        f"/console/datasets/{NAME}/uploads",
        json={"filename": "a.csv", "size": 10 * 1024**4},
        headers={"X-CSRFToken": token},
    )
    assert too_big.status_code == 400 and "超过上限" in too_big.get_data(as_text=True)
    overflow = client.put(f"{upload['url']}?offset=0", data=b"x" * 11, headers={"X-CSRFToken": token})
    assert overflow.status_code == 400
    auth.logout()
    auth.login(other[1], other[2])
    assert client.get(upload["report"]).status_code == 404
    assert client.put(f"{upload['url']}?offset=0", data=b"x", headers={"X-CSRFToken": token}).status_code in (
        400,
        404,
    )


def test_without_script_the_form_uploads_the_whole_file(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    page = f"/console/datasets/{NAME}/upload"
    answer = post_form(
        client,
        f"/console/datasets/{NAME}/uploads",
        {"file": (io.BytesIO("店名,街道\n丁超市,柳园街道\n".encode()), "新名录.csv")},
        page=page,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    text = answer.get_data(as_text=True)
    assert "检查未发现问题" in text and "新名录.csv" in text


def test_a_file_name_with_personal_data_is_refused(app, client, auth, make_user):
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    page = client.get(f"/console/datasets/{NAME}/upload").get_data(as_text=True)
    answer = client.post(
        f"/console/datasets/{NAME}/uploads",
        json={"filename": "张三_110101199003071237_13812345678.csv", "size": 10},
        headers={"X-CSRFToken": hidden_fields(page)["csrf_token"]},
    )
    assert answer.status_code == 400 and "文件名中不得含个人信息" in answer.get_json()["error"]


def test_what_changed_since_the_upload_began_is_respected(app, client, auth, make_user):
    """Masking chosen on the dataset after the upload began stays; a dataset made not open in
    the meantime gets no file."""
    ctx = app.extensions["portal"]
    folder = ctx.settings.instance_path.parent / "src"
    write_csv(folder / "shops.csv", ["店名", "负责人手机"], [["甲超市", "13812345678"]])
    from harvest.sources import SpreadsheetSource

    ctx.harvester().run(
        SpreadsheetSource(
            write_catalog(
                folder / "catalog.csv", [entry("DCF-UP-001", "超市名录", "有条件开放", file="shops.csv")]
            )
        )
    )
    curator = make_user(curator_of="dcf-scjgj")
    auth.login(curator[1], curator[2])
    body = "店名,负责人手机\n甲超市,13812345678\n丙超市,15612345678\n".encode()
    upload, token = _start(client, len(body))
    page = f"/console/datasets/{NAME}"
    post_form(client, f"{page}/masking", {"mask:负责人手机": "partial"}, page=page)  # after the start
    _send(client, upload, token, body)
    post_form(client, f"/console/uploads/{upload['id']}/publish", {}, page=upload["report"])
    with ctx.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == NAME))
        assert ds.masking and "负责人手机" in ds.masking
        table = ds.current_distributions[0].tables[0]
        assert "15612345678" not in ctx.storage.local_path(table.csv_path).read_text(encoding="utf-8")

    second, token = _start(client, len(body))
    _send(client, second, token, body)
    with ctx.sessions.begin() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == NAME))
        ds.open_class, ds.status = "not_open", "internal"
    refused = post_form(
        client, f"/console/uploads/{second['id']}/publish", {}, page=second["report"], follow_redirects=True
    )
    assert "不予开放" in refused.get_data(as_text=True)
    with ctx.sessions() as s:
        assert s.get(Upload, second["id"]).status == "checked"


class _NeverSent(io.RawIOBase):
    """A request body that never arrives: reading it fails the test."""

    def readable(self) -> bool:
        return True

    size, position = 1000, 0  # what werkzeug's test client measures as the Content-Length

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.size if whence == io.SEEK_END else offset
        return self.position

    read = False

    def readinto(self, buffer) -> int:
        self.read = True
        raise AssertionError("the body of a refused chunk was read")


def test_no_body_is_read_before_the_route_allows_it(app, client, auth, make_user):
    """nginx passes a chunk on while it arrives: no hook may read a body (the CSRF check, the
    form nonce, the NUL check) before the route is known to take it, or a slow anonymous sender
    holds a worker's thread. Chunks typed as anything but bytes, other methods on the chunk's
    path and paths no route takes are all answered unread; the page's own chunks still go
    through. (The attack review found POST, PATCH, a path with ".." and a JSON chunk with a
    token read anonymously from /login all read the body before anyone was known.)"""
    ctx = app.extensions["portal"]
    _dataset(ctx, ctx.settings.instance_path.parent / "src")
    owner = make_user(curator_of="dcf-scjgj")
    auth.login(owner[1], owner[2])
    upload, token = _start(client, len(NEW_VERSION))
    anonymous = app.test_client()
    anonymous_token = hidden_fields(anonymous.get("/login").get_data(as_text=True))["csrf_token"]
    chunk = f"{upload['url']}?offset=0"
    attempts = [
        (sender, method, path, kind, {"X-CSRFToken": csrf})
        for sender, csrf in ((anonymous, anonymous_token), (client, token))
        for method, path, kind in (
            ("PUT", chunk, "application/x-www-form-urlencoded"),
            ("PUT", chunk, "multipart/form-data; boundary=x"),
            ("PUT", chunk, "application/json"),
            ("PUT", chunk, "text/plain"),
            ("POST", chunk, "application/x-www-form-urlencoded"),
            ("POST", chunk, "application/json"),
            ("PATCH", chunk, "application/x-www-form-urlencoded"),
            ("POST", "/x/../" + chunk.lstrip("/"), "application/x-www-form-urlencoded"),
            ("POST", "/no-such-page", "application/json"),
        )
    ]
    for sender, method, path, kind, headers in attempts:
        body = _NeverSent()
        answer = sender.open(
            path, method=method, input_stream=body, headers={"Content-Type": kind, **headers}
        )
        assert not body.read and answer.status_code in (404, 405, 415), (
            method,
            path,
            kind,
            answer.status_code,
        )
    assert _send(client, upload, token, NEW_VERSION).status_code in (200, 302)
