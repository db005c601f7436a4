"""Downloads of unconditional data, the attribution bundle, and the open lists as files.

Files are streamed from disk by send_file (constant memory; Range, ETag, Last-Modified,
304 and 206 come from Werkzeug); Chinese file names go out as RFC 5987 filename*. With an
object store, a data file is a redirect to a short-lived signed URL of the object instead,
so the bytes come from the store. Either way the portal checks the request and counts it.
Conditional data is never served here: a grant is needed (licensing issue).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import BinaryIO

from flask import Blueprint, abort, redirect, render_template, request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from portal import clock

from .. import catalog, exports, jobs
from ..authz import public
from ..catalog.bundle import bundle_file
from ..messages import _
from ..models import Dataset, DataTable, Department, Distribution, OpenClass
from ..storage import attachment_header
from ..web import db, kept_part, part_generation, portal, send_stored_file

bp = Blueprint("downloads", __name__)
# Werkzeug adds "; charset=utf-8" to text types itself.
MEDIA = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "zip": "application/zip",
}


def _open_table(name: str, table_id: int) -> tuple[Dataset, DataTable]:
    s = db()
    ds = catalog.get_public_dataset(s, name)
    if ds is None or ds.open_class != OpenClass.UNCONDITIONAL.value:
        abort(404)
    table = s.scalar(
        select(DataTable).join(Distribution).where(DataTable.id == table_id, Distribution.dataset_id == ds.id)
    )
    # Any version, current or earlier, is served only if the publication gate passed it and
    # its files are still kept (harvest/gate.py).
    if table is None or not table.distribution.servable:
        abort(404)
    return ds, table


def _count(dataset_id: int) -> None:
    """A download counts once: not again for the later parts of a resumed one."""
    rng = request.headers.get("Range", "").replace(" ", "")
    # A range from the first byte to the end is the start of a download; any other range (a
    # later part of a resumed one, a probe of a few bytes) is not counted again.
    if request.method != "GET" or (rng and rng != "bytes=0-"):
        return
    if request.headers.get("If-None-Match") or request.headers.get("If-Modified-Since"):
        return
    # A download is a read: the count waits in memory or Redis and reaches daily_counters and
    # the dataset's download_count with the next batch (portal/counters.py), so a busy file
    # does not serialise its readers on one row's lock.
    portal().counters.add("download", dataset_id)


def _file_name(ds: Dataset, table: DataTable, ext: str) -> str:
    sheet = f"-{table.sheet}" if table.sheet and len(table.distribution.tables) > 1 else ""
    version = clock.local(table.distribution.fetched_at).date().isoformat()
    # Department text: a line break or a slash in a title must not reach a header or a path.
    stem = exports.file_name(f"{ds.title}{sheet}") or ds.name
    return f"{stem}-{version}.{ext}"


def _ascii_name(ds: Dataset, table: DataTable, ext: str) -> str:
    """The file name for clients that cannot read a Chinese one: identifier, table, version."""
    part = f"-{table.position + 1}" if len(table.distribution.tables) > 1 else ""
    return f"{ds.name}{part}-{clock.local(table.distribution.fetched_at).date().isoformat()}.{ext}"


def _attachment(response, ds: Dataset, table: DataTable, ext: str):  # noqa: ANN001, ANN202
    response.headers["Content-Disposition"] = attachment_header(
        _file_name(ds, table, ext), _ascii_name(ds, table, ext)
    )
    return response


@dataclass(frozen=True)
class PublicFile:
    """What serving one table's files needs, once the dataset and the version are found public,
    unconditional and passed by the gate: kept per worker at the generation of public changes
    (portal/fragments.py), so a download reads no row (a withdrawal, a reclassification or a
    purge moves the generation at its commit, and the next request asks the database again)."""

    dataset_id: int
    formats: dict
    fetched_at: dt.datetime
    stem: str  # the file name up to its extension, dot included (_file_name)
    ascii_stem: str  # the same for clients that cannot read a Chinese name (_ascii_name)


def _public_file(name: str, table_id: int) -> PublicFile:
    generation = part_generation()  # before the rows are read

    def load() -> PublicFile | None:
        ds, table = _open_table(name, table_id)
        return PublicFile(
            ds.id,
            dict(table.formats),
            table.distribution.fetched_at,
            _file_name(ds, table, ""),
            _ascii_name(ds, table, ""),
        )

    found = kept_part(generation, ("download", name, table_id), load, size=lambda f: 1024 if f else None)
    return found or abort(404)


@bp.route("/dataset/<name>/download/<int:table_id>.<fmt>", methods=["GET", "HEAD"])
@public
def download(name: str, table_id: int, fmt: str) -> ResponseReturnValue:
    found = _public_file(name, table_id)
    entry = found.formats.get(fmt) or abort(404)
    storage, download_name = portal().storage, f"{found.stem}{fmt}"
    signed = storage.download_url(entry["path"], download_name, MEDIA[fmt])
    if signed:
        _count(found.dataset_id)
        response = redirect(signed, 302)
        response.headers["Cache-Control"] = "no-store"  # the signed URL expires; ask the portal again
        return response
    response = send_stored_file(
        storage.local_path(entry["path"]),
        mimetype=MEDIA[fmt],
        as_attachment=True,
        download_name=download_name,
        conditional=True,
        etag=entry["sha256"],
        last_modified=found.fetched_at,
        max_age=3600,
    )
    if response.status_code in (200, 206):
        _count(found.dataset_id)
    response.headers["Content-Disposition"] = attachment_header(download_name, f"{found.ascii_stem}{fmt}")
    return response


BOM = b"\xef\xbb\xbf"


@bp.route("/dataset/<name>/download/<int:table_id>.excel.csv", methods=["GET", "HEAD"])
@public
def download_for_excel(name: str, table_id: int) -> ResponseReturnValue:
    """The same UTF-8 CSV with a byte-order mark, which Excel needs to read Chinese (without it
    Excel takes the file for GBK and shows mojibake). Streamed from the stored CSV; the plain
    .csv stays the machine-readable file (its sha256 is published, datapackage.json links it)."""
    from flask import Response, stream_with_context

    ds, table = _open_table(name, table_id)
    entry = table.formats.get("csv") or abort(404)
    path = portal().storage.local_path(entry["path"])
    etag = f'"{entry["sha256"]}-excel"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})

    source = open(path, "rb") if request.method == "GET" else None  # noqa: SIM115  (closed by body())
    # Opened before the answer starts: a file missing behind the portal's back is the 503 of
    # views/errors.py, not a 200 cut off after its BOM (and no download is counted).

    def body(f: BinaryIO):  # noqa: ANN202
        yield BOM
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    _count(ds.id)
    response = Response(
        stream_with_context(body(source)) if source is not None else b"",
        mimetype="text/csv",
        headers={
            "ETag": etag,
            "Content-Length": str(entry["size"] + len(BOM)),
            "Cache-Control": "public, max-age=3600",
        },
    )
    return _attachment(response, ds, table, "csv")


@bp.route("/dataset/<name>/bundle/<int:table_id>.zip", methods=["GET", "HEAD"])
@public
def bundle(name: str, table_id: int) -> ResponseReturnValue:
    """Data + datapackage.json + ATTRIBUTION.txt, dated today (the acquisition date)."""
    ds, table = _open_table(name, table_id)
    today = clock.today()
    path = bundle_file(portal().storage, table, today)
    if not path.exists():  # made by a `bundle` job (at once where jobs run in the request)
        # A data file gone behind the portal's back is said now (503 and a note to the bureau,
        # views/errors.py), not left to a job that would fail out of sight.
        if not portal().storage.local_path(table.formats["csv"]["path"]).exists():
            raise FileNotFoundError(table.formats["csv"]["path"])
        s = db()
        jobs.submit(
            s,
            "bundle",
            {"table": table.id, "day": today.isoformat()},
            key=f"bundle:{table.id}:{today}",
            max_attempts=3,
        )
        s.commit()
        if not path.exists():
            page = render_template("preparing.html", what=_("数据包"), again=request.url)
            return page, 202, {"Retry-After": "5", "Cache-Control": "no-store"}
    response = send_stored_file(
        path,
        mimetype=MEDIA["zip"],
        as_attachment=True,
        download_name=_file_name(ds, table, "zip"),
        conditional=True,
        max_age=0,
    )
    if response.status_code in (200, 206):
        _count(ds.id)
    return _attachment(response, ds, table, "zip")


@bp.get("/department/<code>/lists/<open_class>.<fmt>")
@public
def list_file(code: str, open_class: str, fmt: str) -> ResponseReturnValue:
    s = db()
    dept = s.scalar(select(Department).where(Department.code == code)) or abort(404)
    if open_class not in ("unconditional", "conditional") or fmt not in ("csv", "xlsx"):
        abort(404)
    header, rows = catalog.list_table(catalog.open_lists(s, dept)[open_class], open_class)
    title = f"{dept.name}{'无条件开放清单' if open_class == 'unconditional' else '有条件开放清单'}"
    # Titles, domains and conditions are department text: no cell becomes a formula.
    buf = io.BytesIO(
        exports.csv_bytes(header, rows)
        if fmt == "csv"
        else exports.xlsx_bytes(header, rows, sheet="开放清单", title=title, creator=dept.name)
    )
    today = clock.today().isoformat()
    response = send_file(buf, mimetype=MEDIA[fmt])
    response.headers["Content-Disposition"] = attachment_header(
        f"{exports.file_name(title) or code}-{today}.{fmt}", f"{code}-{open_class}-{today}.{fmt}"
    )
    return response


@bp.get("/dataset/<name>/datapackage.json")
@public
def datapackage_json(name: str) -> ResponseReturnValue:
    """The dataset as a Frictionless data package: each current table's UTF-8 CSV by URL,
    with its schema, size and sha256. Unconditional data only; conditional data needs a grant."""
    from flask import jsonify, url_for

    from ..catalog.bundle import package, resource

    ds = catalog.get_public_dataset(db(), name)
    if ds is None or ds.open_class != OpenClass.UNCONDITIONAL.value:
        abort(404)
    tables = ds.served_tables
    if not tables:
        abort(404)
    resources = [
        resource(
            t,
            f"table-{i}" if len(tables) > 1 else "data",
            url_for("downloads.download", name=ds.name, table_id=t.id, fmt="csv", _external=True),
        )
        for i, t in enumerate(tables)
    ]
    version = clock.local(max(t.distribution.fetched_at for t in tables)).date().isoformat()
    response = jsonify(package(ds, resources, version, site=request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
