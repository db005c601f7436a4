"""Data files on an object store (PORTAL_FILES_URL=s3://...): the same portal, with every
stored file in a bucket of a real S3 server (moto's, speaking S3 HTTP on loopback), read
through a local cache, and downloads redirected to signed URLs of the objects.

The whole module runs on that store: it overrides conftest's `files_store`, so the
`portal_data` harvest writes into the bucket."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import uuid
import zipfile
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from harvest.gate import purge_files
from portal.app import create_app
from portal.cli import main
from portal.config import Settings
from portal.models import Dataset, Distribution
from tests.helpers import downloads_of, files_of, login, table_counts, table_of


@pytest.fixture
def files_store(bucket, s3_endpoint) -> dict:
    return {"files_url": f"s3://{bucket[1]}/files", "files_options": {"endpoint_url": s3_endpoint}}


def objects(bucket, prefix: str = "files/") -> dict[str, bytes]:
    """What the bucket holds under the portal's prefix, read with boto3 (not the portal)."""
    s3, name = bucket
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
        for o in page.get("Contents", [])
    ]
    return {
        k[len(prefix) :]: s3.get_object(Bucket=name, Key=k)["Body"].read()
        for k in keys
        if k.startswith(prefix)
    }


def stored_names(ctx) -> set[str]:
    with ctx.sessions() as s:
        dists = s.scalars(select(Distribution)).all()
        return {d.original_path for d in dists} | {
            f["path"] for d in dists for t in d.tables for f in t.formats.values()
        }


def test_the_harvest_stores_every_file_in_the_bucket_and_none_in_the_files_folder(
    portal_data, bucket, settings, tmp_path
):
    stored = objects(bucket)
    names = stored_names(portal_data)
    assert names and names <= stored.keys()
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        original = ds.current_distributions[0].original_path
    assert stored[original] == (tmp_path / "src/p.csv").read_bytes()  # the GBK original, byte for byte
    assert not any(k.startswith("371502-scj-0003/") for k in stored)  # not open: never fetched
    assert not settings.files_path.exists()  # no local files folder at all
    assert not any((settings.instance_path / "scratch").iterdir())  # the harvest's work folder is left empty


def test_pages_and_the_data_api_read_the_objects_through_a_local_cache(client, portal_data, settings):
    cache = settings.instance_path / "cache" / "files"
    table = table_of(portal_data, "371502-scj-0001")
    shutil.rmtree(cache, ignore_errors=True)  # an operator may clean the cache at any time

    page = client.get("/dataset/371502-scj-0001")
    assert page.status_code == 200 and "聊城市水城医药柳园店" in page.get_data(as_text=True)  # the preview
    assert (cache / table.parquet_path).is_file()  # fetched once, read from disk from now on

    shutil.rmtree(cache)
    rows = client.get("/api/data/371502-scj-0001", query_string={"eq[所属街道]": "柳园街道"})
    assert rows.status_code == 200
    assert [r["企业名称"] for r in rows.get_json()["records"]] == ["聊城市水城医药柳园店"]


def test_a_download_is_counted_then_redirected_to_a_signed_url_of_the_object(
    client, portal_data, bucket, s3_endpoint
):
    table = table_of(portal_data, "371502-scj-0001")
    url = f"/dataset/371502-scj-0001/download/{table.id}.csv"
    before = downloads_of(portal_data, "371502-scj-0001")

    head = client.head(url)
    assert (
        head.status_code == 302 and downloads_of(portal_data, "371502-scj-0001") == before
    )  # HEAD is not a download
    response = client.get(url)
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    assert (
        location.startswith(f"{s3_endpoint}/")
        and "X-Amz-Signature=" in location
        and "X-Amz-Expires=300" in location
    )
    assert downloads_of(portal_data, "371502-scj-0001") == before + 1

    fetched = requests.get(location, timeout=10)  # what the browser does next: the bytes come from the store
    assert fetched.status_code == 200
    assert fetched.content == objects(bucket)[table.csv_path]
    assert hashlib.sha256(fetched.content).hexdigest() == table.formats["csv"]["sha256"]
    assert "聊城市鲁西大药房古楼店" in fetched.content.decode("utf-8")
    assert fetched.headers["Content-Type"].startswith("text/csv")
    disposition = fetched.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("药品零售企业名录-")

    conditional = table_of(portal_data, "371502-scj-0002")
    assert client.get(f"/dataset/371502-scj-0002/download/{conditional.id}.csv").status_code == 404


