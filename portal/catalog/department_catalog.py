"""A department uploads its catalog spreadsheet in the console (issue 19, item 3): alone, or in a
ZIP with the data files it names. The upload is staged, harvested in a dry run (the report says
what would be created, updated, held or withdrawn, entry by entry), and harvested for real only
when the curator confirms. Such a catalog speaks for its own department only: an entry of
another department fails with a reason (harvest/run.py only_department).

Each department has one console source (location "console:<code>"), so a new catalog is
compared with the last one: entries it no longer lists are withdrawn, as for any source."""

from __future__ import annotations

import secrets
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvest.sources import SourceError, SpreadsheetSource
from portal import jobs
from portal.audit import record
from portal.authz import Action, NotAllowed, require
from portal.messages import _
from portal.models import Department, HarvestSource, Job, User

from .curation import CurationError

PREFIX = "console:"
SPREADSHEETS = (".xlsx", ".csv")
MAX_ZIP_FILES = 2000


def location_of(department: Department) -> str:
    return f"{PREFIX}{department.code}"


def folder_of(instance_path: Path, department_code: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in department_code)[:80]
    return instance_path / "sources" / f"console-{safe}"


def find_source(s: Session, department: Department) -> HarvestSource | None:
    """The department's console source, if it ever uploaded a catalog."""
    return s.scalar(
        select(HarvestSource).where(
            HarvestSource.kind == "spreadsheet", HarvestSource.location == location_of(department)
        )
    )


def source_of(s: Session, department: Department) -> HarvestSource:
    src = find_source(s, department)
    if src is None:
        src = HarvestSource(
            kind="spreadsheet", location=location_of(department), title=f"{department.name}（部门上传）"
        )
        s.add(src)
        s.flush()
    return src


def stage(
    instance_path: Path, department: Department, filename: str, stream: IO[bytes], max_bytes: int
) -> Path:
    """The upload in a staging folder of its own; returns the catalog spreadsheet's path."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (*SPREADSHEETS, ".zip"):
        raise CurationError(_("请上传目录表（XLSX 或 CSV），或含目录表和数据文件的 ZIP"))
    staged = folder_of(instance_path, department.code) / f"staged-{secrets.token_hex(6)}"
    staged.mkdir(parents=True)
    try:
        received = staged / f"upload{suffix}"
        with open(received, "wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        if received.stat().st_size == 0:
            raise CurationError(_("上传的文件是空的"))
        if suffix != ".zip":
            return received.rename(staged / f"catalog{suffix}")
        return _unzip(received, staged, max_bytes)
    except Exception:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _unzip(archive: Path, staged: Path, max_bytes: int) -> Path:
    """Extract a ZIP safely: no path outside the folder, no links, at most MAX_ZIP_FILES files
    and max_bytes in all (counted while writing, not from the headers)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise CurationError(_("ZIP 文件无法打开")) from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_FILES:
            raise CurationError(_("ZIP 中的文件过多（至多 %(n)s 个）", n=MAX_ZIP_FILES))
        total = 0
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or not parts or (member.external_attr >> 28) == 0xA:
                raise CurationError(_("ZIP 中有不安全的路径：%(name)s", name=name[:100]))
            target = staged.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                while block := src.read(1024 * 1024):
                    total += len(block)
                    if total > max_bytes:
                        raise CurationError(_("ZIP 解压后超过上限 %(mb)s MB", mb=max_bytes // (1024 * 1024)))
                    out.write(block)
    archive.unlink()
    return _find_catalog(staged)


def _find_catalog(staged: Path) -> Path:
    sheets = [p for p in staged.rglob("*") if p.is_file() and p.suffix.lower() in SPREADSHEETS]
    shallowest = min((len(p.relative_to(staged).parts) for p in sheets), default=0)
    top = [p for p in sheets if len(p.relative_to(staged).parts) == shallowest]
    named = [p for p in top if "目录" in p.name or "catalog" in p.name.lower()]
    if len(named) == 1:
        return named[0]
    if len(top) == 1:
        return top[0]
    raise CurationError(_("ZIP 中请只放一个目录表，或在文件名中写明“目录”"))


def open_staged(catalog: Path, location: str, timeout: float) -> SpreadsheetSource:
    """The staged catalog, harvested as the department's console source (its data files are
    read from beside it)."""
    source = SpreadsheetSource(catalog, timeout)
    source.location = location
    return source


def current_catalog(instance_path: Path, location: str) -> Path:
    folder = folder_of(instance_path, location.removeprefix(PREFIX)) / "current"
    marker = folder / ".catalog"
    if not marker.is_file():
        raise SourceError(_("该部门尚未确认过目录表"))
    return folder / marker.read_text().strip()


def promote(catalog: Path, instance_path: Path, location: str) -> Path:
    """The confirmed staging folder becomes the department's current catalog folder."""
    staged = _staging_folder(catalog, instance_path, location)
    folder = folder_of(instance_path, location.removeprefix(PREFIX))
    current, old = folder / "current", folder / f"old-{secrets.token_hex(4)}"
    if current.exists():
        current.rename(old)
    staged.rename(current)
    relative = catalog.relative_to(staged)
    (current / ".catalog").write_text(str(relative))
    shutil.rmtree(old, ignore_errors=True)
    return current / relative


def _staging_folder(catalog: Path, instance_path: Path, location: str) -> Path:
    folder = folder_of(instance_path, location.removeprefix(PREFIX)).resolve()
    for parent in catalog.resolve().parents:
        if parent.parent == folder and parent.name.startswith("staged-"):
            return parent
    raise CurationError(_("这份目录表已不在暂存区，请重新上传"))


def _own(curator: User, department: Department) -> None:
    """A curator acts for their own department only."""
    require(curator, Action.CURATE)
    if curator.curator_department_id != department.id:
        raise NotAllowed(Action.CURATE)


def queue_dry_run(s: Session, curator: User, department: Department, catalog: Path) -> Job:
    _own(curator, department)
    src = source_of(s, department)
    record(s, "department_catalog_uploaded", actor=curator, target=f"department:{department.code}")
    return jobs.submit(
        s,
        "harvest",
        {"source": src.id, "dry_run": True, "staged": str(catalog), "department": department.code},
        key=f"harvest:{src.id}:dry",
        max_attempts=1,
        requested_by=curator.email,
    )


def latest_dry_run(s: Session, department: Department) -> Job | None:
    src = find_source(s, department)
    if src is None:
        return None
    return s.scalar(select(Job).where(Job.key == f"harvest:{src.id}:dry").order_by(Job.id.desc()).limit(1))


def confirm(s: Session, curator: User, department: Department, instance_path: Path) -> Job:
    """Harvest the catalog last checked, for real."""
    _own(curator, department)
    dry = latest_dry_run(s, department)
    if dry is None or dry.state != "done" or not dry.payload.get("staged"):
        raise CurationError(_("请先上传目录表并等待试采集完成"))
    staged = Path(dry.payload["staged"])
    if not staged.is_file():
        raise CurationError(_("这份目录表已确认过或已不在暂存区，请重新上传"))
    src = source_of(s, department)
    record(s, "department_catalog_confirmed", actor=curator, target=f"department:{department.code}")
    return jobs.submit(
        s,
        "harvest",
        {"source": src.id, "dry_run": False, "staged": str(staged), "department": department.code},
        key=f"harvest:{src.id}:run",
        max_attempts=1,
        requested_by=curator.email,
    )
