"""A department gives a new version of a data file in the console (issue 19, item 3; Art. 14–16:
a department keeps its open list current without a shell).

1. start(): the curator names the file and its size; an Upload row and an empty part file.
2. append(): the browser sends the file in chunks (32 MiB), each written straight to the part
   file in 1 MiB blocks — no whole file in memory, any size up to the limit; a chunk at the
   wrong offset is refused with the offset the server has, so an interrupted upload resumes.
3. finish() queues a `check_upload` job: the real harvester makes the new version on a
   throwaway copy of the database and a scratch folder (portal/db.py throwaway), and the
   report says what the publication gate finds — title rows, unreadable rows, personal data
   per column with masked examples — and whether the dataset would be published or held.
4. The curator may choose masking for a flagged column (checked again), then publish(): the
   same conversion for real, the gate decides, the replaced version stays in the history.

The part file lives in the storage's scratch folder (inside the files folder for local storage,
so a shared files mount serves every node); a discarded or published upload's file is removed."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import tempfile
import unicodedata
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.audit import record
from portal.authz import Action, require
from portal.db import throwaway
from portal.messages import _
from portal.models import Dataset, DataTable, Distribution, OpenClass, Upload, User, utcnow
from portal.storage import DryRunStorage, Storage

from .curation import CurationError, _history, apply_gate, masking_choices

# What the browser sends at once: large enough that a request's fixed cost (sign-in, the row,
# the commit) is small beside the bytes, small enough to resume cheaply (benchmarks/upload.py).
CHUNK_BYTES = 32 * 1024 * 1024
BLOCK = 1024 * 1024
SUFFIXES = (".csv", ".xlsx")


def folder_for(storage: Storage, uploads_path: Path | None = None) -> Path:
    """Where part files are kept: PORTAL_UPLOADS_PATH when set (a folder every node shares,
    needed with an object store and several nodes), else the storage's scratch folder (inside the
    files folder for local storage, shared when the files folder is)."""
    path = uploads_path or storage.scratch() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def part_path(folder: Path, upload: Upload) -> Path:
    return folder / f"{upload.id}.part"


def masking_of(upload: Upload) -> dict | None:
    """The version's masking: the dataset's as it is now, with the choices made on the report."""
    return {**(upload.dataset.masking or {}), **(upload.masking or {})} or None


def clean_filename(name: str) -> str:
    """The uploader's file name as shown and kept (never used as a path)."""
    name = unicodedata.normalize("NFC", os.path.basename((name or "").replace("\\", "/")))
    name = re.sub(r"[\x00-\x1f<>:\"|?*]", "", name).strip(" .")
    return name[-150:] or "upload"


