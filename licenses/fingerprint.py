"""Traceable licensed files (issue 21, item 5; Zhoucun measures Art. 15: no passing to third
parties). Every licensed file carries a fingerprint of its grant that survives re-saving and
re-sorting without changing any data value — no invisible characters, no altered digits, no
rows added or removed, so a researcher's exact-match joins still work. A bureau page takes a
leaked file and names the grant (portal/views/admin/leaks.py).

The evidence, strongest first:
1. the exact bytes: the sha256 of every file served (CSV, Parquet, XLSX and the ZIP), per grant
   and item (LicensedFileHash): a forwarded, untouched file is named with certainty;
2. embedded metadata: the Parquet key-value metadata and an XLSX custom document property
   carry the licence number (an Excel re-save of the workbook keeps it; CSV has none; a
   pandas re-save drops it; anyone can write another's number in, so it never names a grant on
   its own: it only adds to layers 3 and 4);
3. the column order: the granted columns are written in an order chosen for the grant when its
   file is first built and kept (LicensedFileMark): no two grants of the same dataset and the
   same columns get the same order while unused orders remain (n columns: n! − 1 orders; the
   dataset's own order, which the data API and the previews use, is never given). It survives
   re-sorting rows, re-saving as CSV or XLSX and cutting rows; dropping columns keeps the
   order of those left. It counts only when a coincidental match is unlikely (grants / n! ≤
   CHANCE: 3 columns, 6 orders, never do);
4. the row order: rows are written sorted by a keyed hash of their content (the grant's own
   random key), so in the served file every adjacent pair of rows is "in key order". Cutting
   rows keeps that; a stable sort on a column with ties (Excel's sort, pandas'
   sort_values(kind="stable")) keeps it within equal values of the column. The leaked file is
   measured as the share of adjacent pairs — within the runs of equal values of the columns it
   was sorted by, found from the file itself — that are in each candidate grant's key order:
   the right grant ~100 %, any other ~50 %;
5. scope: the leaked file's columns lie within the grant's fields, its rows within the grant's
   row filter, and at least half of its rows are found in the dataset's data (any stored
   version; "NA", "null"… count as empty, control characters are ignored): a file not from this
   dataset is never pinned on anyone, whatever its column order says.

An untouched file is answered from its sha256 at once. Any other file is read under hard caps
applied while reading (columns, cells, characters of a cell and of a line; the footer of a
Parquet file and the parts of a workbook checked first), so that a lookup takes seconds and
bounded memory whatever the file; what was not read is said on the page.

Refinements of the first design, and why:
- the column order is drawn at random (the system's CSPRNG) among the orders not yet given for
  the same dataset and columns, instead of walking a sequence seeded by HMAC(secret key,
  dataset): "first unused" is checked against the stored orders either way, a random draw is
  as unpredictable to a holder, and the marks do not depend on the secret key (which
  `portal deploy change-secret-key` replaces);
- the row order is not a stored permutation but a sort by a keyed hash (BLAKE2b, the mark's own
  random key) of each row's content written canonically (numbers, dates and booleans as a
  spreadsheet or pandas would write them back): it needs no row numbers, holds for any version
  of the data, and is checked on the leaked rows themselves;
- a mark belongs to a grant, an item and a set of columns (one per table shape), so a dataset
  whose new version adds a column gets a fresh order for the new shape.

Limits (said on the bureau's page too): a leaker who puts the columns back in another order and
sorts the rows by a unique key (or shuffles them) defeats layers 3 and 4; only the bytes or the
metadata, when left, name the grant then. A re-typed or heavily edited file may not be found
in the dataset's data at all. Rows read through the data API are logged, not marked.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import hashlib
import io
import itertools
import json
import logging
import math
import re
import secrets
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.errors import DomainError
from portal.messages import Joined, Message, _
from portal.models import (
    ApplicationItem,
    Dataset,
    Grant,
    LicensedFileHash,
    LicensedFileMark,
)
from portal.storage import Storage

from .errors import LicenceError

# The error codes openpyxl would write a text equal to as an error cell.
ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

MAX_BYTES = 64 * 1024 * 1024  # a leaked file the page reads
MAX_ROWS = 200_000  # rows read from it: far more than the layers need
UNPACKED_LIMIT = 512 * 1024 * 1024  # a workbook's parts, a Parquet file's row groups, unpacked
XLSX_MAX_ROWS = 1_048_575  # a sheet's limit, less the header row
MAX_COLUMNS = 200  # columns read from it (the first ones)
MAX_CELLS = 2_000_000  # cells read from it: rows are cut accordingly
XLSX_CELLS = 500_000  # a workbook's (openpyxl parses some 100,000 cells a second)
CELL_CHARS = 500  # characters of a cell compared (before any normalisation)
EMPTY_RUN = 10_000  # consecutive empty rows after which a sheet is taken to end
LINE_CHARS = 1_000_000  # characters of a CSV line read
MAX_SHEETS = 5  # a workbook's sheets looked at
SHARED_LIMIT = 64 * 1024 * 1024  # a workbook's shared strings, unpacked (read whole by openpyxl)
IN_DATASET = 0.5  # share of the file's rows found in the dataset for a grant to be named
UNRELATED = 0.1  # below it, the file is not the dataset's at all
CHANCE = 1 / 1000  # a column order counts when matching one of the grants by chance is this unlikely
ENUMERATED = 7  # up to 7 columns every order is listed (5,040); above, orders are drawn
FOUND_KEY = b"dongchangfu-portal:rows-found"  # the hash that finds leaked rows in the data
LICENCE_RE = re.compile(r"DCFL-\d{4}-\d{8}[0-9X]")
_MULT = np.uint64(0x100000001B3)  # FNV prime: combines the per-column hashes of a row

log = logging.getLogger(__name__)


class UnreadableFile(DomainError):
    """The uploaded file cannot be read as a table: the message says why."""


@dataclass
class Mark:
    column_order: list[str]
    row_seed: str


# ---------------------------------------------------------------------- canonical values
# A value as any tool writes it back: pandas reading a CSV makes "007" 7 and "1.50" 1.5; Excel
# makes dates serial numbers shown as dates; a workbook gives back datetimes. Both the served
# rows and the leaked rows are put in this form before they are hashed or compared.

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
)


# What pandas, R and spreadsheets read back as a missing value (pandas' default na_values).
_MISSING = frozenset(
    v.lower()
    for v in ("#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN")
    + ("<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "NaT")
)
# Control characters an XLSX cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE) and tools drop.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def canon(value: object) -> str:
    """One cell, canonically: "" for empty (and for "NA", "null", "NaN", "None", "N/A"…, which
    pandas and spreadsheets read back as empty), text cut to CELL_CHARS characters and without
    control characters, numbers without trailing zeros or leading zeros
    (15 significant digits and above: 12 significant digits, as a spreadsheet keeps them),
    dates as YYYY-MM-DD (and a time, when not midnight), booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        return _number(float(value), value if isinstance(value, int) else None)
    if isinstance(value, dt.datetime | dt.date):
        return _when(value)
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return _text(str(value))