def test_the_bundle_is_built_on_local_disk_from_the_object(client, portal_data, bucket, settings):
    table = table_of(portal_data, "371502-scj-0001")
    response = client.get(f"/dataset/371502-scj-0001/bundle/{table.id}.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as zf:
        assert zf.read("data.csv") == objects(bucket)[table.csv_path]
        assert "东昌府区市场监督管理局" in zf.read("ATTRIBUTION.txt").decode()
    response.close()
    assert [p.suffix for p in (settings.instance_path / "cache" / "bundles").iterdir()] == [".zip"]
    assert objects(bucket).keys() == stored_names(portal_data)  # nothing derived went to the bucket


def test_a_licensed_download_is_cut_from_the_object_and_kept_nowhere(
    app, portal_data, granted_world, bucket, settings
):
    shutil.rmtree(settings.instance_path / "cache" / "files", ignore_errors=True)
    client = app.test_client()
    _, email, password = granted_world
    login(client, email, password)
    link = re.search(
        r'href="(/grants/\d+/download/[^"]+)"', client.get("/grants").get_data(as_text=True)
    ).group(1)
    response = client.get(link, follow_redirects=True)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as zf:
        table = pq.read_table(io.BytesIO(zf.read("data.parquet")))
    response.close()
    assert (
        sorted(table.column_names) == ["企业名称", "所属街道"] and table.num_rows == 3
    )  # in the grant's order
    licensed = settings.instance_path / "cache" / "licensed"
    assert not licensed.exists() or not any(licensed.iterdir())
    assert objects(bucket).keys() == stored_names(portal_data)


def test_a_backup_of_the_bucket_restores_into_a_local_folder_instance(
    app, settings, portal_data, files_store, bucket, tmp_path
):
    shutil.rmtree(settings.instance_path / "cache", ignore_errors=True)  # the backup must read the bucket
    archive = tmp_path / "backup.tar.gz"
    runner = CliRunner()
    env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_FILES_URL": files_store["files_url"],
        "PORTAL_FILES_OPTIONS": json.dumps(files_store["files_options"]),
    }
    made = runner.invoke(main, ["--instance", str(settings.instance_path), "backup", str(archive)], env=env)
    assert made.exit_code == 0, made.output

    target = tmp_path / "restored"
    done = runner.invoke(
        main,
        ["--instance", str(target), "restore", str(archive)],
        env={"PORTAL_DATABASE_URL": "", "PORTAL_FILES_URL": "", "PORTAL_FILES_OPTIONS": ""},
    )
    assert done.exit_code == 0, done.output
    restored = create_app({"instance": target, "TESTING": True})
    storage = restored.extensions["portal"].storage
    assert storage.root == (target / "files").resolve()
    stored = objects(bucket)
    assert files_of(storage.root) == {k: hashlib.sha256(v).hexdigest() for k, v in stored.items()}

    table = table_of(portal_data, "371502-scj-0001")
    local = restored.test_client().get(f"/dataset/371502-scj-0001/download/{table.id}.csv")
    assert local.status_code == 200 and local.get_data() == stored[table.csv_path]  # sent by the portal again
    local.close()
    restored.extensions["portal"].engine.dispose()


