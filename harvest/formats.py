"""Download formats made at publication, each carrying the attribution (Art. 25):
Parquet key-value metadata (written by the converter), XLSX document properties, and a
JSON file that wraps the rows with its source. CSV stays the department's own data as UTF-8.

Made once when a file version is published, so a download is a plain file on disk (Range,
ETag, sendfile) and its size and sha256 can be shown before anyone downloads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

XLSX_MAX_ROWS = 1_048_575  # the sheet's limit, less the header row
# JSON of a longer table is gigabytes that no one parses whole; the CSV, Parquet and (later)
# the data API serve such tables.
JSON_MAX_ROWS = 1_000_000
SITE = "东昌府区公共数据开放平台"


def attribution(department: str, title: str, date: dt.date | str) -> str:
    """The line a user copies: 数据来源：<department>《<title>》，获取日期：<date>，东昌府区公共数据开放平台."""
    return f"数据来源：{department}《{title}》，获取日期：{date}，{SITE}"


def parquet_metadata(
    department: str, title: str, version_date: dt.date, name: str, open_data: bool = False
) -> dict[str, str]:
    """What every file of a version says of itself; unconditional data names its open licence
    (the portal's path /open-licence/<version>: a file does not know the portal's address)."""
    meta = {
        "source_department": department,
        "dataset": title,
        "dataset_name": name,
        "publisher": SITE,
        "version_date": version_date.isoformat(),
        "attribution": attribution(department, title, version_date.isoformat()),
    }
    if open_data:
        from portal.open_licence import CURRENT

        meta["license"] = f"{CURRENT.id} {CURRENT.title['zh']} ({CURRENT.path})"
    return meta


def write_xlsx(parquet: Path, dest: Path, meta: dict[str, str]) -> bool:
    """A workbook of the table, streamed; False when the table is too long for a sheet."""
    from openpyxl import Workbook

    pf = pq.ParquetFile(parquet)
    if pf.metadata.num_rows > XLSX_MAX_ROWS:
        return False
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    # The first sheet states the source (Art. 25), so it is the first thing a person sees in the
    # tab bar and on printing; the data follows on its own sheet, header in row 1.
    source = wb.create_sheet("数据来源")
    for line in (
        ["数据来源 Source", meta["attribution"]],
        ["数据集 Dataset", f"{meta['dataset']}（{meta['dataset_name']}）"],
        ["提供部门 Provider", meta["source_department"]],
        ["数据版本 Version", meta["version_date"]],
        ["发布平台 Publisher", meta["publisher"]],
        *([["开放许可 Licence", meta["license"]]] if meta.get("license") else []),
        [
            "说明 Note",
            "利用本数据形成的数据产品须注明数据来源和获取日期（《东昌府区政务数据资源管理暂行办法》第二十五条）。"
            " Products made with this data state its source and the date it was obtained.",
        ],
    ):
        source.append([_text(source, v, WriteOnlyCell) for v in line])
    ws = wb.create_sheet("数据")
    ws.append([_text(ws, n, WriteOnlyCell) for n in pf.schema_arrow.names])
    for batch in pf.iter_batches(batch_size=10_000):
        for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
            # Text is written as text: a department's "=HYPERLINK(…)" is data, not a formula.
            ws.append([_text(ws, v, WriteOnlyCell) if isinstance(v, str) else _cell(v) for v in row])
    props = wb.properties
    props.title = meta["dataset"]
    props.creator = meta["source_department"]
    props.description = meta["attribution"]
    props.subject = f"{meta['publisher']} · {meta['dataset_name']}"
    props.keywords = "东昌府区; 公共数据开放"
    wb.save(dest)
    return True


def _cell(value: object) -> object:
    """Excel has no time zones: an aware time is written as the wall-clock time it shows."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def _text(ws: WriteOnlyWorksheet, value: str, cell_type: Callable[..., Cell]) -> Cell:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell = cell_type(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))  # NUL and other controls: not in XML
    cell.data_type = "s"
    return cell


def write_json(parquet: Path, dest: Path, meta: dict[str, str]) -> bool:
    """{"source": {...attribution...}, "fields": [...], "rows": [{...}, ...]}, streamed;
    False when the table is longer than JSON_MAX_ROWS."""
    pf = pq.ParquetFile(parquet)
    if pf.metadata.num_rows > JSON_MAX_ROWS:
        return False
    with open(dest, "w", encoding="utf-8") as f:
        f.write('{"source": ' + json.dumps(meta, ensure_ascii=False))
        f.write(
            ', "fields": '
            + json.dumps(
                [{"name": fld.name, "type": str(fld.type)} for fld in pf.schema_arrow], ensure_ascii=False
            )
        )
        f.write(', "rows": [')
        first = True
        for batch in pf.iter_batches(batch_size=10_000):
            for record in batch.to_pylist():
                f.write(("" if first else ",\n") + json.dumps(record, ensure_ascii=False, default=str))
                first = False
        f.write("]}\n")
    return True


def file_facts(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}