def _number(number: float, exact: int | None = None) -> str:
    if math.isnan(number) or math.isinf(number):
        return "" if math.isnan(number) else str(number)
    if exact is not None and abs(exact) < 10**15:
        return str(exact)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.12g}"


def _when(value: dt.date) -> str:
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    value = value.replace(tzinfo=None)
    if value.time() == dt.time(0):
        return value.date().isoformat()
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


def _text(text: str) -> str:
    text = _CONTROL.sub("", text[:CELL_CHARS]).strip()
    if not text or (len(text) <= 8 and text.lower() in _MISSING):
        return ""
    if _NUMBER.fullmatch(text):
        return _number(float(text), int(text) if text.lstrip("+-").isdigit() else None)
    if (m := _DATE.fullmatch(text)) is not None:
        return _date_text(m) or text
    if len(text) <= 5 and text.lower() in ("true", "false"):
        return text.lower()
    return text


def _date_text(m: re.Match[str]) -> str | None:
    try:
        day = dt.datetime(
            int(m.group(1)),
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4) or 0),
            int(m.group(5) or 0),
            int(m.group(6) or 0),
            int((m.group(7) or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
    return _when(day)


def _digest(text: str, key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=key).digest(), "big")


def _canon_array(
    column: pa.ChunkedArray | pa.Array, clean: Callable[[object], str] = canon
) -> tuple[list[str], np.ndarray]:
    """The canonical distinct values of a column and each row's index into them (each distinct
    value is put in canonical form once: a category column of millions of rows costs little)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(array.type):
        return [""], np.zeros(len(array), dtype=np.int64)
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    values = [clean(v) for v in encoded.dictionary.to_pylist()] + [""]
    indices = pc.fill_null(encoded.indices.cast(pa.int64()), len(values) - 1)
    return values, indices.to_numpy(zero_copy_only=False)


def _hashes(values: Sequence[str], key: bytes) -> np.ndarray:
    seen: dict[str, int] = {}
    out = np.empty(len(values), dtype=np.uint64)
    for i, v in enumerate(values):
        h = seen.get(v)
        if h is None:
            h = seen[v] = _digest(v, key)
        out[i] = h
    return out


def _combine(parts: Iterable[np.ndarray], rows: int) -> np.ndarray:
    total = np.zeros(rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            total = total * _MULT + part
    return total


def table_row_keys(table: pa.Table, columns: Sequence[str], key: bytes) -> np.ndarray:
    """A keyed 64-bit hash of each row's canonical content over `columns` (by name order)."""

    def per_column(name: str) -> np.ndarray:
        values, indices = _canon_array(table.column(name))
        return _hashes(values, key)[indices]

    return _combine((per_column(c) for c in sorted(columns)), table.num_rows)


def cells_row_keys(cells: dict[str, list[str]], columns: Sequence[str], key: bytes, rows: int) -> np.ndarray:
    """The same hash over rows already in canonical form (a leaked file's)."""
    return _combine((_hashes(cells[c], key) for c in sorted(columns)), rows)


# ---------------------------------------------------------------------- marks


def _columns_key(columns: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(columns), ensure_ascii=False).encode()).hexdigest()


def _order_key(order: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(order), ensure_ascii=False).encode()).hexdigest()


def choose_order(columns: Sequence[str], used: Counter[tuple[str, ...]]) -> tuple[list[str], int]:
    """An order of `columns` not given yet (never the dataset's own, while there is another),
    drawn at random; once every order is given, one of the least given. Returns it and how many
    times it was given before."""
    pick = secrets.SystemRandom()
    own = tuple(columns)
    if len(columns) <= ENUMERATED:
        orders = [p for p in itertools.permutations(columns) if p != own] or [own]
        least = min(used[p] for p in orders)
        return list(pick.choice([p for p in orders if used[p] == least])), least
    for _attempt in range(10_000):
        drawn = list(columns)
        pick.shuffle(drawn)
        if tuple(drawn) != own and not used[tuple(drawn)]:
            return drawn, 0
    raise LicenceError(_("暂时无法为授权文件选定列顺序，请稍后重试"))


def _stored_mark(session: Session, grant: Grant, item: ApplicationItem, key: str) -> Mark | None:
    found = session.scalar(
        select(LicensedFileMark).where(
            LicensedFileMark.grant_id == grant.id,
            LicensedFileMark.item_id == item.id,
            LicensedFileMark.columns_key == key,
        )
    )
    return Mark(list(found.column_order), found.row_seed) if found else None


def mark_for(session: Session, grant: Grant, item: ApplicationItem, columns: Sequence[str]) -> Mark:
    """The grant's mark for a table of these granted columns (in the dataset's order): made and
    committed on its own the first time (another build at the same moment cannot take the same
    order: the unique constraint refuses it and the order is drawn again), then always the same.
    Call it before the session has written anything (SQLite: a second writer would wait)."""
    key = _columns_key(columns)
    if (mark := _stored_mark(session, grant, item, key)) is not None:
        return mark
    for _attempt in range(8):
        with Session(session.get_bind()) as own:
            if (mark := _stored_mark(own, grant, item, key)) is not None:
                return mark
            used = Counter(
                tuple(order)
                for order in own.scalars(
                    select(LicensedFileMark.column_order).where(
                        LicensedFileMark.dataset_id == item.dataset_id, LicensedFileMark.columns_key == key
                    )
                )
            )
            order, reuse = choose_order(list(columns), used)
            mark = Mark(order, secrets.token_hex(16))
            own.add(
                LicensedFileMark(
                    grant_id=grant.id,
                    item_id=item.id,
                    dataset_id=item.dataset_id,
                    columns_key=key,
                    column_order=order,
                    order_key=_order_key(order),
                    reuse=reuse,
                    row_seed=mark.row_seed,
                )
            )
            try:
                own.commit()
                return mark
            except IntegrityError:
                own.rollback()
    raise LicenceError(_("暂时无法为授权文件选定列顺序，请稍后重试"))


def row_order(table: pa.Table, row_seed: str) -> np.ndarray:
    """The grant's row order: the rows sorted by their keyed hash (ties — equal rows — as they were)."""
    keys = table_row_keys(table, table.column_names, bytes.fromhex(row_seed))
    return np.argsort(keys, kind="stable")


def marked(session: Session, grant: Grant, item: ApplicationItem, table: pa.Table) -> pa.Table:
    """The granted table as the grant's files hold it: its columns in the grant's order, its
    rows in the grant's row order. Values are untouched."""
    if table.num_columns == 0:
        return table
    mark = mark_for(session, grant, item, table.column_names)
    ordered = table.select(mark.column_order)
    return ordered.take(pa.array(row_order(ordered, mark.row_seed))) if ordered.num_rows > 1 else ordered