def test_not_open_means_gone_from_the_bucket_and_the_cache(client, portal_data, bucket, settings):
    table = table_of(portal_data, "371502-scj-0001")
    assert client.get("/dataset/371502-scj-0001").status_code == 200  # its Parquet file is now in the cache
    folder = table.parquet_path.rsplit("/", 1)[0]
    assert (settings.instance_path / "cache" / "files" / folder).is_dir()
    with portal_data.sessions() as s:
        purge_files(portal_data.storage, s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001")))
        s.commit()
    assert not any(k.startswith(f"{folder}/") for k in objects(bucket))
    assert not (settings.instance_path / "cache" / "files" / folder).exists()
    assert any(k.startswith("371502-jty-0001/") for k in objects(bucket))  # other datasets untouched


def test_names_that_would_leave_the_store_are_refused(portal_data, bucket, tmp_path):
    s3, name = bucket
    s3.create_bucket(Bucket=f"{name}-other")
    s3.put_object(Bucket=f"{name}-other", Key="secret", Body=b"another bucket")
    s3.put_object(Bucket=name, Key="outside-the-prefix", Body=b"same bucket, outside the portal's prefix")
    before = objects(bucket, ""), objects((s3, f"{name}-other"), "")
    storage = portal_data.storage
    src = tmp_path / "upload.csv"
    src.write_bytes(b"a,b\n")
    for relative in ("../outside-the-prefix", f"../../{name}-other/secret", "/etc/passwd", "a/../../b"):
        for call, args in (
            (storage.local_path, ()),
            (storage.put, (src,)),
            (storage.remove_tree, ()),
            (storage.download_url, ("x.csv", "text/csv")),
        ):
            with pytest.raises(ValueError):
                call(*args, relative) if call is storage.put else call(relative, *args)
    for whole_store in ("", ".", "a/.."):
        with pytest.raises(ValueError):
            storage.remove_tree(whole_store)
    assert (objects(bucket, ""), objects((s3, f"{name}-other"), "")) == before
    assert src.exists()


def test_files_options_come_from_json_in_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_FILES_URL", "s3://archive/portal")
    monkeypatch.setenv(
        "PORTAL_FILES_OPTIONS",
        '{"endpoint_url": "https://oss.example.cn", "client_kwargs": {"region_name": "cn-north-1"}}',
    )
    settings = Settings.load({"instance": tmp_path})
    assert settings.files_url == "s3://archive/portal"
    assert settings.files_options == {
        "endpoint_url": "https://oss.example.cn",
        "client_kwargs": {"region_name": "cn-north-1"},
    }
    monkeypatch.setenv("PORTAL_FILES_OPTIONS", "endpoint_url=https://oss.example.cn")
    with pytest.raises(ValueError, match="PORTAL_FILES_OPTIONS"):
        Settings.load({"instance": tmp_path})


def test_a_store_that_cannot_sign_urls_has_its_files_sent_by_the_portal(tmp_path):
    """fsspec's in-memory file system has no signed URLs: the portal sends the local copy,
    and not through nginx (its internal location aliases the local files folder only)."""
    from harvest.sources import SpreadsheetSource
    from tests.catalogs import PHARMACIES, entry, write_catalog, write_csv

    app = create_app(
        {
            "instance": tmp_path / "instance",
            "files_url": f"memory://portal-{uuid.uuid4().hex}",
            "x_accel_prefix": "/_files",
            "TESTING": True,
        }
    )
    ctx = app.extensions["portal"]
    write_csv(tmp_path / "src/p.csv", *PHARMACIES)
    ctx.harvester().run(
        SpreadsheetSource(
            write_catalog(
                tmp_path / "src/c.csv", [entry("371502-SCJ-0001", "药品零售企业名录", file="p.csv")]
            )
        )
    )
    table = table_of(ctx, "371502-scj-0001")
    assert ctx.storage.fs.cat_file(f"{ctx.storage.base}/{table.csv_path}")  # it is in the store
    response = app.test_client().get(f"/dataset/371502-scj-0001/download/{table.id}.csv")
    assert response.status_code == 200 and "X-Accel-Redirect" not in response.headers
    assert hashlib.sha256(response.get_data()).hexdigest() == table.formats["csv"]["sha256"]
    assert unquote(response.headers["Content-Disposition"].split("filename*=UTF-8''")[1]).startswith(
        "药品零售企业名录-"
    )
    response.close()
    ctx.engine.dispose()


def test_a_restore_into_a_bucket_not_made_yet_stops_before_writing_and_runs_again_once_it_is(
    settings, portal_data, bucket, s3_endpoint, tmp_path
):
    """The operator's mistake in the field: restoring before creating the bucket. Nothing is
    written, the message says what to do, and the same command then succeeds."""
    s3, _name = bucket
    archive = tmp_path / "backup.tar.gz"
    runner = CliRunner()
    source_env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_FILES_URL": f"s3://{bucket[1]}/files",
        "PORTAL_FILES_OPTIONS": json.dumps({"endpoint_url": s3_endpoint}),
    }
    made = runner.invoke(
        main, ["--instance", str(settings.instance_path), "backup", str(archive)], env=source_env
    )
    assert made.exit_code == 0, made.output

    new_bucket = f"portal-{uuid.uuid4().hex[:12]}"
    target = tmp_path / "restored"
    env = {
        "PORTAL_DATABASE_URL": "",
        "PORTAL_FILES_URL": f"s3://{new_bucket}/files",
        "PORTAL_FILES_OPTIONS": json.dumps({"endpoint_url": s3_endpoint}),
    }
    failed = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env)
    assert failed.exit_code != 0 and "存储桶" in failed.output
    left = create_app(
        {
            "instance": target,
            "TESTING": True,
            "files_url": f"s3://{new_bucket}/files",
            "files_options": {"endpoint_url": s3_endpoint},
        }
    )
    counts = table_counts(left.extensions["portal"].engine)
    counts.pop("search_synonyms"), counts.pop("deployment")  # a new instance's seed and identity
    counts.pop("pages"), counts.pop("page_versions")  # and its first guide, FAQ, terms and privacy
    assert set(counts.values()) == {0}
    left.extensions["portal"].engine.dispose()

    s3.create_bucket(Bucket=new_bucket)
    again = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env)
    assert again.exit_code == 0, again.output
    restored = objects((s3, new_bucket))
    assert restored == objects(bucket) and restored  # every file, byte for byte


def test_a_node_pointed_at_another_bucket_does_not_start(app, settings, s3_endpoint, bucket, tmp_path):
    """Every node of a portal reads and writes one bucket: a node set up with another would
    serve none of the portal's files and store its own where no other node looks."""
    from portal.context import PortalContext
    from portal.deployment import DeploymentMismatch

    s3, _ = bucket
    s3.create_bucket(Bucket="another-portal-bucket")
    node = Settings(
        instance_path=tmp_path / "node-2",
        database_url=settings.database_url,
        secret_key=settings.load_secret_key(),
        files_url="s3://another-portal-bucket/files",
        files_options={"endpoint_url": s3_endpoint},
    )
    with pytest.raises(DeploymentMismatch, match="PORTAL_FILES_URL"):
        PortalContext(node)
    same = PortalContext(
        Settings(
            instance_path=tmp_path / "node-3",
            database_url=settings.database_url,
            secret_key=settings.load_secret_key(),
            files_url=settings.files_url,
            files_options={"endpoint_url": s3_endpoint},
        )
    )
    assert same.identity == app.extensions["portal"].identity
    same.engine.dispose()