def start(
    s: Session,
    folder: Path,
    curator: User,
    ds: Dataset,
    filename: str,
    size: int,
    max_bytes: int,
    replace_id: int | None = None,
) -> Upload:
    require(curator, Action.CURATE, ds)
    name = clean_filename(filename)
    if Path(name).suffix.lower() not in SUFFIXES:
        raise CurationError(_("数据文件须为 CSV 或 XLSX"))
    from harvest.pii import scan_text

    if found := scan_text([Path(name).stem], "文件名"):  # the name is shown with the version
        raise CurationError(_("文件名中不得含个人信息：%(found)s", found=found[0].describe()))
    if ds.open_class == OpenClass.NOT_OPEN.value:
        raise CurationError(_("不予开放的数据不上传到平台"))
    if size <= 0:
        raise CurationError(_("文件是空的"))
    if size > max_bytes:
        raise CurationError(_("文件超过上限 %(mb)s MB", mb=max_bytes // (1024 * 1024)))
    replace = None
    if replace_id is not None:
        replace = next((d for d in ds.current_distributions if d.id == replace_id), None)
        if replace is None:
            raise CurationError(_("请选择要替换的当前文件"))
    elif len(ds.current_distributions) == 1:  # the one file: a later version of it stops this upload
        replace = ds.current_distributions[0]
    upload = Upload(
        id=secrets.token_hex(16),
        dataset_id=ds.id,
        user_id=curator.id,
        filename=name,
        size=size,
        received=0,
        status="receiving",
        replace_id=replace.id if replace else None,
    )
    s.add(upload)
    part_path(folder, upload).touch()
    record(s, "upload_started", actor=curator, target=f"dataset:{ds.name}", file=name, size=size)
    return upload


class WrongOffset(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def append(s: Session, folder: Path, upload: Upload, offset: int, stream: IO[bytes], length: int) -> int:
    """Write one chunk at `offset` (the bytes received so far). Returns the bytes received."""
    if upload.status != "receiving":
        raise CurationError(_("该上传已结束"))
    if offset != upload.received:
        raise WrongOffset(upload.received)
    if length <= 0 or length > CHUNK_BYTES or upload.received + length > upload.size:
        raise CurationError(_("数据块大小不符"))
    path = part_path(folder, upload)
    if not path.is_file():
        raise CurationError(
            _("这次上传的文件不在这台服务器上（请设置各节点共用的 PORTAL_UPLOADS_PATH），请重新上传")
        )
    written = 0
    with open(path, "r+b") as out:
        out.seek(offset)
        while written < length:
            block = stream.read(min(BLOCK, length - written))
            if not block:
                break
            out.write(block)
            written += len(block)
        out.truncate(offset + written)
    if written != length:
        raise WrongOffset(upload.received)  # cut short: the part file keeps what it had
    upload.received += written
    upload.updated_at = utcnow()
    return upload.received


def finish(s: Session, curator: User, upload: Upload) -> None:
    from portal import jobs

    require(curator, Action.CURATE, upload.dataset)
    if upload.status != "receiving" or upload.received != upload.size:
        raise CurationError(_("文件尚未上传完整"))
    upload.status, upload.updated_at = "checking", utcnow()
    jobs.submit(s, "check_upload", {"upload": upload.id}, key=f"upload:{upload.id}", max_attempts=2)


def choose_masking(s: Session, curator: User, upload: Upload, methods: dict[str, str]) -> None:
    """The department's masking for this version's flagged columns; checked again."""
    from harvest.pii import MASKING_METHODS
    from portal import jobs

    require(curator, Action.CURATE, upload.dataset)
    if upload.status != "checked":
        raise CurationError(_("检查完成后才能选择脱敏方式"))
    known = {c["column"]: c for c in (upload.report or {}).get("masking", [])}
    masking = dict(upload.masking or {})
    for column, method in methods.items():
        if column not in known:
            raise CurationError(_("没有这一列：%(column)s", column=column))
        if method and method not in MASKING_METHODS:
            raise CurationError(_("请选择脱敏方式"))
        if method:
            masking[column] = {"method": method, "kind": known[column]["kind"]}
        else:
            masking.pop(column, None)
    upload.masking, upload.status, upload.updated_at = masking or None, "checking", utcnow()
    jobs.submit(s, "check_upload", {"upload": upload.id}, key=f"upload:{upload.id}", max_attempts=2)


def check(engine: Engine, storage: Storage, folder: Path, upload_id: str, row_group_bytes: int) -> dict:
    """The dry run: the new version made on a throwaway copy; the report, recorded on the upload."""
    from harvest.run import Harvester, _EntryFailed

    with (
        throwaway(engine) as sessions,
        tempfile.TemporaryDirectory(prefix="upload-check-") as scratch,
        sessions.begin() as s,
    ):
        upload = s.get_one(Upload, upload_id)
        ds, replace = upload.dataset, s.get(Distribution, upload.replace_id) if upload.replace_id else None
        before = ds.status
        dry = Harvester(sessions, DryRunStorage(storage, Path(scratch)), row_group_bytes=row_group_bytes)
        try:
            warnings = dry.upload_version(
                s, ds, part_path(folder, upload), upload.filename, replace, masking=masking_of(upload)
            )
        except _EntryFailed as exc:
            return {"error": str(exc.args[0])}
        apply_gate(s, DryRunStorage(storage, Path(scratch)), ds)
        new = [d for d in ds.current_distributions if d.source_name == upload.filename]
        report = {
            "status": ds.status,
            "was": before,
            "hold": list(ds.hold_details or []),
            "warnings": [str(w) for w in warnings],
            "tables": [_table_report(t) for d in new for t in d.tables],
            "masking": masking_choices(ds),
        }
    return report


def _table_report(table: DataTable) -> dict:
    return {
        "sheet": table.sheet,
        "rows": table.row_count,
        "columns": [c["name"] for c in table.schema],
        "notes": table.notes or [],
        "problems": list(table.problems or []),
    }


def record_check(sessions: sessionmaker, upload_id: str, report: dict) -> None:
    with sessions.begin() as s:
        upload = s.get_one(Upload, upload_id)
        if upload.status != "checking":
            return
        upload.report, upload.updated_at = report, utcnow()
        upload.status = "failed" if report.get("error") else "checked"
        upload.error = report.get("error")


def publish(
    s: Session, storage: Storage, folder: Path, curator: User, upload: Upload, row_group_bytes: int
) -> str:
    """The curator confirms: the new version for real; the gate decides the status; the
    replaced version stays in the history (superseded). Returns the dataset's status."""
    from harvest.run import Harvester, _EntryFailed

    ds = upload.dataset
    require(curator, Action.CURATE, ds)
    if upload.status not in ("checked", "publishing"):
        raise CurationError(_("请先等待检查完成"))
    _still_publishable(ds)
    replace = s.get(Distribution, upload.replace_id) if upload.replace_id else None
    if replace is not None and replace.superseded_at is not None:
        raise CurationError(_("要替换的文件已有更新的版本，请重新上传"))
    before = (ds.open_class, ds.status)
    try:
        Harvester(sessionmaker(s.get_bind()), storage, row_group_bytes=row_group_bytes).upload_version(
            s, ds, part_path(folder, upload), upload.filename, replace, masking=masking_of(upload)
        )
    except _EntryFailed as exc:
        raise CurationError(exc.args[0]) from exc
    apply_gate(s, storage, ds)
    upload.status, upload.updated_at = "published", utcnow()
    _history(s, ds, curator, before, ds.legal_basis, f"部门上传新版本：{upload.filename}")
    record(
        s,
        "upload_published",
        actor=curator,
        target=f"dataset:{ds.name}",
        file=upload.filename,
        status=ds.status,
    )
    part_path(folder, upload).unlink(missing_ok=True)
    return ds.status


def _still_publishable(ds: Dataset) -> None:
    """What happened to the dataset since the upload began: not open now, withdrawn, merged."""
    if ds.open_class == OpenClass.NOT_OPEN.value or ds.status == "internal":
        raise CurationError(_("该数据已调整为不予开放，不再上传文件"))
    if ds.status == "withdrawn":
        raise CurationError(_("该数据集已撤回，请先重新发布"))


def confirm(s: Session, curator: User, upload: Upload) -> None:
    """The curator confirms the checked version: a `publish_upload` job makes it for real."""
    from portal import jobs

    require(curator, Action.CURATE, upload.dataset)
    _still_publishable(upload.dataset)
    if upload.status != "checked":
        raise CurationError(_("请先等待检查完成"))
    upload.status, upload.updated_at = "publishing", utcnow()
    jobs.submit(
        s,
        "publish_upload",
        {"upload": upload.id, "by": curator.id},
        key=f"upload:{upload.id}",
        max_attempts=2,
    )


def discard(s: Session, folder: Path, curator: User, upload: Upload) -> None:
    require(curator, Action.CURATE, upload.dataset)
    if upload.status in ("published", "discarded", "publishing"):
        return
    upload.status, upload.updated_at = "discarded", utcnow()
    part_path(folder, upload).unlink(missing_ok=True)


def forget_stale(s: Session, folder: Path, before: dt.datetime) -> int:
    """Uploads left unfinished (receiving, checked, failed) since `before`: discarded, their
    part files removed (the daily reminders job)."""
    stale = s.scalars(
        select(Upload).where(
            Upload.status.in_(("receiving", "checked", "failed")), Upload.updated_at < before
        )
    ).all()
    for upload in stale:
        upload.status = "discarded"
        part_path(folder, upload).unlink(missing_ok=True)
    return len(stale)


def open_uploads(s: Session, ds: Dataset) -> list[Upload]:
    return list(
        s.scalars(
            select(Upload)
            .where(
                Upload.dataset_id == ds.id, Upload.status.in_(("receiving", "checking", "checked", "failed"))
            )
            .order_by(Upload.created_at.desc())
        )
    )