def record_served(
    session: Session, grant: Grant, item: ApplicationItem, files: dict[str, Path]
) -> list[LicensedFileHash]:
    """The sha256 of each file served (name in the ZIP → path; missing paths are skipped), once
    per grant, item and content."""
    made = []
    for name, path in files.items():
        if not path.exists():
            continue
        with path.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        known = session.scalar(
            select(LicensedFileHash.id).where(
                LicensedFileHash.grant_id == grant.id,
                LicensedFileHash.item_id == item.id,
                LicensedFileHash.sha256 == sha,
            )
        )
        if known is None:
            row = LicensedFileHash(
                grant_id=grant.id,
                item_id=item.id,
                dataset_id=item.dataset_id,
                sha256=sha,
                format=path.suffix.lstrip(".").lower()[:10],
                name=name,
                bytes=path.stat().st_size,
            )
            session.add(row)
            made.append(row)
    return made


# ---------------------------------------------------------------------- the XLSX file


def write_xlsx(table: pa.Table, dest: Path, meta: dict[str, str]) -> bool:
    """The granted table as a workbook, streamed (openpyxl write-only): the data sheet first,
    header row then values; text written as text (a value starting with = + - @ is data, never a
    formula, and keeps every character); the licence on a second sheet, in the document
    properties and as custom properties (an Excel re-save keeps them). False when the table is
    longer than a sheet."""
    if table.num_rows > XLSX_MAX_ROWS:
        return False
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.packaging.custom import StringProperty

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("数据")
    ws.append([_text_cell(ws, name, WriteOnlyCell) for name in table.column_names])
    for batch in table.to_batches(max_chunksize=10_000):
        for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
            ws.append([_xlsx_value(ws, v, WriteOnlyCell) for v in row])
    about = wb.create_sheet("授权信息")
    for k in ("attribution", "licence_number", "licence_url", "permitted_purpose", "valid_until"):
        if meta.get(k):
            about.append([_text_cell(about, k, WriteOnlyCell), _text_cell(about, meta[k], WriteOnlyCell)])
    props = wb.properties
    props.title = meta.get("dataset")
    props.creator = meta.get("source_department")
    props.description = meta.get("attribution")
    props.subject = meta.get("licence_number")
    for k in ("licence_number", "licence_url", "dataset", "source_department", "valid_until"):
        if meta.get(k):
            wb.custom_doc_props.append(StringProperty(name=k, value=meta[k]))  # type: ignore[attr-defined]
    wb.save(dest)
    return True


EXCEL_EXACT = 2**53  # integers beyond it a spreadsheet rounds
EXCEL_DIGITS = 15  # significant digits a spreadsheet keeps
EXCEL_FIRST_DAY = dt.date(1900, 3, 1)  # before it Excel's serial days are off (its 1900-02-29)


def _xlsx_value(ws: WriteOnlyWorksheet, value: object, cell_type: Any) -> object:
    """A value as the workbook holds it without changing it: plain values as they are (cheap:
    openpyxl reuses one cell for them); as text what Excel would alter — a text starting with
    "=" (else a formula) or spelling an error code, an integer beyond ±2^53, a decimal of more
    than 15 significant digits, a date before 1900-03-01; NaN and infinities as empty cells."""
    if isinstance(value, str):
        plain = not value.startswith("=") and value not in ERROR_CODES and not _CONTROL.search(value)
        return value if plain else _text_cell(ws, value, cell_type)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or value is None:
        return value
    if _inexact(value):
        return _text_cell(ws, str(value), cell_type)
    if isinstance(value, dt.date) and _day(value) < EXCEL_FIRST_DAY:
        return _text_cell(ws, value.isoformat(), cell_type)
    return _plain(value)


def _inexact(value: object) -> bool:
    if isinstance(value, int):
        return abs(value) > EXCEL_EXACT
    return (
        isinstance(value, decimal.Decimal)
        and value.is_finite()
        and len(value.as_tuple().digits) > EXCEL_DIGITS
    )


def _day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _plain(value: object) -> object:
    """Excel has no time zones: an aware time is written as the wall-clock time it shows."""
    if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return None
    return value


def _text_cell(ws: WriteOnlyWorksheet, value: str, cell_type: Any) -> Cell:
    # Control characters other than tab and line breaks cannot be in the XML at all: dropped
    # (the comparison drops them too: canon).
    cell: Cell = cell_type(ws, value=_CONTROL.sub("", value))
    cell.data_type = "s"
    return cell


# ---------------------------------------------------------------------- reading a leaked file
# Every read is capped while it reads (not after): at most MAX_COLUMNS columns, MAX_CELLS cells
# (rows cut accordingly), CELL_CHARS characters of a cell, LINE_CHARS characters of a CSV line;
# a workbook's dimension record is ignored and its rows are read as they are in the XML, no
# wider than the header; a Parquet file's footer is checked before a value is read. What was
# not read is said in words (Leaked.cuts).


@dataclass
class Leaked:
    """A leaked file as read: its columns and its rows in canonical form, column by column."""

    name: str
    format: str  # csv | xlsx | parquet
    sha256: str
    size: int
    header: list[str] = field(default_factory=list)
    cells: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0
    truncated: bool = False
    licences: list[str] = field(default_factory=list)  # licence numbers its metadata names
    dropped: list[str] = field(default_factory=list)  # row-number columns a tool added
    encoding: str | None = None
    inner: str | None = None  # the data file read inside an uploaded ZIP
    cuts: list[Message] = field(default_factory=list)  # what was not read, in words
    lossy: list[str] = field(default_factory=list)  # columns Excel showed as 3.71502E+17

    def cut(self, message: Message) -> None:
        if message.source not in {m.source for m in self.cuts}:
            self.cuts.append(message)


