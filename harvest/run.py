"""The harvest: source → validate → classify → fetch → convert → scan → publish, one entry at a
time, each entry in its own transaction, with a job report kept in the database.

Incremental and idempotent: an entry whose metadata and files are as last seen costs two
look-ups and creates or updates nothing. A changed file becomes a new Distribution and the
earlier one is kept with its date. An entry gone from the source is withdrawn, not deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.messages import Message, _, known, stored
from portal.models import (
    ClassificationEvent,
    Dataset,
    DatasetStatus,
    DataTable,
    Department,
    Distribution,
    HarvestJob,
    HarvestJobEntry,
    HarvestSource,
    OpenClass,
    utcnow,
)
from portal.storage import Storage

from . import dictionary, gate, holds
from .classify import Classification, classify, parse_open_class
from .convert import DEFAULT_ROW_GROUP_BYTES, ConversionError, TableInfo, convert_csv, convert_xlsx
from .decisions import apply_edits, pending_hold, pending_restriction
from .entry import CatalogEntry, FileRef, files_fingerprint
from .formats import file_facts, parquet_metadata, write_json, write_xlsx
from .gate import purge_files
from .pii import scan_text
from .sources import CatalogSource, FetchError, SourceError, fetch_file

log = logging.getLogger(__name__)

ACTIONS = ("created", "updated", "unchanged", "withdrawn", "held", "failed")


@dataclass
class EntryResult:
    source_id: str
    open_class: str | None
    action: str
    reason: str | None = None
    dataset_id: int | None = None
    details: list[dict] | None = None  # what holds it, where (harvest.gate.explain puts it in words)

    def as_dict(self) -> dict:
        data: dict[str, object] = {
            "source_id": self.source_id,
            "open_class": self.open_class,
            "action": self.action,
            "reason": holds.summary_words(self.details) if self.details else self.reason,
        }
        if self.details:
            data["details"] = [
                {**d, "what": str(what), "fix": str(fix or "")}
                for d in self.details
                for what, fix in [holds.explain(d)]
            ]
        return data


@dataclass
class JobReport:
    job_id: int | None
    source: str
    entries: list[EntryResult] = field(default_factory=list)
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for e in self.entries:
            counts[e.action] += 1
        return counts

    def as_dict(self) -> dict:
        data = {"counts": self.counts, "entries": [e.as_dict() for e in self.entries]}
        if self.error:
            data["error"] = self.error
        return data


class _EntryFailed(Exception):
    """One entry cannot be applied; the harvest goes on. `details` say why (harvest/holds.py)."""

    def __init__(self, code: str, message: Message | str, **facts: object) -> None:
        super().__init__(message)
        self.details = [holds.from_message(code, message, **facts)]


def _message_of(exc: Exception) -> Message | str:
    """The words a harvest error was raised with (a Message, put into words when shown)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], Message | str) else str(exc)


@dataclass
class _FetchedFile:
    ref: FileRef
    path: Path
    sha256: str
    size: int


Progress = Callable[[int, int, str], None]
# Keeps the search index in step with the database (portal.search.sync.sync).
IndexSync = Callable[[], object]


