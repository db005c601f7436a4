"""A catalog's 信息项 (data items) read into a data dictionary.

The column is free text in every department's catalog; what is read, item by item (items on
separate lines or separated by ；/;):

    列名：中文名｜说明｜单位｜代码表

with `:`/`：` between the column's name and its Chinese name (a bare name describes itself),
`|`/`｜` between the parts, and a code list as `1=男，2=女` (pairs separated by ，,、).
The text was already scanned for personal data with the rest of the catalog (run.py
metadata_findings), so nothing here can carry it onto a page."""

from __future__ import annotations

import re

from portal.models import Dataset, FieldDescription, utcnow

CATALOG_KEYS = ("信息项", "数据项", "data_items", "fields")
_ITEMS = re.compile(r"[;；\n]+")
_PARTS = re.compile(r"[|｜]")
_PAIRS = re.compile(r"[,，、]+")


def items_text(extra: dict) -> str | None:
    for key in CATALOG_KEYS:
        if isinstance(extra.get(key), str) and extra[key].strip():
            return extra[key]
    return None


def parse_items(text: str) -> list[dict]:
    described: dict[str, dict] = {}
    for item in _ITEMS.split(text or ""):
        parts = [p.strip() for p in _PARTS.split(item)]
        head = parts[0] if parts else ""
        if not head:
            continue
        name, _sep, title = (x.strip() for x in re.sub("：", ":", head).partition(":"))
        if not name:
            continue
        described[name] = {
            "name": name[:200],
            "title": (title or None) and title[:200],
            "description": _part(parts, 1),
            "unit": (_part(parts, 2) or "")[:50] or None,
            "codes": codes_of(_part(parts, 3) or ""),
        }
    return list(described.values())


def _part(parts: list[str], i: int) -> str | None:
    return parts[i] if len(parts) > i and parts[i] else None


def codes_of(text: str) -> list[list[str]] | None:
    """`1=男，2=女` (or one pair per line) as [["1", "男"], ["2", "女"]]."""
    pairs = []
    for pair in _PAIRS.split(text.replace("\n", "，")):
        code, sep, meaning = pair.partition("=")
        if not sep:
            code, sep, meaning = pair.partition("＝")
        if sep and code.strip():
            pairs.append([code.strip()[:100], meaning.strip()[:200]])
    return pairs or None


def apply_catalog(ds: Dataset, extra: dict) -> None:
    """The catalog's descriptions replace the catalog's earlier ones; a column the department
    described in the console keeps the department's words."""
    text = items_text(extra)
    wanted = {item["name"]: item for item in parse_items(text or "")}
    for row in list(ds.field_descriptions):
        if row.source == "catalog" and row.name not in wanted:
            ds.field_descriptions.remove(row)
    existing = {row.name: row for row in ds.field_descriptions}
    for name, item in wanted.items():
        found = existing.get(name)
        if found is not None and found.source == "console":
            continue
        row = found or FieldDescription(name=name, source="catalog")
        if found is None:
            ds.field_descriptions.append(row)
        row.title, row.description, row.unit, row.codes = (
            item["title"],
            item["description"],
            item["unit"],
            item["codes"],
        )
        row.updated_at = utcnow()
