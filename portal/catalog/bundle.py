"""The attribution bundle (ZIP): the data, datapackage.json (Frictionless), ATTRIBUTION.txt.

Built once per table and day (the acquisition date is in it) into the storage's local
cache (storage.cache_path), then served as a file, so Range and resumption work like any
download.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import zipfile
from pathlib import Path

from .. import clock, open_licence
from ..exports import zip_file, zip_text
from ..models import Dataset, DataTable, FieldDescription
from ..storage import Storage

FRICTIONLESS_TYPES = {
    "int": "integer",
    "uint": "integer",
    "double": "number",
    "float": "number",
    "decimal": "number",
    "bool": "boolean",
    "date32": "date",
    "date64": "date",
    "timestamp": "datetime",
    "time": "time",
    "string": "string",
    "large_string": "string",
}


def field_type(arrow_type: str) -> str:
    for prefix, kind in FRICTIONLESS_TYPES.items():
        if arrow_type.startswith(prefix):
            return kind
    return "any"


def by_name(ds: Dataset) -> dict[str, FieldDescription]:
    return {row.name: row for row in ds.field_descriptions}


def described(ds: Dataset, columns: list[dict]) -> list[dict]:
    """A table's columns ({"name", "type"}) with their descriptions, in the table's order."""
    rows = by_name(ds)
    out = []
    for column in columns:
        row = rows.get(column["name"])
        out.append(
            {
                **column,
                "title": row.title if row else None,
                "description": row.description if row else None,
                "unit": row.unit if row else None,
                "codes": row.codes if row else None,
            }
        )
    return out


def frictionless_fields(ds: Dataset, columns: list[dict]) -> list[dict]:
    """Table Schema fields: name, type, title, description (with the unit), constraints.enum
    (the code list's codes; their meanings in the description)."""
    fields = []
    for column in described(ds, columns):
        field: dict = {"name": column["name"], "type": field_type(column["type"])}
        if column["title"]:
            field["title"] = column["title"]
        text = [column["description"] or ""]
        if column["unit"]:
            text.append(f"单位：{column['unit']}")
        if column["codes"]:
            text.append("代码：" + "，".join(f"{c}={m}" for c, m in column["codes"]))
            field["constraints"] = {"enum": [c for c, _m in column["codes"]]}
        if any(text):
            field["description"] = "；".join(t for t in text if t)
        fields.append(field)
    return fields


def resource(table: DataTable, name: str, path: str) -> dict:
    """A Frictionless tabular data resource for a table's UTF-8 CSV at `path`."""
    csv_facts = table.formats["csv"]
    return {
        "name": name,
        "path": path,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "bytes": csv_facts["size"],
        "hash": f"sha256:{csv_facts['sha256']}",
        "schema": {"fields": frictionless_fields(table.distribution.dataset, table.schema)},
    }


def package(ds: Dataset, resources: list[dict], version: str, site: str = "") -> dict:
    """A Frictionless data package; unconditional data names its open licence (an absolute URL
    where the portal's address is known: Frictionless refuses absolute paths)."""
    described = {
        "profile": "tabular-data-package",
        "name": ds.name.lower(),
        "title": ds.title,
        "description": ds.summary,
        "version": version,
        "sources": [{"title": ds.department.name}],
        "contributors": [{"title": ds.department.name, "role": "author"}],
        "keywords": list(ds.tags or []),
        "resources": resources,
    }
    if ds.open_class == "unconditional":
        licence = open_licence.CURRENT
        described["licenses"] = [
            {
                "name": licence.id,
                "title": licence.title["zh"],
                **({"path": licence.url(site)} if site else {}),
            }
        ]
    return described


def datapackage(ds: Dataset, table: DataTable, path: str = "data.csv", site: str = "") -> dict:
    return package(
        ds,
        [resource(table, "data", path)],
        clock.local(table.distribution.fetched_at).date().isoformat(),
        site=site,
    )


def attribution_text(ds: Dataset, table: DataTable, today: dt.date) -> str:
    from harvest.formats import attribution

    return "\n".join(
        [
            attribution(ds.department.name, ds.title, today.isoformat()),
            "",
            f"提供部门 / Source department: {ds.department.name}",
            f"数据集 / Dataset: {ds.title} ({ds.name})",
            f"信息资源代码 / Resource code: {ds.resource_code or '—'}",
            "开放类型 / Open class: 无条件开放 (unconditional)",
            f"数据版本 / Version: {clock.local(table.distribution.fetched_at).date().isoformat()}  sha256 {table.distribution.sha256}",
            f"获取日期 / Acquired: {today.isoformat()}",
            "",
            "依据《东昌府区政务数据资源管理暂行办法》第二十五条，利用本数据形成的数据产品应注明数据来源和获取日期。",
            "Under Art. 25 of the Dongchangfu measures, products built on this data state its source and the date it was obtained.",
            "",
        ]
    )


def bundle_file(storage: Storage, table: DataTable, today: dt.date) -> Path:
    """Where the day's attribution bundle of a table version is kept (it may not exist yet)."""
    return storage.cache_path(f"bundles/{table.id}-{table.distribution.sha256[:16]}-{today.isoformat()}.zip")


def build_bundle(storage: Storage, ds: Dataset, table: DataTable, today: dt.date, site: str = "") -> Path:
    """Make the day's bundle (a `bundle` job: compressing a large CSV takes a while)."""
    path = bundle_file(storage, table, today)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per builder (process and thread: gthread workers build in threads).
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zip_file(zf, storage.local_path(table.formats["csv"]["path"]), "data.csv")
        zip_text(
            zf,
            "datapackage.json",
            json.dumps(datapackage(ds, table, site=site), ensure_ascii=False, indent=2),
        )
        zip_text(zf, "ATTRIBUTION.txt", attribution_text(ds, table, today))
    os.replace(tmp, path)  # concurrent builders race harmlessly: same content, atomic rename
    return path