def read_leaked(data: bytes, filename: str, depth: int = 0) -> Leaked:
    """CSV (UTF-8 with or without BOM, UTF-16, GBK/GB18030), XLSX (no formula evaluated: cached
    values), Parquet, or a licensed ZIP (its first data file). Raises UnreadableFile with the
    reason — for any file that cannot be read, whatever the reader's error."""
    if len(data) > MAX_BYTES:
        raise UnreadableFile(_("文件超过 %(mb)s MB，无法核查", mb=MAX_BYTES // (1024 * 1024)))
    if not data:
        raise UnreadableFile(_("文件是空的"))
    sha = hashlib.sha256(data).hexdigest()
    try:
        leaked = _read_any(data, filename, sha, depth)
    except UnreadableFile:
        raise
    except (Exception, RecursionError) as exc:  # a reader's own error on a hostile or broken file
        log.warning("leaked file %r (sha256 %s) unreadable", filename, sha, exc_info=True)
        raise UnreadableFile(
            _(
                "文件无法读取（%(error)s）：文件可能已损坏、加密，或不是支持的格式。请另存为 CSV 后再核查",
                error=type(exc).__name__,
            )
        ) from exc
    if not leaked.header:
        raise UnreadableFile(_("文件中没有表格数据"))
    return leaked


def _read_any(data: bytes, filename: str, sha: str, depth: int) -> Leaked:
    if data[:4] == b"PAR1":
        return _read_parquet(data, Leaked(filename, "parquet", sha, len(data)))
    if data[:4] == b"PK\x03\x04":
        return _read_zip(data, filename, sha, depth)
    return _read_csv(data, Leaked(filename, "csv", sha, len(data)))


def _read_zip(data: bytes, filename: str, sha: str, depth: int) -> Leaked:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFile(_("压缩文件已损坏：%(error)s", error=str(exc)[:200])) from exc
    if "xl/workbook.xml" in names:
        return _read_xlsx(data, zf, Leaked(filename, "xlsx", sha, len(data)))
    if depth > 0:
        raise UnreadableFile(_("压缩文件里又是压缩文件：请解压后上传其中的数据文件"))
    inner = next(
        (
            i
            for ext in (".parquet", ".xlsx", ".csv")
            for i in zf.infolist()
            if i.filename.lower().endswith(ext)
        ),
        None,
    )
    if inner is None:
        raise UnreadableFile(_("压缩文件中没有 CSV、XLSX 或 Parquet 数据文件"))
    _check_member(inner)
    try:
        with zf.open(inner) as f:
            content = f.read(MAX_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise UnreadableFile(_("压缩文件已损坏：%(error)s", error=str(exc)[:200])) from exc
    leaked = read_leaked(content, inner.filename, depth + 1)
    leaked.inner, leaked.name, leaked.sha256, leaked.size = inner.filename, filename, sha, len(data)
    return leaked


def _check_member(inner: zipfile.ZipInfo) -> None:
    if inner.flag_bits & 0x1:
        raise UnreadableFile(_("压缩文件已加密：请解密（解压）后上传其中的数据文件"))
    if inner.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
        zipfile.ZIP_BZIP2,
        zipfile.ZIP_LZMA,
    ):
        raise UnreadableFile(_("压缩文件使用了不支持的压缩方式：请解压后上传其中的数据文件"))
    if inner.file_size > MAX_BYTES:
        raise UnreadableFile(_("文件超过 %(mb)s MB，无法核查", mb=MAX_BYTES // (1024 * 1024)))


def _keep_columns(leaked: Leaked, header: Sequence[object]) -> dict[str, int]:
    """The columns read, by name → position: at most MAX_COLUMNS positions; a repeated name kept
    once; a spreadsheet's or pandas' row-number column (no name, "Unnamed: 0",
    "__index_level_0__") set aside."""
    names = [str(h)[:CELL_CHARS].strip().lstrip("\ufeff") if h is not None else "" for h in header]
    while names and not names[-1]:
        names.pop()
    if len(names) > MAX_COLUMNS:
        leaked.cut(_("文件有 %(n)s 列，只读取了前 %(max)s 列", n=len(names), max=MAX_COLUMNS))
        names = names[:MAX_COLUMNS]
    keep: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name or re.fullmatch(r"Unnamed: \d+|__index_level_\d+__", name):
            leaked.dropped.append(name or f"#{i + 1}")
        elif name not in keep:
            keep[name] = i
    return keep


class _Canon:
    """canon() once per distinct value of a file (a value repeated on every row costs once)."""

    def __init__(self, leaked: Leaked) -> None:
        self.leaked = leaked
        self.seen: dict[tuple[type, object], str] = {}

    def __call__(self, value: object) -> str:
        key = (type(value), value)
        found = self.seen.get(key)
        if found is None:
            if isinstance(value, str) and len(value) > CELL_CHARS:
                self.leaked.cut(_("超过 %(n)s 个字符的单元格只比对前 %(n)s 个字符", n=CELL_CHARS))
            found = self.seen[key] = canon(value)
        return found


def _finish(
    leaked: Leaked, header: Sequence[object], rows: Iterable[Sequence[object]], cells: int = MAX_CELLS
) -> Leaked:
    """Header and rows into canonical columns, within the caps; empty rows skipped (after
    EMPTY_RUN of them in a row, the rest is taken to be empty)."""
    keep = _keep_columns(leaked, header)
    at = list(keep.values())
    limit = min(MAX_ROWS, cells // max(len(at), 1))
    columns: list[list[str]] = [[] for _i in at]
    clean = _Canon(leaked)
    count = empty = 0
    for row in rows:
        values = [row[i] if i < len(row) else None for i in at]
        if all(v is None or v == "" for v in values):
            empty += 1
            if empty >= EMPTY_RUN:
                leaked.cut(_("连续 %(n)s 行为空，其后的内容没有读取", n=EMPTY_RUN))
                break
            continue
        if count >= limit:
            leaked.truncated = True
            leaked.cut(
                _(
                    "只读取了前 %(rows)s 行（最多 %(max)s 行、%(cells)s 个单元格）",
                    rows=count,
                    max=MAX_ROWS,
                    cells=f"{cells:,}",
                )
            )
            break
        empty = 0
        for column, v in zip(columns, values, strict=True):
            column.append(clean(v))
        count += 1
    leaked.header, leaked.cells, leaked.rows = list(keep), dict(zip(keep, columns, strict=True)), count
    _mark_lossy(leaked)
    return leaked


_LOSSY = re.compile(r"-?\d(\.\d{1,5})?e\+\d+")  # 3.71502E+17: Excel's General format of a long number


def _mark_lossy(leaked: Leaked) -> None:
    """Columns whose numbers Excel showed (and a CSV saved) with 6 significant digits: their
    digits are lost, so they take no part in finding the rows."""
    for name, values in leaked.cells.items():
        filled = [v for v in values[:1000] if v]
        if filled and sum(1 for v in filled if _LOSSY.fullmatch(v)) * 2 >= len(filled):
            leaked.lossy.append(name)
    if leaked.lossy:
        leaked.cut(
            _(
                "列 %(columns)s 的数字被显示成科学计数（如 3.71502E+17），位数已丢失：这些列不参与行的比对",
                columns="、".join(leaked.lossy),
            )
        )


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnreadableFile(_("无法识别文件的文字编码（支持 UTF-8、UTF-16、GBK/GB18030）"))


def _lines(text: str, leaked: Leaked) -> Iterator[str]:
    """The text's lines, each cut to LINE_CHARS characters (a line of millions of commas is not
    made into millions of cells)."""
    for line in io.StringIO(text, newline=""):
        if len(line) > LINE_CHARS:
            leaked.cut(_("超过 %(n)s 个字符的行只读取了前 %(n)s 个字符", n=LINE_CHARS))
            line = line[:LINE_CHARS] + "\n"
        yield line


def _read_csv(data: bytes, leaked: Leaked) -> Leaked:
    try:
        text, leaked.encoding = _decode(data)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(_("无法识别文件的文字编码（支持 UTF-8、UTF-16、GBK/GB18030）")) from exc
    if "\x00" in text:
        raise UnreadableFile(_("文件不是文本表格（CSV），也不是 XLSX 或 Parquet"))
    first = text[: min(LINE_CHARS, len(text))].split("\n", 1)[0]
    delimiter = max(",\t;|", key=first.count)
    reader = csv.reader(_lines(text, leaked), delimiter=delimiter)
    try:
        header = next(reader, [])
        return _finish(leaked, header, reader)
    except csv.Error as exc:
        raise UnreadableFile(_("CSV 文件无法读取：%(error)s", error=str(exc)[:200])) from exc


def _read_parquet(data: bytes, leaked: Leaked) -> Leaked:
    """The footer first: the columns (the first MAX_COLUMNS), their unpacked size; then only
    those columns, in batches, up to the rows needed; text columns read as dictionaries (a long
    value repeated on every row is held once)."""
    try:
        meta = pq.read_metadata(pa.BufferReader(data))
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UnreadableFile(_("Parquet 文件无法读取：%(error)s", error=str(exc)[:200])) from exc
    names = [str(n) for n in schema.names]
    if len(names) > MAX_COLUMNS:
        leaked.cut(_("文件有 %(n)s 列，只读取了前 %(max)s 列", n=len(names), max=MAX_COLUMNS))
        names = names[:MAX_COLUMNS]
    _check_parquet_size(meta, set(names))
    leaked.licences = sorted(
        set(
            LICENCE_RE.findall((schema.metadata or {}).get(b"licence_number", b"").decode("utf-8", "replace"))
        )
    )
    texts = [
        f.name
        for f in schema
        if f.name in names
        and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type))
    ]
    pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=texts)
    limit = min(MAX_ROWS, MAX_CELLS // max(len(names), 1)) + 1
    return _finish(leaked, names, _parquet_rows(pf, names, limit, _Canon(leaked)))


def _check_parquet_size(meta: pq.FileMetaData, names: set[str]) -> None:
    """The columns to read, unpacked (dictionary pages included), as the footer gives them."""
    unpacked = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.path_in_schema.split(".", 1)[0] in names:
                unpacked += max(chunk.total_uncompressed_size, 0)
    if unpacked > UNPACKED_LIMIT:  # a file that decompresses to gigabytes
        raise UnreadableFile(_("Parquet 文件解压后过大，无法安全读取：请只保留部分行后再核查"))


def _parquet_rows(
    pf: pq.ParquetFile, names: list[str], limit: int, clean: _Canon
) -> Iterator[tuple[str, ...]]:
    read = 0
    size = max(1, min(65_536, MAX_CELLS // max(len(names), 1)))
    for batch in pf.iter_batches(batch_size=size, columns=names):
        columns = []
        for column in batch.columns:
            values, indices = _canon_array(column, clean)
            columns.append([values[i] for i in indices])
        yield from zip(*columns, strict=True)
        read += batch.num_rows
        if read >= limit:
            return


def _read_xlsx(data: bytes, zf: zipfile.ZipFile, leaked: Leaked) -> Leaked:
    """The sheet with the most rows among the first MAX_SHEETS, each read by openpyxl's own
    worksheet parser row by row as the XML has them (the dimension record, which can claim
    16,384 columns and a million rows, is ignored), no wider than its header."""
    from openpyxl import load_workbook

    _check_xlsx_parts(zf)
    leaked.licences = _xlsx_licences(zf)
    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    try:
        budget = [XLSX_CELLS * 2]  # cells parsed, all sheets together
        best = leaked
        for ws in wb.worksheets[:MAX_SHEETS]:
            if not hasattr(ws, "_get_source"):  # a chart sheet
                continue
            read = _finish(_sheet_of(leaked), *_sheet_rows(ws, budget), cells=XLSX_CELLS)
            if read.rows > best.rows or not best.header:
                best = read
    finally:
        wb.close()
    best.licences = leaked.licences
    return best


def _sheet_of(leaked: Leaked) -> Leaked:
    return Leaked(leaked.name, leaked.format, leaked.sha256, leaked.size)


def _check_xlsx_parts(zf: zipfile.ZipFile) -> None:
    parts = zf.infolist()
    shared = next((p for p in parts if p.filename == "xl/sharedStrings.xml"), None)
    if (
        sum(p.file_size for p in parts) > UNPACKED_LIMIT
        or (shared is not None and shared.file_size > SHARED_LIMIT)
        or any(p.file_size > 64 * 1024 * 1024 and p.file_size > 200 * max(p.compress_size, 1) for p in parts)
    ):
        raise UnreadableFile(_("电子表格解压后过大，无法安全读取：请另存为 CSV 后再核查"))
    if any(p.flag_bits & 0x1 for p in parts):
        raise UnreadableFile(_("电子表格已加密：请取消密码保护后再核查"))


def _sheet_rows(ws: Any, budget: list[int]) -> tuple[list[object], Iterator[list[object]]]:
    """The header (the first row with a value) and a generator of the rows after it, each as
    wide as the header (at most MAX_COLUMNS)."""
    parsed = _parsed_rows(ws, budget)
    for cells in parsed:
        filled = [c["column"] for c in cells if c["value"] not in (None, "")]
        if filled:
            width = min(max(filled), MAX_COLUMNS + 1)
            return _widthed(cells, width), (_widthed(c, width) for c in parsed)
    return [], iter([])


def _widthed(cells: list[dict[str, Any]], width: int) -> list[object]:
    row: list[object] = [None] * width
    for cell in cells:
        if cell["column"] <= width:
            row[cell["column"] - 1] = cell["value"]
    return row


def _parsed_rows(ws: Any, budget: list[int]) -> Iterator[list[dict[str, Any]]]:
    """openpyxl's worksheet parser over the sheet's XML (what ReadOnlyWorksheet uses, without
    the filler rows and cells it adds), until the cell budget is spent."""
    from openpyxl.worksheet._reader import WorkSheetParser

    wb = ws.parent
    with ws._get_source() as src:
        parser = WorkSheetParser(
            src,
            ws._shared_strings,
            data_only=True,
            epoch=wb.epoch,
            date_formats=wb._date_formats,
            timedelta_formats=wb._timedelta_formats,
        )
        for _idx, cells in parser.parse():
            budget[0] -= len(cells) or 1
            if budget[0] < 0:
                return
            yield cells


def _xlsx_licences(zf: zipfile.ZipFile) -> list[str]:
    """Licence numbers in the workbook's custom and core document properties."""
    found: set[str] = set()
    for part in ("docProps/custom.xml", "docProps/core.xml"):
        try:
            info = zf.getinfo(part)
        except KeyError:
            continue
        if info.file_size <= 1024 * 1024:
            found |= set(LICENCE_RE.findall(zf.read(info).decode("utf-8", "replace")))
    return sorted(found)


# ---------------------------------------------------------------------- naming the grant

LAYERS = ("bytes", "metadata", "columns", "rows", "scope")


@dataclass
class Evidence:
    layer: str  # one of LAYERS
    verdict: str  # match | partial | none | against
    words: Message | Joined


@dataclass
class Candidate:
    """A grant the leaked file was compared with, and what each layer found."""

    grant: Grant
    item: ApplicationItem | None = None
    certain: bool = False  # the exact bytes were served to this grant
    in_scope: bool = True
    out_of_scope: Joined | None = None  # why not, when not
    found: float | None = None  # the share of the file's rows found in the dataset
    evidence: list[Evidence] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)

    def add(self, layer: str, verdict: str, words: Message | Joined, points: int = 0) -> None:
        self.evidence = [e for e in self.evidence if e.layer != layer] + [Evidence(layer, verdict, words)]
        self.scores[layer] = points

    @property
    def points(self) -> int:
        return sum(self.scores.values())

    @property
    def structural(self) -> int:
        """What the column order and the row order say: the layers no one can forge for another
        grant. Metadata (anyone can write a licence number in) only adds to them."""
        return self.scores.get("columns", 0) + self.scores.get("rows", 0)

    @property
    def confidence(self) -> str:
        """certain (the bytes) | strong (two layers or more agree) | likely (one) | none."""
        if self.certain:
            return "certain"
        if not self.in_scope or not self.structural:
            return "none"
        return "strong" if self.points >= 4 else "likely" if self.points >= 2 else "none"

    @property
    def named(self) -> bool:
        return self.confidence != "none"

    @property
    def layers(self) -> list[Evidence]:
        return sorted(self.evidence, key=lambda e: LAYERS.index(e.layer))

    @property
    def agreeing(self) -> list[Message]:
        """The structural layers that agree, in words."""
        words = {"columns": _("列顺序"), "rows": _("行顺序")}
        return [words[k] for k in ("columns", "rows") if self.scores.get(k)]


@dataclass
class Finding:
    """What the bureau's page shows: the file as read, the grants it names (strongest first),
    how many grants it was compared with, and notes."""

    sha256: str
    leaked: Leaked | None
    named: list[Candidate]
    compared: int
    notes: list[Message] = field(default_factory=list)


def identify(session: Session, storage: Storage, data: bytes, filename: str) -> Finding:
    """The grant(s) a leaked file came from, with the evidence of each layer. A file whose exact
    bytes were served is answered from that at once (nothing parsed); any other file is read
    (UnreadableFile when it cannot be) and compared."""
    sha = hashlib.sha256(data).hexdigest()
    served = session.scalars(select(LicensedFileHash).where(LicensedFileHash.sha256 == sha)).all()
    if served:
        return _by_bytes(session, sha, served)
    leaked = read_leaked(data, filename)
    candidates: dict[int, Candidate] = {}
    notes: list[Message] = []
    _compare(session, _Sources(storage, leaked), candidates, notes)
    for c in candidates.values():
        c.add("bytes", "none", _("与提供过的文件不完全相同（已改动、另存或重新排序）"))
    named = sorted((c for c in candidates.values() if c.named), key=lambda c: -c.points)
    notes += _not_named(candidates.values())
    return Finding(sha, leaked, named, len(candidates), notes)


def _by_bytes(session: Session, sha: str, served: Sequence[LicensedFileHash]) -> Finding:
    candidates: dict[int, Candidate] = {}
    for h in served:
        c = candidates.setdefault(h.grant_id, Candidate(h.grant, session.get(ApplicationItem, h.item_id)))
        c.certain = True
        c.add(
            "bytes",
            "match",
            _("与 %(when)s 向该授权提供的 %(name)s 逐字节相同", when=_beijing(h.created_at), name=h.name),
        )
    return Finding(sha, None, list(candidates.values()), len(candidates))


def _not_named(candidates: Iterable[Candidate]) -> list[Message]:
    """Why a grant whose column order, row order or metadata agrees with the file is not named:
    by name, unless the file's rows are hardly in the dataset at all (then it is not this
    dataset's file, and a grant's name on the page would only mislead)."""
    notes: list[Message] = []
    unrelated = 0
    for c in candidates:
        if c.named:
            continue
        if not c.in_scope and c.structural and c.out_of_scope is not None:
            if c.found is not None and c.found < UNRELATED:
                unrelated += 1
                continue
            notes.append(
                _(
                    "授权 %(number)s 的%(layers)s与文件相符，但没有认定：%(why)s",
                    number=c.grant.licence_number,
                    layers=Joined.between(_("和"), c.agreeing),
                    why=c.out_of_scope,
                )
            )
        elif c.scores.get("metadata"):
            notes.append(
                _(
                    "文件的元数据写有授权编号 %(number)s，但列顺序和行顺序都不指向该授权：元数据可被任何人改写，不单独认定",
                    number=c.grant.licence_number,
                )
            )
    if unrelated:
        notes.append(
            _(
                "另有 %(count)s 个授权的列顺序或行顺序与文件相符，但文件的行几乎都不在其数据集中：文件不是来自该数据集，不予认定",
                count=unrelated,
            )
        )
    return notes


def _beijing(moment: dt.datetime) -> str:
    return clock.local(moment).strftime("%Y-%m-%d %H:%M")


class _Sources:
    """The datasets' own rows, read once per question: is a leaked row in the data, and what is
    its row key under a grant's seed when the file lacks some of the grant's columns."""

    def __init__(self, storage: Storage, leaked: Leaked) -> None:
        self.storage = storage
        self.leaked = leaked
        self._found: dict[tuple[int, tuple[str, ...]], float | None] = {}
        self.pairs, self.sorted_by = _informative_pairs(leaked)

    def tables(self, dataset: Dataset, columns: Sequence[str]) -> Iterable[pa.Table]:
        """Every stored version's tables that hold these columns (the current version first)."""
        versions = sorted(
            (d for d in dataset.distributions if d.purged_at is None),
            key=lambda d: d.superseded_at is not None,
        )
        for table in (t for d in versions for t in d.tables):
            if set(columns) <= {f["name"] for f in table.schema}:
                try:
                    yield pq.read_table(self.storage.local_path(table.parquet_path), columns=list(columns))
                except (OSError, pa.ArrowException):
                    continue

    def found(self, dataset: Dataset, known: Sequence[str]) -> float | None:
        """The share of the leaked rows found in the dataset's data (on the columns they share)."""
        key = (dataset.id, tuple(sorted(known)))
        if key not in self._found:
            leaked = cells_row_keys(self.leaked.cells, known, FOUND_KEY, self.leaked.rows)
            best: float | None = None
            for table in self.tables(dataset, known):
                share = (
                    float(np.isin(leaked, table_row_keys(table, known, FOUND_KEY)).mean())
                    if len(leaked)
                    else 0.0
                )
                best = share if best is None else max(best, share)
            self._found[key] = best
        return self._found[key]

    def row_keys(
        self, dataset: Dataset, mark: LicensedFileMark, known: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each leaked row's key under the mark's seed, and whether it is known: computed from
        the row itself when the file has all the grant's columns, else from the dataset's row it
        matches (a row matching several rows of different content is left out)."""
        seed = bytes.fromhex(mark.row_seed)
        rows = self.leaked.rows
        if set(mark.column_order) <= set(known):
            return cells_row_keys(self.leaked.cells, mark.column_order, seed, rows), np.ones(rows, dtype=bool)
        mapping: dict[int, int] = {}
        ambiguous: set[int] = set()
        for table in self.tables(dataset, mark.column_order):
            projected = table_row_keys(table, known, FOUND_KEY).tolist()
            keys = table_row_keys(table, mark.column_order, seed).tolist()
            for p, k in zip(projected, keys, strict=True):
                if mapping.setdefault(p, k) != k:
                    ambiguous.add(p)
        leaked = cells_row_keys(self.leaked.cells, known, FOUND_KEY, rows).tolist()
        valid = np.array([p in mapping and p not in ambiguous for p in leaked], dtype=bool)
        return np.array([mapping.get(p, 0) for p in leaked], dtype=np.uint64), valid


def _informative_pairs(leaked: Leaked) -> tuple[np.ndarray, list[str]]:
    """Which adjacent row pairs still carry the served order, and the columns the file was
    sorted by. A sort (by any collation — Excel sorts Chinese by pinyin) leaves each value of its
    column in one run; a stable sort keeps the order within the run. Columns found that way,
    level by level (a sort by two columns: the second runs within the first's), decide: only
    pairs equal on all of them count. No such column: every pair counts."""
    same = np.ones(max(leaked.rows - 1, 0), dtype=bool)
    codes = {c: _codes(leaked.cells[c]) for c in leaked.header}
    chosen: list[str] = []
    for _level in range(3):
        added = [c for c in leaked.header if c not in chosen and _in_runs(codes[c], same)]
        if not added:
            break
        chosen += added
        for c in added:
            same &= codes[c][1:] == codes[c][:-1]
    return same, chosen


def _codes(values: Sequence[str]) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(v, len(ids)) for v in values], dtype=np.int64)


def _in_runs(codes: np.ndarray, within: np.ndarray) -> bool:
    """Inside each block of `within` (adjacent pairs in the same block), every value of the
    column is in one run, the column has ties (at least three equal adjacent pairs: a column
    without them says nothing) and it varies somewhere."""
    if len(codes) < 4:
        return False
    ties = within & (codes[1:] == codes[:-1])
    if int(ties.sum()) < 3 or not (within & (codes[1:] != codes[:-1])).any():
        return False
    starts = np.concatenate(([True], ~ties))
    block = np.concatenate(([0], np.cumsum(~within)))
    runs = block[starts] * (int(codes.max()) + 1) + codes[starts]
    return len(np.unique(runs)) == int(starts.sum())


def _compare(
    session: Session, sources: _Sources, candidates: dict[int, Candidate], notes: list[Message]
) -> None:
    """Every grant whose marks share columns with the file (or whose licence number the file's
    metadata names) is assessed on layers 2–5."""
    leaked = sources.leaked
    header = set(leaked.header)
    named_in_file = set(leaked.licences)
    marks = session.scalars(select(LicensedFileMark).order_by(LicensedFileMark.id)).all()
    best: dict[int, tuple[int, LicensedFileMark]] = {}
    for mark in marks:
        overlap = len(header & set(mark.column_order))
        relevant = overlap >= min(2, len(mark.column_order)) or mark.grant.licence_number in named_in_file
        if relevant and overlap >= best.get(mark.grant_id, (-1, mark))[0]:
            best[mark.grant_id] = (overlap, mark)
    by_dataset: dict[int, list[LicensedFileMark]] = {}
    for mark in marks:
        by_dataset.setdefault(mark.dataset_id, []).append(mark)
    for _overlap, mark in best.values():
        c = candidates.setdefault(mark.grant_id, Candidate(mark.grant, mark.item))
        c.item = c.item or mark.item
        _assess(sources, c, mark, by_dataset[mark.dataset_id])
    _metadata_only(session, leaked, candidates, notes)


def _metadata_only(
    session: Session, leaked: Leaked, candidates: dict[int, Candidate], notes: list[Message]
) -> None:
    """A licence number the metadata names whose grant had no file compared (its columns differ):
    said, never named on that alone."""
    compared = {c.grant.licence_number for c in candidates.values()}
    for number in leaked.licences:
        if number not in compared:
            grant = session.scalar(select(Grant).where(Grant.licence_number == number))
            notes.append(
                _(
                    "文件的元数据写有授权编号 %(number)s，但该授权没有提供过与本文件列相符的文件：元数据可被任何人改写，不单独认定",
                    number=number,
                )
                if grant
                else _("文件的元数据写有授权编号 %(number)s，但没有这个授权", number=number)
            )


def _assess(
    sources: _Sources, c: Candidate, mark: LicensedFileMark, siblings: list[LicensedFileMark]
) -> None:
    leaked = sources.leaked
    columns = set(mark.column_order)
    known = [h for h in leaked.header if h in columns]
    usable = [h for h in known if h not in leaked.lossy]  # the rows are compared on these
    _layer_metadata(c, leaked)
    _layer_columns(c, mark, known, siblings)
    _layer_rows(sources, c, mark, usable)
    _layer_scope(sources, c, mark, known, usable)


def _layer_metadata(c: Candidate, leaked: Leaked) -> None:
    number = c.grant.licence_number
    if number in leaked.licences:
        c.add(
            "metadata",
            "match",
            _(
                "文件内嵌的元数据写明授权编号 %(number)s（元数据可被任何人改写，只作为列顺序或行顺序证据的补充）",
                number=number,
            ),
            2,
        )
    elif leaked.licences:
        c.add(
            "metadata",
            "against",
            _("文件内嵌的元数据写的是另一授权编号 %(numbers)s", numbers="、".join(leaked.licences)),
        )
    else:
        c.add("metadata", "none", _("文件没有授权编号元数据（CSV 没有元数据；另存为新文件时会丢失）"))


def _layer_columns(
    c: Candidate, mark: LicensedFileMark, known: list[str], siblings: list[LicensedFileMark]
) -> None:
    """The column order counts only when a file in some other order is unlikely to match one of
    the dataset's grants by chance: n columns have n! orders; with g grants of the dataset, a
    chance of about g / n! (≤ CHANCE)."""
    if len(known) < 2:
        c.add("columns", "none", _("可比对的列少于 2 列，列顺序无从比对"))
        return
    wanted = set(known)
    if [x for x in mark.column_order if x in wanted] != known:
        c.add("columns", "none", _("列的顺序与该授权的文件不同（也可能被重新排列过）"))
        return
    holding = [m for m in siblings if wanted <= set(m.column_order)]
    grants = len({m.grant_id for m in holding} | {mark.grant_id})
    others = {
        m.grant_id
        for m in holding
        if m.grant_id != mark.grant_id and [x for x in m.column_order if x in wanted] == known
    }
    orders = math.factorial(len(known))
    weak = grants / orders > CHANCE
    words = dict(n=len(known), orders=_count(orders), grants=grants, odds=_odds(orders, grants))
    if others:
        c.add(
            "columns",
            "partial",
            _(
                "列的顺序与该授权的文件一致，但本数据集另有 %(count)s 个授权的文件也是这个顺序（%(n)s 列只有 %(orders)s 种顺序）：列顺序不能区分它们",
                count=len(others),
                **words,
            ),
            0 if weak else 1,
        )
    elif weak:
        c.add(
            "columns",
            "partial",
            _(
                "%(n)s 列的顺序与该授权的文件一致，但 %(n)s 列只有 %(orders)s 种顺序，本数据集有 %(grants)s 个授权的文件，任意一种顺序巧合相符的机会约为 %(odds)s：不足以作为证据",
                **words,
            ),
        )
    else:
        c.add(
            "columns",
            "match",
            _(
                "%(n)s 列的顺序与该授权的文件一致（共 %(orders)s 种顺序；本数据集 %(grants)s 个授权的文件中只有它是这个顺序，巧合相符的机会约为 %(odds)s）",
                **words,
            ),
            2,
        )


def _count(number: int) -> str:
    return f"{number:,}" if number < 10**12 else f"10^{len(str(number)) - 1}"


def _odds(orders: int, grants: int) -> str:
    """The chance that an order picked at random is one of `grants` orders among `orders`."""
    return "1/" + _count(max(1, round(orders / grants))) if grants < orders else "1/1"


def _layer_rows(sources: _Sources, c: Candidate, mark: LicensedFileMark, known: list[str]) -> None:
    if not known:
        c.add("rows", "none", _("没有可比对的列"))
        return
    keys, valid = sources.row_keys((c.item or mark.item).dataset, mark, known)
    pairs = sources.pairs & valid[1:] & valid[:-1] & (keys[1:] != keys[:-1])
    total = int(pairs.sum())
    sorted_by = (
        _("（文件按 %(columns)s 排序过，只比对这些列取值相同的相邻行）", columns="、".join(sources.sorted_by))
        if sources.sorted_by
        else _("（文件未见按某列排序）")
    )
    if total < 10:
        c.add(
            "rows",
            "none",
            _("可比对的相邻行太少（%(pairs)s 对），无法判断行顺序%(sorted)s", pairs=total, sorted=sorted_by),
        )
        return
    agree = int((pairs & (keys[:-1] < keys[1:])).sum())
    share = agree / total
    z = abs(2 * agree - total) / math.sqrt(total)
    words = dict(pairs=total, share=f"{share:.1%}", sorted=sorted_by)
    if z >= 6 and max(share, 1 - share) >= 0.9:
        c.add(
            "rows",
            "match",
            _(
                "相邻行的先后与该授权的文件一致：%(pairs)s 对中 %(share)s（其他授权约为一半）%(sorted)s",
                **words,
            )
            if share >= 0.5
            else _(
                "相邻行的先后与该授权的文件恰好相反：%(pairs)s 对中只有 %(share)s 一致（整体倒序）%(sorted)s",
                **words,
            ),
            2,
        )
    elif z >= 4 and max(share, 1 - share) >= 0.75:
        c.add(
            "rows",
            "partial",
            _("相邻行的先后部分与该授权的文件一致：%(pairs)s 对中 %(share)s %(sorted)s", **words),
            1,
        )
    else:
        c.add(
            "rows",
            "none",
            _("相邻行的先后与该授权的文件无关：%(pairs)s 对中 %(share)s，接近随机的一半%(sorted)s", **words),
        )


def _layer_scope(
    sources: _Sources, c: Candidate, mark: LicensedFileMark, known: list[str], usable: list[str]
) -> None:
    """The file is within what the grant could have given: columns, rows, and the dataset's data
    (at least IN_DATASET of its rows found: an edited file, a few rows added, still counts)."""
    leaked = sources.leaked
    dataset = (c.item or mark.item).dataset
    in_dataset = {f["name"] for d in dataset.distributions for t in d.tables for f in t.schema}
    c.found = sources.found(dataset, usable) if usable else None
    found = _(
        "%(share)s 的行可在数据集《%(title)s》（含历史版本）中找到",
        share=f"{c.found or 0:.0%}",
        title=dataset.title,
    )
    problems = _scope_problems(leaked, c, mark, known, in_dataset)
    if usable and (c.found or 0) < IN_DATASET:
        problems.append(_("%(found)s，不足一半", found=found))
    if problems:
        c.in_scope = False
        c.out_of_scope = Joined.between(_("；"), problems)
        c.add("scope", "against", c.out_of_scope)
        return
    unknown = [h for h in leaked.header if h not in in_dataset]
    c.add(
        "scope",
        "match",
        _("在授权范围内：列都是授权字段，行符合授权的行范围，%(found)s", found=found)
        if not unknown
        else _(
            "在授权范围内：%(found)s；另有数据集中没有的列 %(columns)s（可能是后加的）",
            found=found,
            columns="、".join(unknown),
        ),
    )


def _scope_problems(
    leaked: Leaked, c: Candidate, mark: LicensedFileMark, known: list[str], in_dataset: set[str]
) -> list[Message]:
    outside = [h for h in leaked.header if h in in_dataset and h not in set(mark.column_order)]
    problems: list[Message] = []
    if not known:
        problems.append(_("文件没有一列在该授权的字段中"))
    if outside:
        problems.append(_("文件含授权字段以外的列：%(columns)s", columns="、".join(outside)))
    for column, allowed in ((c.item or mark.item).row_filter or {}).items():
        if column in leaked.cells:
            wanted = {canon(a) for a in allowed}
            bad = sum(1 for v in leaked.cells[column] if v not in wanted)
            if bad > leaked.rows // 100:
                problems.append(_("%(count)s 行不在授权的行范围内（%(column)s）", count=bad, column=column))
    return problems