class Harvester:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: Storage,
        *,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
        timeout: float = 60.0,
        sync_index: IndexSync | None = None,
        sync_every: int = 500,
        only_department: str | None = None,
    ) -> None:
        self.sessions = sessions
        # A catalog a department uploaded in the console speaks for that department only.
        self.only_department = only_department
        self.storage = storage
        self.row_group_bytes = row_group_bytes
        self.timeout = timeout
        # The harvest is the search index's only writer: every dataset it touches is marked
        # search_dirty in the entry's transaction, and sync_index() applies the marks.
        self.sync_index = sync_index
        self.sync_every = sync_every

    # ------------------------------------------------------------------ the job

    def run(self, source: CatalogSource, progress: Progress | None = None) -> JobReport:
        with self.sessions.begin() as s:
            src = s.scalar(
                select(HarvestSource).where(
                    HarvestSource.kind == source.kind, HarvestSource.location == source.location
                )
            )
            if src is None:
                src = HarvestSource(kind=source.kind, location=source.location)
                s.add(src)
                s.flush()
            job = HarvestJob(source_id=src.id)
            s.add(job)
            s.flush()
            source_id, job_id = src.id, job.id
        report = JobReport(job_id=job_id, source=source.location)
        try:
            entries = source.list_entries()
        except SourceError as exc:
            report.error = str(exc)
            self._finish(job_id, report, status="failed")
            return report

        listed: set[str] = set()
        actor = f"harvest job {job_id}"
        for n, entry in enumerate(entries, start=1):
            listed.add(entry.source_ref)
            result = self._apply_safely(entry, source, source_id, job_id, actor)
            report.entries.append(result)
            if progress:
                progress(n, len(entries), entry.source_ref)
            if self.sync_index and n % self.sync_every == 0:
                self.sync_index()
        report.entries.extend(self._withdraw_missing(source_id, job_id, listed, actor))
        if self.sync_index:
            self.sync_index()
        self._finish(job_id, report, status="finished")
        return report

    def _finish(self, job_id: int, report: JobReport, status: str) -> None:
        with self.sessions.begin() as s:
            job = s.get_one(HarvestJob, job_id)
            job.status, job.error, job.counts, job.finished_at = status, report.error, report.counts, utcnow()

    def _apply_safely(
        self, entry: CatalogEntry, source: CatalogSource, source_id: int, job_id: int, actor: str
    ) -> EntryResult:
        try:
            if entry.problems:
                failed = _EntryFailed("catalog_row", entry.problems[0])
                failed.details = [holds.from_message("catalog_row", p) for p in entry.problems]
                raise failed
            with self.sessions.begin() as s:
                result = self._apply(s, entry, source, source_id, actor)
                s.add(_job_entry(job_id, result))
            return result
        except _EntryFailed as exc:
            result = EntryResult(
                entry.source_ref, None, "failed", holds.summary(exc.details), details=exc.details
            )
        except Exception as exc:  # one entry never stops the harvest
            # The report names the error only: its text may quote a cell (personal data).
            log.exception("entry %s failed", entry.source_ref)
            details = [
                holds.from_message(
                    "internal", _("内部错误，已记入日志（%(error)s）", error=type(exc).__name__)
                )
            ]
            result = EntryResult(entry.source_ref, None, "failed", holds.summary(details), details=details)
        with self.sessions.begin() as s:
            result.dataset_id = self._record_broken(s, entry, source_id, result.details or [])
            s.add(_job_entry(job_id, result))
        return result

    # ------------------------------------------------------------------ one entry

    def _apply(
        self, s: Session, entry: CatalogEntry, source: CatalogSource, source_id: int, actor: str
    ) -> EntryResult:
        """One entry, in steps: its dataset (one source each), its class, whether anything
        changed, then — in a scratch folder — its files and the status they allow, recorded
        with a classification event when class or status moved."""
        if self.only_department is not None and entry.department_code != self.only_department:
            raise _EntryFailed(
                "other_department",
                _("条目属于「%(department)s」，不是上传目录表的部门", department=entry.department_name or ""),
            )
        department = _department(s, entry)
        ds = _existing_dataset(s, entry, department)
        if ds is not None and ds.status == DatasetStatus.WITHDRAWN.value and ds.hold_reason:
            # Withdrawn by its department in the console (the harvest's own withdrawals carry no
            # reason): a harvest never publishes it again; the department does, in the console.
            return EntryResult(
                entry.source_ref,
                ds.open_class,
                "unchanged",
                _("部门已撤回，采集不重新发布：%(reason)s", reason=ds.hold_reason).source,
                ds.id,
            )
        meta_fp = entry.metadata_fingerprint()
        decision = _classification(ds, entry)
        open_class = decision.open_class.value if decision.open_class else None
        fetches_files = decision.hold is None and decision.open_class is not OpenClass.NOT_OPEN
        files_fp = _hinted_fingerprint(entry, fetches_files)
        if ds is not None and _unchanged(ds, meta_fp, files_fp):
            return _still(ds, entry)

        with tempfile.TemporaryDirectory(dir=self.storage.scratch()) as scratch:
            fetched: list[_FetchedFile] | None = None
            if fetches_files and files_fp is None:
                # No version hint (spreadsheet files): fetch, and compare contents.
                fetched = self._fetch(entry, source, Path(scratch))
                files_fp = files_fingerprint([f"sha256:{f.sha256}" for f in fetched])
                if ds is not None and _unchanged(ds, meta_fp, files_fp):
                    return _still(ds, entry)

            created = ds is None
            if ds is None:
                ds = Dataset(name=entry.name, source_ref=entry.source_ref, department=department, title="")
                s.add(ds)
            before = (None, None) if created else (ds.open_class, ds.status)
            _copy_metadata(ds, entry, source_id)
            status, details, warnings = self._publication(
                s, ds, entry, decision, files_fp, _Fetch(source, Path(scratch), fetched)
            )
            held_for = details if status == DatasetStatus.HELD.value else None
            hold_reason = holds.summary(held_for) if held_for else None
            ds.open_class, ds.status, ds.hold_reason, ds.hold_details = (
                open_class,
                status,
                hold_reason,
                held_for,
            )
            ds.metadata_fingerprint, ds.files_fingerprint = meta_fp, files_fp
            ds.withdrawn_at = None
            ds.updated_at = utcnow()
            ds.search_dirty = True
            s.flush()
            if before != (open_class, status):
                s.add(
                    ClassificationEvent(
                        dataset_id=ds.id,
                        from_class=before[0],
                        to_class=open_class,
                        from_status=before[1],
                        to_status=status,
                        legal_basis=entry.legal_basis,
                        actor=actor,
                        note=hold_reason
                        or stored(_("目录开放类型：%(word)s", word=known(entry.open_class or ""))),
                    )
                )
        action = "held" if status == DatasetStatus.HELD.value else ("created" if created else "updated")
        return EntryResult(
            entry.source_ref,
            open_class,
            action,
            hold_reason or "；".join(w.source for w in warnings) or None,
            ds.id,
            details=held_for,
        )

    def _publication(
        self,
        s: Session,
        ds: Dataset,
        entry: CatalogEntry,
        decision: Classification,
        files_fp: str | None,
        fetch: _Fetch,
    ) -> tuple[str, list[dict] | None, list[Message]]:
        """The status the entry's class and files allow, what holds it, and warnings for the
        department. 不予开放 always wins: no byte of its data stays on the portal side, at once,
        whether or not the basis is valid (without one the entry is held for it). A held
        classification stays held. Otherwise the files (stored again if they changed) pass the
        publication gate, and a restriction the bureau has not yet decided holds the dataset."""
        details: list[dict] | None = decision.hold
        warnings: list[Message] = []
        if decision.open_class is OpenClass.NOT_OPEN:
            self._purge_files(ds)
            status = DatasetStatus.HELD.value if details else DatasetStatus.INTERNAL.value
        elif details:
            status = DatasetStatus.HELD.value
        else:
            warnings = self._refresh_files(s, ds, entry, decision, files_fp, fetch)
            status = DatasetStatus.PUBLISHED.value
            held = gate.hold(ds, decision.open_class.value if decision.open_class else None)
            if held:
                status = DatasetStatus.HELD.value
                _summary, details = held
            gate.purge_unservable(self.storage, ds)  # a replaced version that may not be served goes
        if status == DatasetStatus.PUBLISHED.value and pending_restriction(s, ds):
            status, details = DatasetStatus.HELD.value, pending_hold()  # stays out of view until decided
        return status, details, warnings

    def _refresh_files(
        self,
        s: Session,
        ds: Dataset,
        entry: CatalogEntry,
        decision: Classification,
        files_fp: str | None,
        fetch: _Fetch,
    ) -> list[Message]:
        """Fetch, convert and store the entry's files unless the current versions are the ones
        last seen and passed the gate, or a conditional entry only points to where to apply."""
        reuse = (
            ds.files_fingerprint == files_fp
            and ds.current_distributions
            and all(d.scan_status for d in ds.current_distributions)
        )
        metadata_only = (
            decision.open_class is OpenClass.CONDITIONAL
            and not entry.files
            and bool(entry.extra.get("apply_url"))
        )
        if reuse or metadata_only:
            return []
        if not entry.files:
            raise _EntryFailed("no_file", _("目录条目没有数据文件"))
        fetched = (
            fetch.fetched if fetch.fetched is not None else self._fetch(entry, fetch.source, fetch.scratch)
        )
        # The class the catalog gives now (a new dataset has none yet): files of unconditional
        # data name their open licence.
        return self._store(
            s, ds, fetched, fetch.scratch, open_data=decision.open_class is OpenClass.UNCONDITIONAL
        )

    def _fetch(self, entry: CatalogEntry, source: CatalogSource, scratch: Path) -> list[_FetchedFile]:
        if not entry.files:
            raise _EntryFailed("no_file", _("目录条目没有数据文件"))
        fetched = []
        for i, ref in enumerate(entry.files):
            dest = scratch / f"source-{i}"
            try:
                sha, size = fetch_file(ref, dest, policy=source.fetch_policy, timeout=self.timeout)
            except FetchError as exc:
                raise _EntryFailed("file", _message_of(exc), file=ref.name) from exc
            fetched.append(_FetchedFile(ref, dest, sha, size))
        return fetched

    def _store(
        self,
        s: Session,
        ds: Dataset,
        fetched: list[_FetchedFile],
        scratch: Path,
        masking: dict | None | Literal[False] = False,  # False: the dataset's own; else this version's
        open_data: bool | None = None,  # None: the dataset's class says
    ) -> list[Message]:
        """Convert new files, move them into storage, and make them the current distributions;
        files already current (same sha256) are kept as they are. Returns warnings for the
        department (rows left out of the Parquet file; the UTF-8 CSV keeps them)."""
        warnings = []
        chosen: dict | None = (ds.masking or None) if masking is False else (masking or None)
        # A version is the same when its source bytes and the masking it was made with are.
        current = {(d.sha256, _masking_key(d.masking)): d for d in ds.current_distributions if d.scan_status}
        keep: set = set()
        now = utcnow()
        for i, f in enumerate(fetched):
            key = (f.sha256, _masking_key(chosen))
            if key in current:
                keep.add(key)
                continue
            media = f.ref.media_format or _sniff_media(f.path)
            workdir = scratch / f"work-{i}"
            workdir.mkdir()
            meta = parquet_metadata(
                ds.department.name,
                ds.title,
                now.date(),
                ds.name,
                open_data=ds.open_class == "unconditional" if open_data is None else open_data,
            )
            try:
                if media == "xlsx":
                    tables = convert_xlsx(
                        f.path, workdir, row_group_bytes=self.row_group_bytes, metadata=meta, masking=chosen
                    )
                else:
                    tables = [
                        convert_csv(
                            f.path,
                            workdir / "table-0.parquet",
                            workdir / "table-0.csv",
                            row_group_bytes=self.row_group_bytes,
                            metadata=meta,
                            masking=chosen,
                        )
                    ]
            except ConversionError as exc:
                raise _EntryFailed("conversion", _message_of(exc), file=f.ref.name) from exc
            dist = self._new_version(
                ds, f.ref, media, f.sha256, f.size, f.path, tables, workdir, meta, now, chosen
            )
            warnings += _note_warnings(f.ref.name, tables)
            ds.distributions.append(dist)
            keep.add(key)
        for key, dist in current.items():
            if key not in keep:
                dist.superseded_at = now  # earlier version kept, with its date
        for dist in ds.current_distributions:
            if dist.scan_status is None:  # made before the gate: replaced by the version just made
                dist.superseded_at = now
        return warnings

    def remake(self, s: Session, ds: Dataset) -> None:
        """Make the current versions again from their stored source files (after the
        department changed its masking): the same conversion and scan as a harvest."""
        fetched = []
        with tempfile.TemporaryDirectory(dir=self.storage.scratch()) as scratch:
            for i, dist in enumerate(ds.current_distributions):
                copy = Path(scratch) / f"source-{i}"
                try:
                    copy.write_bytes(self.storage.local_path(dist.original_path).read_bytes())
                except FileNotFoundError as exc:
                    raise _EntryFailed("stored_file_gone", _("数据文件已不在存储中，请等待下次采集")) from exc
                ref = FileRef(name=dist.source_name, url=dist.source_url, media_format=dist.media_format)
                fetched.append(_FetchedFile(ref, copy, dist.sha256, dist.size))
            self._store(s, ds, fetched, Path(scratch))
        ds.search_dirty, ds.updated_at = True, utcnow()

    def upload_version(
        self,
        s: Session,
        ds: Dataset,
        upload: Path,
        filename: str,
        replace: Distribution | None = None,
        masking: dict | None = None,
    ) -> list[Message]:
        """A new version of one of the dataset's files, given by its department (a console
        upload): converted and scanned like a harvested file; the dataset's other files stay as
        they are; the version it replaces is kept in the history. Returns the conversion's
        warnings. The caller decides the status with the gate (the same as after masking)."""
        if replace is None and len(ds.current_distributions) == 1:
            replace = ds.current_distributions[0]
        with tempfile.TemporaryDirectory(dir=self.storage.scratch()) as scratch:
            copy = Path(scratch) / "upload"
            shutil.copyfile(upload, copy)
            sha, size = _sha256_of(copy), copy.stat().st_size
            fetched = [_FetchedFile(FileRef(name=filename, media_format=_sniff_media(copy)), copy, sha, size)]
            for i, dist in enumerate(ds.current_distributions):
                if dist is replace:
                    continue
                kept = Path(scratch) / f"kept-{i}"
                try:
                    shutil.copyfile(self.storage.local_path(dist.original_path), kept)
                except FileNotFoundError as exc:
                    raise _EntryFailed("stored_file_gone", _("数据文件已不在存储中，请等待下次采集")) from exc
                ref = FileRef(name=dist.source_name, url=dist.source_url, media_format=dist.media_format)
                fetched.append(_FetchedFile(ref, kept, dist.sha256, dist.size))
            # The masking is given, not written to the dataset first: its row is updated (and, on
            # PostgreSQL, locked) only once the conversion is done.
            warnings = self._store(s, ds, fetched, Path(scratch), masking=masking)
        ds.masking = masking or None
        ds.search_dirty, ds.updated_at = True, utcnow()
        return warnings

    def _new_version(
        self,
        ds: Dataset,
        ref: FileRef,
        media: str,
        sha256: str,
        size: int,
        original: Path,
        tables: list[TableInfo],
        workdir: Path,
        meta: dict,
        now: dt.datetime,
        masking: dict | None,
    ) -> Distribution:
        # A masked version has a folder of its own: the unmasked one is removed when replaced.
        folder = self.storage.distribution_dir(ds.name, sha256) + _masking_key(masking)
        findings = [f for t in tables for f in t.findings]
        problems = [p for t in tables for p in t.problems]
        dist = Distribution(
            source_name=ref.name,
            source_url=ref.url,
            media_format=media,
            sha256=sha256,
            size=size,
            encoding=tables[0].encoding if media == "csv" else None,
            fetched_at=now,
            original_path=self.storage.put(original, f"{folder}/original.{media}"),
            scan_status=gate.verdict(findings, problems),
            masking=masking,
        )
        for position, t in enumerate(tables):
            dist.tables.append(_table_row(self.storage, folder, position, t, workdir, meta))
        return dist

    def _purge_files(self, ds: Dataset) -> None:
        purge_files(self.storage, ds)

    def _record_broken(
        self, s: Session, entry: CatalogEntry, source_id: int, details: list[dict]
    ) -> int | None:
        """A new entry that failed is kept as held, so its department sees the problem; an
        existing dataset stays as it was (nothing published is lost to a broken update)."""
        if not entry.name or not entry.department_code or entry.problems:
            return None
        if self.only_department is not None and entry.department_code != self.only_department:
            return None  # another department's entry: nothing is made in its name
        if scan_text([entry.department_name or "", entry.department_code or ""], "信息资源提供方"):
            return None  # no department is made with personal data for a name
        if s.scalar(select(Dataset.id).where(Dataset.name == entry.name)) is not None:
            return None
        department = _department(s, entry)
        ds = Dataset(name=entry.name, source_ref=entry.source_ref, department=department, title="")
        _copy_metadata(ds, entry, source_id)
        parsed = parse_open_class(entry.open_class)
        ds.open_class = parsed.value if parsed else None
        ds.status = DatasetStatus.HELD.value
        ds.hold_reason, ds.hold_details = holds.hold_fields(details)
        s.add(ds)
        s.flush()
        s.add(
            ClassificationEvent(
                dataset_id=ds.id,
                from_class=None,
                to_class=ds.open_class,
                from_status=None,
                to_status=ds.status,
                legal_basis=entry.legal_basis,
                actor="harvest",
                note=ds.hold_reason,
            )
        )
        return ds.id

    def _withdraw_missing(
        self, source_id: int, job_id: int, listed: set[str], actor: str
    ) -> list[EntryResult]:
        results = []
        with self.sessions.begin() as s:
            gone = s.scalars(
                select(Dataset).where(
                    Dataset.source_id == source_id, Dataset.status != DatasetStatus.WITHDRAWN.value
                )
            ).all()
            for ds in gone:
                if ds.source_ref in listed:
                    continue
                s.add(
                    ClassificationEvent(
                        dataset_id=ds.id,
                        from_class=ds.open_class,
                        to_class=ds.open_class,
                        from_status=ds.status,
                        to_status=DatasetStatus.WITHDRAWN.value,
                        legal_basis=ds.legal_basis,
                        actor=actor,
                        note=_("已从来源目录中删除").source,
                    )
                )
                ds.status, ds.withdrawn_at, ds.updated_at = DatasetStatus.WITHDRAWN.value, utcnow(), utcnow()
                ds.search_dirty = True
                result = EntryResult(ds.source_ref, ds.open_class, "withdrawn", None, ds.id)
                s.add(_job_entry(job_id, result))
                results.append(result)
        return results


