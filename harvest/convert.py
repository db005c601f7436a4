"""Data files → Parquet and UTF-8 CSV, streaming: memory does not grow with the file.

CSV is read with pyarrow's streaming reader (open_csv) and written with one ParquetWriter;
batches are gathered until about `row_group_bytes` are buffered and then written as one row
group, because a row group per small batch makes hundreds of tiny groups and a larger file.
Workbooks are streamed sheet by sheet through openpyxl's read-only mode into a UTF-8 CSV,
which then takes the CSV path.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Small blocks keep the reader's read-ahead small: with 8 MB blocks peak memory doubled (measured).
BLOCK_SIZE = 1 << 20
# Arrow bytes gathered per row group: ~15 MB groups on disk. Larger groups make a slightly
# smaller file (fewer dictionaries) but cost memory; see benchmarks/harvest.py.
DEFAULT_ROW_GROUP_BYTES = 56 << 20
# pyarrow's own default row-group length; a row group never holds more rows than this.
MAX_ROW_GROUP_ROWS = 1 << 20


class ConversionError(Exception):
    """A data file that cannot be read; the message is shown to the department."""


@dataclass
class TableInfo:
    sheet: str | None
    parquet: Path
    csv: Path
    row_count: int
    schema: list[dict]
    encoding: str | None = None
    skipped_rows: int = 0


# --------------------------------------------------------------------------- encodings

def detect_encoding(path: Path, sample_size: int = 1 << 20) -> str:
    """'utf-8-sig', 'utf-8' or 'gb18030' (which reads GBK and GB2312 too).

    A sample is enough to choose; if a later part of the file disagrees, the reader's
    UTF-8 check fails and convert_csv retries with gb18030.
    """
    with open(path, "rb") as f:
        sample = f.read(sample_size)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ConversionError("无法识别文本编码（支持 UTF-8、GBK、GB18030） / unknown text encoding")


def transcode_to_utf8(src: Path, dest: Path, encoding: str, chunk: int = 4 << 20) -> None:
    """Copy a text file as UTF-8 without a BOM, a chunk at a time."""
    if encoding == "utf-8":
        shutil.copyfile(src, dest)
        return
    decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8-sig" else encoding)()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while block := fin.read(chunk):
            fout.write(decoder.decode(block).encode("utf-8"))
        fout.write(decoder.decode(b"", final=True).encode("utf-8"))


# --------------------------------------------------------------------------- CSV

_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_LONG_DIGITS = re.compile(r"^\d{11,}$")


def _identifier_columns(path: Path, encoding: str, delimiter: str) -> list[str]:
    """Columns that must stay text: codes with leading zeros ('0635', '001') and long digit
    strings (ID card, mobile, account numbers) which type inference would turn into integers,
    dropping zeros or precision."""
    keep: set[str] = set()
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            return []
        for i, row in enumerate(reader):
            if i >= 2000:
                break
            for name, value in zip(header, row, strict=False):
                v = value.strip()
                if _LEADING_ZERO.match(v) or _LONG_DIGITS.match(v):
                    keep.add(name)
    return sorted(keep)


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        first = f.readline()
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


_BAD_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")


def convert_csv(src: Path, parquet_out: Path, csv_out: Path, *, encoding: str | None = None,
                row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES, sheet: str | None = None,
                csv_is_utf8_copy: bool = False, metadata: dict[str, str] | None = None) -> TableInfo:
    """Convert one CSV file. `csv_out` receives the file as UTF-8 (unless the caller already
    made src a UTF-8 file and says so with csv_is_utf8_copy, then src is moved there)."""
    info = csv_to_parquet(src, parquet_out, encoding=encoding, row_group_bytes=row_group_bytes,
                          metadata=metadata)
    if csv_is_utf8_copy:
        shutil.move(str(src), csv_out)
    else:
        transcode_to_utf8(src, csv_out, info.encoding)
    info.csv, info.sheet = csv_out, sheet
    return info


def csv_to_parquet(src: Path, out: Path, *, encoding: str | None = None,
                   row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES, metadata: dict[str, str] | None = None) -> TableInfo:
    """`metadata` goes into the Parquet file's key-value metadata (the attribution)."""
    encoding = encoding or detect_encoding(src)
    try:
        info = _csv_to_parquet(src, out, encoding, row_group_bytes, metadata)
    except _NotUtf8:
        encoding = "gb18030"
        info = _csv_to_parquet(src, out, encoding, row_group_bytes, metadata)
    info.encoding = encoding
    return info


class _NotUtf8(Exception):
    pass


def _csv_to_parquet(src: Path, out: Path, encoding: str, row_group_bytes: int, metadata: dict | None) -> TableInfo:
    delimiter = _sniff_delimiter(src, encoding)
    text_columns = _identifier_columns(src, encoding, delimiter)
    # pyarrow decodes UTF-8 natively; other encodings go through a Python transcoding stream.
    arrow_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    forced: dict[str, pa.DataType] = {name: pa.string() for name in text_columns}
    for _attempt in range(64):
        try:
            return _write_parquet(src, out, arrow_encoding, delimiter, forced, row_group_bytes, metadata)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "UTF8" in message and arrow_encoding == "utf8":
                raise _NotUtf8 from exc
            bad = _BAD_COLUMN.search(message)
            if not bad:
                raise ConversionError(f"CSV 无法解析 / cannot parse CSV: {message[:300]}") from exc
            # Types are inferred from the first block; a later value that does not fit
            # (e.g. '暂无' in a number column) makes that column text, and we read again.
            forced[_column_names(src, arrow_encoding, delimiter)[int(bad.group(1))]] = pa.string()
    raise ConversionError("CSV 列类型无法确定 / column types could not be settled")


