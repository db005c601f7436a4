"""The data dictionary a reader sees (数据项: 中文名、说明、单位、代码表), the department's edits in
the console, and the dictionary as Frictionless Table Schema fields (datapackage.json, the
licensed ZIP) and as the data API's /fields. harvest/dictionary.py reads the catalog's 信息项."""

from __future__ import annotations

from sqlalchemy.orm import Session

from harvest.dictionary import codes_of
from harvest.pii import scan_text
from portal.audit import record
from portal.authz import Action, require
from portal.messages import _
from portal.models import Dataset, FieldDescription, User, utcnow

from .bundle import by_name
from .curation import CurationError

LIMITS = {"title": 200, "description": 2000, "unit": 50, "codes": 4000}


def _cleaned(name: str, values: dict) -> tuple:
    """One column's posted words, checked: (title, description, unit, codes) with None for empty."""
    clean = {k: (values.get(k) or "").strip() for k in LIMITS}
    if any(len(clean[key]) > limit for key, limit in LIMITS.items()):
        raise CurationError(_("「%(name)s」的说明过长", name=name))
    found = scan_text([clean["title"], clean["description"], clean["unit"], clean["codes"]], name)
    if found:
        raise CurationError(_("数据项说明中不得含个人信息：%(found)s", found=found[0].describe()))
    codes = codes_of(clean["codes"])
    if clean["codes"] and codes is None:
        raise CurationError(_("「%(name)s」的代码表请写成「代码=含义」，以逗号分隔", name=name))
    return clean["title"] or None, clean["description"] or None, clean["unit"] or None, codes


def edit(session: Session, curator: User, ds: Dataset, posted: dict[str, dict], ip: str | None = None) -> int:
    """The department describes its columns; an emptied column goes back to the catalog's words
    at the next harvest. Public text: scanned for personal data like every other field.
    Returns how many columns changed."""
    require(user=curator, action=Action.CURATE, obj=ds)
    columns = {c["name"] for t in ds.served_tables for c in t.schema} | set(by_name(ds))
    rows, changed = by_name(ds), 0
    for name, values in posted.items():
        if name not in columns:
            continue
        new = _cleaned(name, values)
        row = rows.get(name)
        if row is not None and (row.title, row.description, row.unit, row.codes) == new:
            continue
        if row is not None and not any(new):  # emptied: the catalog's words return at the next harvest
            ds.field_descriptions.remove(row)
            changed += 1
            continue
        if row is None:
            if not any(new):
                continue
            row = FieldDescription(name=name)
            ds.field_descriptions.append(row)
        row.title, row.description, row.unit, row.codes = new
        row.source, row.updated_at = "console", utcnow()
        changed += 1
    if changed:
        ds.updated_at = utcnow()
        record(
            session, "dictionary_edited", actor=curator, target=f"dataset:{ds.name}", ip=ip, columns=changed
        )
    return changed