# ---------------------------------------------------------------------- helpers


@dataclass
class _Fetch:
    """Where an entry's files come from, and those already fetched to compare contents."""

    source: CatalogSource
    scratch: Path
    fetched: list[_FetchedFile] | None


def _existing_dataset(s: Session, entry: CatalogEntry, department: Department) -> Dataset | None:
    ds = s.scalar(select(Dataset).where(Dataset.name == entry.name))
    if ds is not None and ds.department_id != department.id:
        # 一数一源 (Art. 17): one providing department per dataset.
        raise _EntryFailed(
            "one_source",
            _(
                "「%(name)s」已由「%(department)s」提供，一数一源",
                name=entry.name,
                department=ds.department.name,
            ),
        )
    return ds


def _classification(ds: Dataset | None, entry: CatalogEntry) -> Classification:
    """The catalog's class and basis, or the department's reclassification in the console
    (unless the catalog has since said 不予开放); held too when the catalog's own words carry
    personal information."""
    raw_class, basis = entry.open_class, entry.legal_basis
    if ds is not None and ds.class_override:  # the department reclassified it in the console
        said_before = parse_open_class((ds.source_fields or {}).get("open_class"))
        if parse_open_class(entry.open_class) is OpenClass.NOT_OPEN and said_before is not OpenClass.NOT_OPEN:
            # The catalog has since said 不予开放: that newer restriction wins over the console.
            ds.class_override, ds.override_basis, ds.override_conditions = None, None, None
        else:
            raw_class, basis = ds.class_override, ds.override_basis
    decision = classify(raw_class, basis)
    if decision.hold is None and decision.open_class is not OpenClass.NOT_OPEN:
        # What the catalog says is published with the data: it passes the same scan.
        metadata_details = metadata_findings(entry)
        if metadata_details:
            decision = Classification(decision.open_class, metadata_details)
    return decision


