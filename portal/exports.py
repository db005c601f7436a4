"""CSV and XLSX files the portal writes from text people typed (open lists, evaluation, audit
export, and any export to come). A cell that begins with =, +, -, @, a tab or a carriage
return is a formula to Excel and WPS: it is written with a leading apostrophe (the OWASP
rule for CSV injection), and XLSX cells are written as strings, never as formulas.

Numbers typed as numbers stay numbers; only text is neutralised.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def file_name(text: str) -> str:
    """Department text as a download's file name: no control characters (a line break in a
    header is a 500) and no path separators."""
    return re.sub(r"[\x00-\x1f\x7f/\\]+", " ", text or "").strip()


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(header: Sequence, rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with a BOM, so Excel reads Chinese correctly."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([safe_cell(c) for c in header])
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return text.getvalue().encode("utf-8-sig")


def xlsx_bytes(
    header: Sequence,
    rows: Iterable[Sequence],
    *,
    sheet: str = "Sheet1",
    title: str | None = None,
    creator: str | None = None,
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for row in [header, *rows]:
        ws.append([string_cell(ws, c, WriteOnlyCell) for c in row])
    if title:
        wb.properties.title = title
    if creator:
        wb.properties.creator = creator
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def string_cell(ws: WriteOnlyWorksheet, value: object, cell_type: Callable[..., Cell]) -> object:
    """A cell that holds text as text: openpyxl would make '=…' a formula."""
    if not isinstance(value, str):
        return value
    cell = cell_type(ws, value=safe_cell(value))
    cell.data_type = "s"
    return cell


def zip_entry(name: str) -> zipfile.ZipInfo:
    """An entry dated now in Beijing time: ZIP stores a local time without a zone, and readers
    show it as written (zipfile's own default is the server's clock, UTC: 01:41 for 09:41)."""
    from . import clock

    entry = zipfile.ZipInfo(name, date_time=clock.now().timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def zip_text(zf: zipfile.ZipFile, name: str, text: str) -> None:
    zf.writestr(zip_entry(name), text)


def zip_file(zf: zipfile.ZipFile, path: Path, name: str) -> None:
    """A file into the ZIP in 1 MB pieces (a data file may be larger than memory)."""
    entry = zip_entry(name)
    entry.file_size = path.stat().st_size  # zip64 decided up front for files over 2 GB
    with path.open("rb") as src, zf.open(entry, "w", force_zip64=entry.file_size > 2**31) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
