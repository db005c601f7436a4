"""The publication gate: what may become public, decided on exactly what would be served.

A version of a dataset's files (a Distribution) is served openly only when the conversion
read every row of it and the personal-information scan of those rows found nothing
(scan_status "clean"). Its verdict is kept with it, so an old version in the update history
is served by the same rule as the current one; a version that is not clean is removed from
storage as soon as a newer one replaces it, and all versions go when the class becomes not
open. What holds a dataset is kept as details the console and the harvest report put into
words with a fix (explain()).
"""
from __future__ import annotations

from portal.models import Dataset, Distribution, OpenClass, utcnow
from portal.storage import Storage

from .pii import KIND_LABELS

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
            where = {"file": dist.source_name, "sheet": table.sheet if len(dist.tables) > 1 or table.sheet else None}
            for problem in table.problems or []:
                details.append({**where, **problem})
            for finding in table.findings or []:
                # Column and sheet names are shown for conditional data too (schema, page, API).
                if open_class == OpenClass.UNCONDITIONAL.value or finding.get("rule") in ("column_name", "sheet_name"):
                    details.append({**where, "code": "personal", **finding})
        if dist.scan_status is None:
            details.append({"code": "unscanned", "file": dist.source_name})
    if not details:
        return None
    return summary(details), details


def summary(details: list[dict]) -> str:
    """One line for lists and the report: what was found, where."""
    return "；".join(explain(d)[0] for d in details[:6]) + ("；…" if len(details) > 6 else "")


def rescan(session, storage: Storage, ds: Dataset) -> str | None:  # noqa: ANN001
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
    if ds.status not in ("published", "held") or (ds.status == "held" and not ds.hold_details):
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
    shared = any(other is not dist and other.purged_at is None and other.original_path.rsplit("/", 1)[0] == folder
                 for other in (dist.dataset.distributions if dist.dataset is not None else []))
    if not shared:
        storage.remove_tree(folder)
    dist.purged_at = utcnow()
    if dist.superseded_at is None:
        dist.superseded_at = dist.purged_at


# ----------------------------------------------------------------------------- words

_FIX_PERSONAL = ("在部门控制台为该列选择脱敏方式（部分遮蔽或删除该列），或在源文件中删除、脱敏后重新报送；"
                 "确需提供的，改为有条件开放并写明法律依据",
                 "choose a masking for the column in the console (mask part of each value, or drop the column), "
                 "or remove it from the file and send it again; if it must be provided, reclassify as conditional "
                 "with a legal basis")
_CODES = {
    "bad_rows": ("{n} 行的字段数与表头（{width} 列）不符，未能读取{rows}",
                 "{n} rows do not have the header's {width} fields and could not be read{rows}",
                 "在源文件中补齐或删除这些行（常见原因：行内多了逗号、少了单元格、合并单元格）后重新报送",
                 "complete or remove these rows in the file (an extra comma, a missing cell, merged cells) "
                 "and send it again"),
    "beyond_header": ("{n} 行在表头之外还有数据（表头 {width} 列）{rows}",
                      "{n} rows have data beyond the header's {width} columns{rows}",
                      "为这些数据补上表头，或删除多余的单元格后重新报送",
                      "give these cells a header, or remove them, and send the file again"),
    "empty": ("文件不是空的，但没有读到任何数据行", "the file is not empty, but no data row could be read",
              "检查表头位置和分隔符（表格应从表头行开始，每行字段数与表头相同）",
              "check where the header is and the delimiter (each row as many fields as the header)"),
    "unscanned": ("该版本在个人信息检查上线前采集，尚未检查", "this version was harvested before the personal-information check",
                  "下次采集时自动重新检查", "the next harvest checks it"),
}


def explain(detail: dict, lang: str = "zh") -> tuple[str, str]:
    """(what was found where, what fixes it) in the department's words."""
    zh = lang != "en"
    where = _where(detail, zh)
    code = detail.get("code")
    if code == "personal_metadata":
        label = KIND_LABELS.get(detail.get("kind", ""), (detail.get("kind", ""), detail.get("kind", "")))[0 if zh else 1]
        examples = "、".join(detail.get("examples") or [])
        if zh:
            return (f"目录中的「{detail.get('column')}」含{label}" + (f"（如 {examples}）" if examples else ""),
                    "从目录的该项中删除个人信息后重新报送（目录内容与数据一同公开）")
        return (f"the catalog's “{detail.get('column')}” holds {label}" + (f" (e.g. {examples})" if examples else ""),
                "remove the personal information from that catalog field and send the catalog again "
                "(catalog text is published with the data)")
    if code == "personal":
        label = KIND_LABELS.get(detail.get("kind", ""), (detail.get("kind", ""), detail.get("kind", "")))[0 if zh else 1]
        examples = "、".join(detail.get("examples") or [])
        if zh:
            what = f"{where}列「{detail.get('column')}」含{label} {detail.get('count')} 行" + (f"（如 {examples}）" if examples else "")
        else:
            rows = "row" if detail.get("count") == 1 else "rows"
            what = f"{where}column “{detail.get('column')}”: {label} in {detail.get('count')} {rows}" + (
                f" (e.g. {examples})" if examples else "")
        return what, _FIX_PERSONAL[0 if zh else 1]
    if code in _CODES:
        what_zh, what_en, fix_zh, fix_en = _CODES[code]
        rows = detail.get("rows") or []
        shown = ("：第 " + "、".join(map(str, rows)) + " 行" + ("等" if detail.get("count", 0) > len(rows) else "")) if zh and rows \
            else ((": lines " + ", ".join(map(str, rows)) + (" …" if detail.get("count", 0) > len(rows) else "")) if rows else "")
        text = (what_zh if zh else what_en).format(n=detail.get("count", len(rows)), width=detail.get("width", "?"), rows=shown)
        return where + text, fix_zh if zh else fix_en
    return where + str(detail.get("message") or code), str(detail.get("fix") or "")


def _where(detail: dict, zh: bool) -> str:
    parts = []
    if detail.get("file"):
        parts.append(f"文件「{detail['file']}」" if zh else f"file “{detail['file']}”")
    if detail.get("sheet"):
        parts.append(f"工作表「{detail['sheet']}」" if zh else f"sheet “{detail['sheet']}”")
    return ("".join(parts) + "：" if zh else ", ".join(parts) + ": ") if parts else ""


def purge_files(storage: Storage, ds: Dataset) -> None:
    """Not open: no byte of its data stays on the portal side (earlier versions included)."""
    for dist in ds.distributions:
        if dist.purged_at is None:
            remove_version(storage, dist)
    ds.files_fingerprint = None