def _hinted_fingerprint(entry: CatalogEntry, fetches_files: bool) -> str | None:
    """The files' fingerprint from their version hints; None when a file has none (it is
    fetched and compared by content), "-" when no file is looked at."""
    if not fetches_files:
        return "-"
    hints = [f.version_hint for f in entry.files if f.version_hint]
    return files_fingerprint(hints) if len(hints) == len(entry.files) else None


def _unchanged(ds: Dataset, meta_fp: str, files_fp: str | None) -> bool:
    # A current version made before the publication gate (scan_status NULL) is made again.
    return (
        ds.status != DatasetStatus.WITHDRAWN.value
        and ds.metadata_fingerprint == meta_fp
        and files_fp is not None
        and ds.files_fingerprint == files_fp
        and all(d.scan_status for d in ds.current_distributions)
    )


CATALOG_TEXT_FIELDS = {
    "title": "信息资源名称",
    "summary": "信息资源摘要",
    "open_conditions": "开放条件",
    "share_conditions": "共享条件",
    "share_class": "共享类型",
    "open_class": "开放类型",
    "domain": "数据领域",
    "update_cycle": "更新周期",
    "data_format": "信息资源格式",
    "legal_basis": "法律依据",
    "resource_code": "信息资源代码",
    "published": "发布日期",
    "department_name": "信息资源提供方",
    "department_code": "信息资源提供方代码",
}


