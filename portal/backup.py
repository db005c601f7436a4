"""Backup and restore of a whole portal: the database, the data files and the instance
secret, in one tar file; restoring it into an empty instance gives the same portal.

Consistency: every table is read inside one read-only transaction (REPEATABLE READ on
PostgreSQL, one read transaction on SQLite's WAL), so rows are a single snapshot even while
a harvest or the web writes. Files are named by content and never rewritten in place: the
archive takes those the snapshot refers to (and any others present); a referenced file that
has vanished since (purged after a reclassification) is reported, never silently dropped.
Files come from the portal's storage, a local folder or an object store (read through its
local cache), and are restored into whichever the target instance uses.

The database is written as JSON lines per table, independent of the engine, so a backup of
PostgreSQL restores into SQLite and the other way round. The search index is not kept: it
is rebuilt from the restored database. The secret key is in the archive (links, sealed bids
need it): keep backups as carefully as the database itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from sqlalchemy import Date, DateTime, Integer, LargeBinary, Table, func, insert, select, text
from sqlalchemy.engine import Connection

from .messages import _
from .models import Base
from .storage import Storage

if TYPE_CHECKING:
    from .context import PortalContext

FORMAT = "dongchangfu-portal-backup/1"
log = logging.getLogger(__name__)
# Tables a new instance fills by itself — the search synonym list's seed (0013), the
# deployment's identity (0014, written when the instance first starts), the first guide, FAQ,
# terms and privacy pages and their versions (0023): an instance holding only these is still
# empty, and a restore replaces them with the backup's.
SEEDED = frozenset({"search_synonyms", "deployment", "pages", "page_versions"})


class BackupError(RuntimeError):
    pass


@dataclass
class BackupReport:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    missing_files: list[str] = field(default_factory=list)


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _revision(conn: Connection) -> str:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def _referenced_files(rows: dict[str, list[dict]]) -> set[str]:
    paths = {r["original_path"] for r in rows.get("distributions", [])}
    for t in rows.get("data_tables", []):
        paths |= {t["parquet_path"], t["csv_path"]} | {f["path"] for f in (t["formats"] or {}).values()}
    return {p for p in paths if p}


def backup(
    ctx: PortalContext, out: Path, progress: Callable[[str, int, int], None] | None = None
) -> BackupReport:
    """Write the portal (database snapshot, files, secret) to `out` (a .tar, or .tar.gz)."""
    report = BackupReport(Path(out))
    rows: dict[str, list[dict]] = {}
    with ctx.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        else:
            conn.execute(text("BEGIN"))  # SQLite: one read transaction = one snapshot (WAL)
        revision = _revision(conn)
        tables = Base.metadata.sorted_tables
        for i, table in enumerate(tables):
            rows[table.name] = [
                dict(r._mapping) for r in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            report.tables[table.name] = len(rows[table.name])
            if progress:
                progress("tables", i + 1, len(tables))
        conn.rollback()
    referenced = _referenced_files(rows)
    present = ctx.storage.list_files()  # stored files only: no work in progress, no derived caches
    mode: Literal["w:gz", "w"] = "w:gz" if str(out).endswith(".gz") else "w"
    tmp = Path(f"{out}.part")
    files: dict[str, str] = {}  # relative name -> sha256
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "alembic_revision": revision,
        "database": ctx.engine.dialect.name,
        "tables": report.tables,
        "files": files,
    }
    with tarfile.open(tmp, mode) as tar:
        for name, table_rows in rows.items():
            data = "".join(
                json.dumps({k: _plain(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
                for r in table_rows
            ).encode()
            _add_bytes(tar, f"db/{name}.jsonl", data)
        archived = set()
        for i, relative in enumerate(present):
            try:
                path = ctx.storage.local_path(relative)
                digest = _sha256(path)
                tar.add(path, arcname=f"files/{relative}", recursive=False)
                report.bytes += path.stat().st_size
            except FileNotFoundError:
                continue  # removed while we worked; checked against the snapshot below
            archived.add(relative)
            files[relative] = digest
            report.files += 1
            if progress:
                progress("files", i + 1, len(present))
        report.missing_files = sorted(referenced - archived)
        manifest["missing_files"] = report.missing_files
        _add_bytes(tar, "secret_key", ctx.settings.load_secret_key().encode())
        _add_bytes(tar, "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())
    tmp.replace(out)
    return report


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(dt.datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _typed(table: Table, row: dict) -> dict:
    out = {}
    for column in table.columns:
        value = row.get(column.name)
        if value is not None:
            if isinstance(column.type, DateTime):
                value = dt.datetime.fromisoformat(value)
            elif isinstance(column.type, Date):
                value = dt.date.fromisoformat(value)
            elif isinstance(column.type, LargeBinary):
                value = base64.b64decode(value)
        out[column.name] = value
    return out


def restore(
    ctx: PortalContext, archive: Path, progress: Callable[[str, int, int], None] | None = None
) -> dict:
    """Restore `archive` into this instance, which must be empty (no datasets, no users).

    Everything is checked before anything is written — the archive, the database (empty, at
    the backup's migration) and the store (reachable and writable: a bucket that does not
    exist yet is found here) — and a restore that fails half-way undoes what it wrote (the
    rows are one transaction; the files it stored are removed), so the same command can
    simply run again. Checks every file's sha256; writes the secret last; the caller rebuilds
    the search index."""
    with tarfile.open(archive) as tar:
        manifest = json.loads(_member(tar, "manifest.json"))
        if manifest.get("format") != FORMAT:
            raise BackupError(_("不是本平台的备份文件：%(format)s", format=repr(manifest.get("format"))))
        with ctx.engine.connect() as conn:
            _check_empty(conn, manifest)
        _check_store(ctx.storage)
        written = _restore_files(ctx.storage, tar, manifest["files"], progress)
        try:
            with ctx.engine.begin() as conn:
                _restore_rows(conn, tar, manifest, progress)
        except BaseException:
            _undo_files(ctx.storage, written)
            raise
        from .deployment import restamp_storage

        restamp_storage(ctx.sessions, ctx.storage)  # the backup's portal, with its files now here
        secret = _member(tar, "secret_key").decode().strip()
        key_file = ctx.settings.instance_path / "secret_key"
        key_file.write_text(secret)
        key_file.chmod(0o600)
        ctx.settings.secret_key = secret
    # Rows went in outside the ORM: drop any page cached and any part of a page kept before.
    ctx.fragments.generation.bump()
    return manifest


def _check_empty(conn: Connection, manifest: dict) -> None:
    if _revision(conn) != manifest["alembic_revision"]:
        raise BackupError(
            _(
                "备份的数据库版本 %(manifest)s 与本程序 %(revision)s 不同",
                manifest=manifest["alembic_revision"],
                revision=_revision(conn),
            )
        )
    for table in Base.metadata.sorted_tables:
        if table.name not in SEEDED and conn.execute(select(func.count()).select_from(table)).scalar():
            raise BackupError(_("目标实例不是空的（%(name)s 有数据）", name=table.name))


def _check_store(storage: Storage) -> None:
    try:
        storage.check_writable()
    except Exception as exc:  # the store's own errors (botocore's, OSError): all mean "cannot write here"
        error = (type(exc).__name__ + ": " + str(exc))[:300]
        raise BackupError(
            _(
                "无法写入数据文件存储（%(error)s）。使用对象存储时，请先创建存储桶并检查地址、区域和凭据，然后重新运行恢复。",
                error=error,
            )
        ) from exc


def _restore_files(
    storage: Storage,
    tar: tarfile.TarFile,
    files: dict[str, str],
    progress: Callable[[str, int, int], None] | None,
) -> list[str]:
    """Store every file of the archive; returns the folders this restore made (for an undo).
    On a failure the files stored so far are removed before the error goes up."""
    before = {name.rsplit("/", 1)[0] for name in storage.list_files()}
    made: list[str] = []
    try:
        for i, (relative, digest) in enumerate(files.items()):
            folder = relative.rsplit("/", 1)[0]
            if folder not in before and folder not in made:
                made.append(folder)
            _restore_file(storage, tar, relative, digest)
            if progress:
                progress("files", i + 1, len(files))
    except BaseException:
        _undo_files(storage, made)
        raise
    return made


def _undo_files(storage: Storage, folders: list[str]) -> None:
    for folder in folders:
        try:
            storage.remove_tree(folder)
        except Exception:  # the undo is best effort: the original error is the one to report
            log.exception("could not remove %s after a failed restore", folder)


def _restore_rows(
    conn: Connection, tar: tarfile.TarFile, manifest: dict, progress: Callable[[str, int, int], None] | None
) -> None:
    """Every table's rows, into an empty database at the backup's migration; on PostgreSQL the
    next id follows the restored ones."""
    _check_empty(conn, manifest)  # again inside the transaction: nobody wrote since the first check
    tables = Base.metadata.sorted_tables
    for table in reversed(tables):
        if table.name in SEEDED:  # the backup's own list replaces the migration's seed
            conn.execute(table.delete())
    for i, table in enumerate(tables):
        member = _member(tar, f"db/{table.name}.jsonl")
        batch = [_typed(table, json.loads(line)) for line in member.decode().splitlines() if line]
        for start in range(0, len(batch), 1000):
            conn.execute(insert(table), batch[start : start + 1000])
        if progress:
            progress("tables", i + 1, len(tables))
    if conn.dialect.name == "postgresql":  # the next id after the restored ones
        for table in tables:
            pk = list(table.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, Integer):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                        f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"
                    )
                )


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    """A file's bytes; tarfile raises KeyError for a name it lacks, and so does this for a
    name that is not a regular file."""
    with _open_member(tar, name) as f:
        return f.read()


def _open_member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    f = tar.extractfile(name)
    if f is None:
        raise KeyError(f"{name} is not a file in the archive")
    return f


def _restore_file(storage: Storage, tar: tarfile.TarFile, relative: str, digest: str) -> None:
    """Unpack one file into the scratch folder, check its sha256, then store it: a damaged
    file never reaches the store, and storage.put refuses names that would leave it."""
    fd, name = tempfile.mkstemp(dir=storage.scratch(), suffix=".restore")
    tmp = Path(name)
    try:
        with _open_member(tar, f"files/{relative}") as src, open(fd, "wb") as out:
            h = hashlib.sha256()
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != digest:
            raise BackupError(_("备份中的文件已损坏：%(file)s", file=relative))
        storage.put(tmp, relative)
    finally:
        tmp.unlink(missing_ok=True)