def _column_names(src: Path, encoding: str, delimiter: str) -> list[str]:
    reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 16),
                            parse_options=pacsv.ParseOptions(delimiter=delimiter))
    return reader.schema.names


def _write_parquet(src, out, encoding, delimiter, forced, row_group_bytes, metadata) -> TableInfo:  # noqa: ANN001
    skipped = 0

    def skip_row(_row) -> str:  # noqa: ANN001
        # A row with the wrong number of fields is left out and counted, not fatal.
        nonlocal skipped
        skipped += 1
        return "skip"

    reader = pacsv.open_csv(
        src,
        read_options=pacsv.ReadOptions(encoding=encoding, block_size=BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False,
                                         invalid_row_handler=skip_row),
        convert_options=pacsv.ConvertOptions(column_types=forced, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )
    schema = reader.schema
    if not schema.names or all(not n.strip() for n in schema.names):
        raise ConversionError("CSV 没有表头 / the CSV has no header row")
    try:
        first = reader.read_next_batch()
    except StopIteration:
        first = None
    tmp = out.with_name(out.name + ".part")
    rows = 0
    file_schema = schema.with_metadata(metadata) if metadata else schema
    with pq.ParquetWriter(tmp, file_schema, compression="snappy", use_dictionary=_dictionary_columns(first)) as writer:
        pending: list[pa.RecordBatch] = []
        pending_bytes = pending_rows = 0
        for batch in itertools.chain([first] if first is not None else [], reader):
            pending.append(batch)
            pending_bytes += batch.nbytes
            pending_rows += batch.num_rows
            if pending_bytes >= row_group_bytes or pending_rows >= MAX_ROW_GROUP_ROWS:
                rows += _flush(writer, schema, pending)
                pending, pending_bytes, pending_rows = [], 0, 0
        rows += _flush(writer, schema, pending)
    tmp.replace(out)
    return TableInfo(sheet=None, parquet=out, csv=out, row_count=rows, schema=schema_of(schema),
                     skipped_rows=skipped)


def _dictionary_columns(sample: pa.RecordBatch | None) -> list[str] | bool:
    """Dictionary-encode the columns that repeat values in the first batch. A column that is
    (nearly) unique there — record ids, licence numbers, coordinates — only pays for a
    dictionary Parquet abandons at 1 MB: skipping it made conversion ~20% faster and the file
    smaller than pyarrow's defaults (benchmarks/harvest.py)."""
    if sample is None or sample.num_rows < 100:
        return True
    return [field.name for field, column in zip(sample.schema, sample.columns, strict=True)
            if pc.count_distinct(column).as_py() < 0.97 * sample.num_rows]


def _flush(writer: pq.ParquetWriter, schema: pa.Schema, batches: list[pa.RecordBatch]) -> int:
    if not batches:
        return 0
    table = pa.Table.from_batches(batches, schema=schema)
    # One row group for everything gathered (row_group_size caps rows per group).
    writer.write_table(table, row_group_size=max(table.num_rows, 1))
    return table.num_rows


def schema_of(schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


# --------------------------------------------------------------------------- XLSX

def convert_xlsx(src: Path, workdir: Path, *, row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
                 metadata: dict[str, str] | None = None) -> list[TableInfo]:
    """Every non-empty sheet becomes a table."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # A file object, not a path: openpyxl refuses paths without an .xlsx suffix.
    handle = open(src, "rb")  # noqa: SIM115 (closed in finally)
    try:
        wb = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        handle.close()
        raise ConversionError(f"电子表格已损坏或不是 XLSX 文件 / corrupt or not an XLSX workbook: {exc}") from exc
    tables: list[TableInfo] = []
    try:
        for position, ws in enumerate(wb.worksheets):
            sheet_csv = workdir / f"sheet-{position}.csv"
            if not _sheet_to_csv(ws, sheet_csv):
                sheet_csv.unlink(missing_ok=True)
                continue
            info = convert_csv(sheet_csv, workdir / f"table-{position}.parquet",
                               workdir / f"table-{position}.csv", encoding="utf-8",
                               row_group_bytes=row_group_bytes, sheet=ws.title, csv_is_utf8_copy=True,
                               metadata=metadata)
            tables.append(info)
    except zipfile.BadZipFile as exc:
        raise ConversionError(f"电子表格已损坏 / corrupt workbook: {exc}") from exc
    finally:
        wb.close()
        handle.close()
    if not tables:
        raise ConversionError("电子表格中没有数据 / the workbook has no data")
    return tables


def _sheet_to_csv(ws, dest: Path) -> bool:  # noqa: ANN001
    """Write a sheet as UTF-8 CSV; trailing empty rows and columns are dropped."""
    width = 0
    wrote = False
    with open(dest, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        for row in ws.iter_rows(values_only=True):
            values = [_cell_text(v) for v in row]
            while values and values[-1] == "":
                values.pop()
            if not values:
                continue
            if not wrote:
                width = len(values)
            values = (values + [""] * width)[:width]
            writer.writerow(values)
            wrote = True
    return wrote


def _cell_text(value) -> str:  # noqa: ANN001
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