def metadata_findings(entry: CatalogEntry) -> list[dict]:
    """Personal information in the catalog's own words (title, summary, keywords, conditions,
    file names, any extra field): they become the public page, the search index and the API."""
    texts = {label: [getattr(entry, field) or ""] for field, label in CATALOG_TEXT_FIELDS.items()}
    texts["关键词"] = list(entry.tags)
    texts["数据文件名"] = [f.name for f in entry.files]
    for key, value in entry.extra.items():
        if isinstance(value, str):
            texts.setdefault(str(key), []).append(value)
    found = []
    for label, lines in texts.items():
        for finding in scan_text(lines, label):
            found.append({"code": "personal_metadata", **finding.as_dict()})
    return found


def _masking_key(masking: dict | None) -> str:
    import hashlib
    import json

    if not masking:
        return ""
    return (
        "-m"
        + hashlib.sha256(json.dumps(masking, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:8]
    )


def _note_warnings(name: str, tables: list[TableInfo]) -> list[Message]:
    out = []
    for t in tables:
        if t.notes and scan_text(t.notes):
            where = f"{name}「{t.sheet}」" if t.sheet else name
            out.append(_("%(file)s：表格上下的说明文字含个人信息，未公开", file=where))
    return out


def _still(ds: Dataset, entry: CatalogEntry) -> EntryResult:
    """Nothing changed in the source. A held entry is reported as held again, so the report
    keeps telling the department what waits for it."""
    if ds.status == DatasetStatus.HELD.value:
        return EntryResult(
            entry.source_ref, ds.open_class, "held", ds.hold_reason, ds.id, details=ds.hold_details
        )
    return EntryResult(entry.source_ref, ds.open_class, "unchanged", None, ds.id)


def _department(s: Session, entry: CatalogEntry) -> Department:
    if scan_text([entry.department_name or "", entry.department_code or ""], "信息资源提供方"):
        # A department's name is on every page of its datasets: personal data never becomes one.
        raise _EntryFailed("provider", _("信息资源提供方（部门名称或代码）含个人信息，已拒绝"))
    dept = s.scalar(select(Department).where(Department.code == entry.department_code))
    if dept is None:
        dept = Department(code=entry.department_code, name=entry.department_name or entry.department_code)
        s.add(dept)
        s.flush()
    elif entry.department_name and dept.name != entry.department_name:
        dept.name = entry.department_name
    return dept


def _copy_metadata(ds: Dataset, entry: CatalogEntry, source_id: int) -> None:
    ds.title = entry.title or entry.name or ""
    ds.summary = entry.summary or ""
    ds.resource_code = entry.resource_code
    ds.domain = entry.domain
    ds.data_format = entry.data_format
    ds.share_class = entry.share_class
    ds.share_conditions = entry.share_conditions
    ds.open_conditions = entry.open_conditions
    ds.legal_basis = entry.legal_basis
    ds.update_cycle = entry.update_cycle
    ds.published_date = entry.published_date()
    ds.tags = list(entry.tags)
    ds.source_fields = {
        "open_class": entry.open_class,
        **entry.extra,
        "catalog": {"title": ds.title, "summary": ds.summary, "domain": ds.domain, "tags": ds.tags},
    }
    ds.source_id = source_id
    ds.source_ref = entry.source_ref
    said = str(entry.extra.get("sensitive") or "").strip().lower()
    if said:  # the catalog says so (a department may also mark it in the console)
        ds.sensitive = said in ("是", "yes", "true", "1", "涉及", "y")
    apply_edits(ds)
    dictionary.apply_catalog(ds, entry.extra)


def _table_row(
    storage: Storage, folder: str, position: int, t: TableInfo, workdir: Path, meta: dict
) -> DataTable:
    """Store a converted table in every download format, each with its size and sha256."""
    made = {"csv": t.csv, "parquet": t.parquet}
    xlsx, json_file = workdir / f"table-{position}.xlsx", workdir / f"table-{position}.json"
    if write_xlsx(t.parquet, xlsx, meta):
        made["xlsx"] = xlsx
    if write_json(t.parquet, json_file, meta):
        made["json"] = json_file
    formats = {}
    for fmt, path in made.items():
        facts = file_facts(path)
        formats[fmt] = {"path": storage.put(path, f"{folder}/table-{position}.{fmt}"), **facts}
    notes = [n for n in t.notes if not scan_text([n])]  # a note with personal data is not kept
    return DataTable(
        position=position,
        sheet=t.sheet,
        row_count=t.row_count,
        schema=t.schema,
        formats=formats,
        parquet_path=formats["parquet"]["path"],
        csv_path=formats["csv"]["path"],
        findings=[f.as_dict() for f in t.findings],
        problems=list(t.problems),
        notes=notes,
    )


def _sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _sniff_media(path: Path) -> str:
    with open(path, "rb") as f:
        return "xlsx" if f.read(4) == b"PK\x03\x04" else "csv"


def _job_entry(job_id: int, r: EntryResult) -> HarvestJobEntry:
    return HarvestJobEntry(
        job_id=job_id,
        source_ref=r.source_id,
        open_class=r.open_class,
        action=r.action,
        reason=r.reason,
        dataset_id=r.dataset_id,
        details=r.details,
    )
