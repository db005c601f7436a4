"""The publication gate: what may become public, decided on exactly what would be served.

A version of a dataset's files (a Distribution) is served openly only when the conversion
read every row of it and the personal-information scan of those rows found nothing
(scan_status "clean"). Its verdict is kept with it, so an old version in the update history
is served by the same rule as the current one; a version that is not clean is removed from
storage as soon as a newer one replaces it, and all versions go when the class becomes not
open. What holds a dataset is kept as details with a code (harvest/holds.py), which the console
and the harvest report put into words with a fix.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.models import Dataset, Distribution, OpenClass, utcnow
from portal.storage import Storage

from .holds import detail, held_by_gate, summary

CLEAN, PERSONAL, INCOMPLETE = "clean", "personal", "incomplete"


def verdict(findings: list, problems: list) -> str:
    return INCOMPLETE if problems else (PERSONAL if findings else CLEAN)


def hold(ds: Dataset, open_class: str | None) -> tuple[str, list[dict]] | None:
    """Why the current files keep the dataset out of view, or None.

    Rows that could not be read hold any class (the data would be incomplete: Art. 16);
    personal information holds unconditional data (a licence may cover it for conditional)."""
    details: list[dict] = []
    for dist in ds.current_distributions:
        for table in dist.tables:
            where = {
                "file": dist.source_name,
                "sheet": table.sheet if len(dist.tables) > 1 or table.sheet else None,
            }
            for problem in table.problems or []:
                details.append({**where, **problem})
            for finding in table.findings or []:
                # Column and sheet names are shown for conditional data too (schema, page, API).
                if open_class == OpenClass.UNCONDITIONAL.value or finding.get("rule") in (
                    "column_name",
                    "sheet_name",
                ):
                    details.append({**where, **finding, "code": "personal"})
        if dist.scan_status is None:
            details.append(detail("unscanned", file=dist.source_name))
    if not details:
        return None
    return summary(details), details


def rescan(session: Session, storage: Storage, ds: Dataset) -> str | None:
    """Scan every kept version of a dataset again with today's rules (after the rules grew):
    verdicts updated, a current version now found personal holds the dataset, a replaced one
    goes from storage. Returns the dataset's new status if the gate changed it."""
    from .pii import scan_parquet

    for dist in ds.distributions:
        if dist.purged_at is not None or dist.scan_status is None:
            continue
        findings = []
        for table in dist.tables:
            table.findings = [f.as_dict() for f in scan_parquet(storage.local_path(table.parquet_path))]
            findings += table.findings
        dist.scan_status = verdict(findings, [p for t in dist.tables for p in t.problems or []])
    purge_unservable(storage, ds)
    if ds.status not in ("published", "held") or (ds.status == "held" and not held_by_gate(ds.hold_details)):
        return None  # held for another reason (basis, restriction): not the gate's to lift
    held = hold(ds, ds.open_class)
    before = ds.status
    if held:
        ds.status = "held"
        ds.hold_reason, ds.hold_details = held
    else:
        ds.status, ds.hold_reason, ds.hold_details = "published", None, None
    ds.search_dirty = True
    return ds.status if ds.status != before else None


def purge_unservable(storage: Storage, ds: Dataset) -> list[Distribution]:
    """Remove from storage every superseded version that may never be served (personal
    information, rows not read, made before the gate); the rows stay as the record."""
    purged = []
    for dist in ds.distributions:
        if dist.superseded_at is not None and dist.scan_status != CLEAN and dist.purged_at is None:
            remove_version(storage, dist)
            purged.append(dist)
    return purged


def remove_version(storage: Storage, dist: Distribution) -> None:
    """Remove a version's files. Folders are named by content, so the same file made again
    (after an upgrade, or sent back unchanged) shares the folder: it stays while another
    version that is kept uses it."""
    folder = dist.original_path.rsplit("/", 1)[0]
    shared = any(
        other is not dist and other.purged_at is None and other.original_path.rsplit("/", 1)[0] == folder
        for other in (dist.dataset.distributions if dist.dataset is not None else [])
    )
    if not shared:
        storage.remove_tree(folder)
    dist.purged_at = utcnow()
    if dist.superseded_at is None:
        dist.superseded_at = dist.purged_at


def purge_files(storage: Storage, ds: Dataset) -> None:
    """Not open: no byte of its data stays on the portal side (earlier versions included)."""
    for dist in ds.distributions:
        if dist.purged_at is None:
            remove_version(storage, dist)
    ds.files_fingerprint = None
