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
import io
import itertools
import queue
import re
import shutil
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from portal.messages import _

from .layout import LOOK_AHEAD, Layout, find_layout, is_note, width_of
from .pii import TableScanner, mask_batch, scan_text

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

# Small blocks keep the reader's read-ahead small: with 8 MB blocks peak memory doubled (measured).
BLOCK_SIZE = 1 << 20
# Arrow bytes gathered per row group: ~10 MB groups on disk. Larger groups make a slightly
# smaller file (fewer dictionaries) but cost memory; 56 MB was the choice until the scan ran
# beside the conversion, whose buffers took the peak past 300 MB (benchmarks/harvest.py).
DEFAULT_ROW_GROUP_BYTES = 40 << 20
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
    # Personal information found in the rows (harvest.pii.Finding), per column.
    findings: list = field(default_factory=list)
    # Why the table cannot be published as it is: [{"code": "bad_rows"|"empty"|"beyond_header",
    # "rows": [line numbers], ...}]. Any problem holds the dataset.
    problems: list[dict] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # title rows above the header, notes below
    header_rows: int = 1
    csv_written: bool = False  # the public CSV was written from the rows read
    scan_seconds: float = 0.0  # time spent in the personal-information scan (benchmarks/harvest.py)


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
    raise ConversionError(_("无法识别文本编码（支持 UTF-8、GBK、GB18030）"))


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
HEAD_BYTES = 1 << 18  # read to find the header (title rows, two-row headers)
TAIL_BYTES = 1 << 14  # read to find notes below the table
MAX_BAD_ROWS_LISTED = 20


def _identifier_columns(rows: list[list[str]], names: list[str]) -> list[str]:
    """Columns that must stay text: codes with leading zeros ('0635', '001') and long digit
    strings (ID card, mobile, account numbers) which type inference would turn into integers,
    dropping zeros or precision."""
    keep: set[str] = set()
    for row in rows[:2000]:
        for name, value in zip(names, row, strict=False):
            v = value.strip()
            if _LEADING_ZERO.match(v) or _LONG_DIGITS.match(v):
                keep.add(name)
    return sorted(keep)


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter most lines agree on (the first line may be a title with none)."""
    best, best_score = ",", 0
    for d in (",", "\t", ";", "|"):
        counts = Counter(line.count(d) for line in lines[:30] if line.strip())
        counts.pop(0, None)
        score = max(counts.values(), default=0) * 100 + max(counts, default=0)
        if score > best_score:
            best, best_score = d, score
    return best


@dataclass
class _Head:
    """What the first and last bytes of a CSV file say: delimiter, header, notes."""

    delimiter: str
    layout: Layout
    data_offset: int  # byte offset of the first data row
    data_end: int | None  # byte offset where notes below the table start (None: end of file)
    notes: list[str]
    sample: list[list[str]]  # the first data rows, for type decisions


def _read_head(src: Path, encoding: str) -> _Head:
    size = src.stat().st_size
    with open(src, "rb") as f:
        head = f.read(HEAD_BYTES)
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    codec = "utf-8-sig" if encoding == "utf-8-sig" else encoding
    physical = head.split(b"\n")
    if len(head) == HEAD_BYTES and len(physical) > 1:
        physical = physical[:-1]  # the last line may be cut
    text_lines = [line.decode(codec, errors="replace") for line in physical]
    delimiter = _sniff_delimiter(text_lines)
    if b"\n" not in head and b"\r" in head:
        raise ConversionError(_("文件只用 CR 作换行符（旧版 Mac 格式），无法按行读取：请另存为 UTF-8 CSV"))
    reader = csv.reader(io.StringIO("\n".join(text_lines)), delimiter=delimiter)
    rows, ends = [], []  # ends[i]: physical lines consumed after record i
    try:
        for row in reader:
            rows.append(row)
            ends.append(reader.line_num)
            if len(rows) >= 2050:
                break
    except csv.Error as exc:
        raise ConversionError(_("CSV 无法解析（第 %(line_num)s 行）", line_num=reader.line_num)) from exc
    layout = find_layout(rows)
    if layout is None:
        raise ConversionError(_("数据文件是空的"))
    consumed = ends[layout.data_index - 1]
    data_offset = sum(len(line) + 1 for line in physical[:consumed])
    notes, data_end = _notes_below(tail, size, codec, delimiter, layout.width, data_offset)
    return _Head(delimiter, layout, min(data_offset, size), data_end, notes, rows[layout.data_index :])


def _notes_below(
    tail: bytes, size: int, codec: str, delimiter: str, width: int, data_offset: int
) -> tuple[list[str], int | None]:
    lines = tail.split(b"\n")
    notes: list[str] = []
    end = size
    for line in reversed(lines[1:] if size > len(tail) else lines):
        text = line.decode(codec, errors="replace")
        if not text.strip(" \r\t" + delimiter):
            end -= len(line) + 1
            continue
        row = next(csv.reader([text.rstrip("\r")], delimiter=delimiter), [])
        if not is_note(row, width):
            break
        notes.insert(0, " ".join(c.strip() for c in row if c.strip()))
        end -= len(line) + 1
    if not notes or end <= data_offset:
        return [], None
    return notes, max(end, data_offset)


class _Bounded(io.RawIOBase):
    """A file read from `start` to `end` only (the table without the notes below it)."""

    def __init__(self, path: Path, start: int, end: int | None) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 (closed with this object)
        self.f.seek(start)
        self.left = None if end is None else end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self.left is not None and self.left <= 0:
            return 0
        view = memoryview(buffer)
        if self.left is not None:
            view = view[: self.left]
        n = self.f.readinto(view)
        if self.left is not None:
            self.left -= n
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


_BAD_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")


def convert_csv(
    src: Path,
    parquet_out: Path,
    csv_out: Path,
    *,
    encoding: str | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    sheet: str | None = None,
    csv_is_utf8_copy: bool = False,
    metadata: dict[str, str] | None = None,
    masking: dict | None = None,
) -> TableInfo:
    """Convert one CSV file into Parquet and the public UTF-8 CSV, scanning every row on the
    way. The public CSV is the department's file as UTF-8 when the table was read whole as
    written (header on the first line, every row parsed, nothing masked); otherwise it is
    written from the rows that were read and scanned, so it never holds a row the scan did
    not see (csv_is_utf8_copy: src is already such a UTF-8 copy and is moved there)."""
    info = csv_to_parquet(
        src,
        parquet_out,
        encoding=encoding,
        row_group_bytes=row_group_bytes,
        metadata=metadata,
        masking=masking,
        csv_out=csv_out,
    )
    if not info.csv_written:
        if csv_is_utf8_copy:
            shutil.move(str(src), csv_out)
        else:
            assert info.encoding is not None  # csv_to_parquet read it with one
            transcode_to_utf8(src, csv_out, info.encoding)
    info.csv, info.sheet = csv_out, sheet
    return info


def csv_to_parquet(
    src: Path,
    out: Path,
    *,
    encoding: str | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    metadata: dict[str, str] | None = None,
    masking: dict | None = None,
    csv_out: Path | None = None,
) -> TableInfo:
    """`metadata` goes into the Parquet file's key-value metadata (the attribution). With
    csv_out, a CSV is written from the rows read whenever the file cannot be served as it is."""
    encoding = encoding or detect_encoding(src)
    try:
        info = _csv_to_parquet(src, out, encoding, row_group_bytes, metadata, masking, csv_out)
    except _NotUtf8:
        encoding = "gb18030"
        info = _csv_to_parquet(src, out, encoding, row_group_bytes, metadata, masking, csv_out)
    info.encoding = encoding
    return info


class _NotUtf8(Exception):
    pass


def _csv_to_parquet(
    src: Path,
    out: Path,
    encoding: str,
    row_group_bytes: int,
    metadata: dict | None,
    masking: dict | None,
    csv_out: Path | None,
) -> TableInfo:
    head = _read_head(src, encoding)
    layout = head.layout
    text_columns = _identifier_columns(head.sample, layout.names)
    # pyarrow decodes UTF-8 natively; other encodings go through a Python transcoding stream.
    arrow_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    forced: dict[str, pa.DataType] = {name: pa.string() for name in text_columns}
    newlines_in_values = False
    for _attempt in range(64):
        rewrite = csv_out is not None and not (layout.exact and head.data_end is None and not masking)
        try:
            info = _write_parquet(
                src,
                out,
                head,
                arrow_encoding,
                forced,
                row_group_bytes,
                metadata,
                masking,
                csv_out if rewrite else None,
                newlines_in_values,
            )
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "UTF8" in message and arrow_encoding == "utf8":
                raise _NotUtf8 from exc
            bad = _BAD_COLUMN.search(message)
            if not bad:
                raise ConversionError(_("CSV 无法解析：%(error)s", error=message[:300])) from exc
            # Types are inferred from the first block; a later value that does not fit
            # (e.g. '暂无' in a number column) makes that column text, and we read again.
            forced[layout.names[int(bad.group(1))]] = pa.string()
            continue
        if info.skipped_rows and not newlines_in_values:
            # Maybe a quoted value holds a line break (Excel's Alt+Enter): read again allowing it.
            newlines_in_values = True
            retry = _write_parquet(
                src,
                out,
                head,
                arrow_encoding,
                forced,
                row_group_bytes,
                metadata,
                masking,
                csv_out if rewrite else None,
                True,
            )
            if retry.skipped_rows < info.skipped_rows:
                info = retry
            else:
                info = _write_parquet(
                    src,
                    out,
                    head,
                    arrow_encoding,
                    forced,
                    row_group_bytes,
                    metadata,
                    masking,
                    csv_out if rewrite else None,
                    False,
                )
        info.csv_written = rewrite
        info.notes = layout.titles + head.notes
        info.header_rows = layout.header_rows
        if info.skipped_rows:
            info.bad_rows = _bad_rows(src, encoding, head)
            info.problems.append(
                {"code": "bad_rows", "count": info.skipped_rows, "rows": info.bad_rows, "width": layout.width}
            )
        if (
            info.row_count == 0
            and info.skipped_rows == 0
            and src.stat().st_size > head.data_offset + 2
            and head.data_end is None
        ):
            info.problems.append({"code": "empty", "rows": []})
        return info
    raise ConversionError(_("CSV 列类型无法确定"))


def _bad_rows(src: Path, encoding: str, head: _Head) -> list[int]:
    """Line numbers (as a spreadsheet program shows them) of the rows whose fields do not
    match the header, for the department; the first few only."""
    codec = "utf-8-sig" if encoding == "utf-8-sig" else encoding
    found: list[int] = []
    with open(src, encoding=codec, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=head.delimiter)
        for n, row in enumerate(reader, start=1):
            if n <= head.layout.data_index or not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != head.layout.width and not is_note(row, head.layout.width):
                found.append(reader.line_num)
                if len(found) >= MAX_BAD_ROWS_LISTED:
                    break
    return found


def _write_parquet(
    src: Path,
    out: Path,
    head: _Head,
    encoding: str,
    forced: dict[str, pa.DataType],
    row_group_bytes: int,
    metadata: dict | None,
    masking: dict | None,
    csv_out: Path | None,
    newlines_in_values: bool,
) -> TableInfo:
    skipped = 0
    note_texts = {n.replace(" ", "") for n in head.notes}

    def skip_row(row: pacsv.InvalidRow) -> str:
        # A row with the wrong number of fields is left out and counted (and the table held);
        # a note line below the table is left out and kept as a note.
        nonlocal skipped
        if row.text and re.sub(r"[\s,\t;|\"]", "", row.text) in note_texts:
            return "skip"
        skipped += 1
        return "skip"

    source = _Bounded(src, head.data_offset, head.data_end)
    scanner = None
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                encoding=encoding, block_size=BLOCK_SIZE, column_names=head.layout.names
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=head.delimiter, newlines_in_values=newlines_in_values, invalid_row_handler=skip_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=forced, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        try:
            first = reader.read_next_batch()
        except StopIteration:
            first = None
        schema = first.schema if first is not None else reader.schema
        if masking:
            first = mask_batch(first, masking) if first is not None else None
            schema = first.schema if first is not None else masked_schema(schema, masking)
        scanner = _ScanBeside(TableScanner(schema.names))
        tmp = out.with_name(out.name + ".part")
        rows = 0
        file_schema = schema.with_metadata(metadata) if metadata else schema
        csv_writer = (
            pacsv.CSVWriter(csv_out, schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
            if csv_out is not None
            else None
        )
        try:
            with pq.ParquetWriter(
                tmp, file_schema, compression="snappy", use_dictionary=_dictionary_columns(first)
            ) as writer:
                pending: list[pa.RecordBatch] = []
                pending_bytes = pending_rows = 0
                batches = itertools.chain(
                    [first] if first is not None else [],
                    (mask_batch(b, masking) for b in reader) if masking else reader,
                )
                for batch in batches:
                    scanner.feed(batch)
                    if csv_writer is not None:
                        csv_writer.write_batch(batch)
                    pending.append(batch)
                    pending_bytes += batch.nbytes
                    pending_rows += batch.num_rows
                    if pending_bytes >= row_group_bytes or pending_rows >= MAX_ROW_GROUP_ROWS:
                        rows += _flush(writer, schema, pending)
                        pending, pending_bytes, pending_rows = [], 0, 0
                rows += _flush(writer, schema, pending)
        finally:
            if csv_writer is not None:
                csv_writer.close()
        findings = scanner.findings()  # waits for the scan of the last batch
    finally:
        if scanner is not None:
            scanner.close()
        source.close()
    tmp.replace(out)
    return TableInfo(
        sheet=None,
        parquet=out,
        csv=out,
        row_count=rows,
        schema=schema_of(schema),
        skipped_rows=skipped,
        findings=findings,
        scan_seconds=scanner.seconds,
    )


class _ScanBeside:
    """Runs the personal-information scan in a thread beside the conversion: the streaming
    reader and the Parquet writer keep one core busy, the scan uses the other (Arrow's
    kernels release the GIL). A few batches wait at most, so memory stays flat."""

    def __init__(self, scanner: TableScanner, depth: int = 2) -> None:
        self.scanner, self.seconds = scanner, 0.0
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pii-scan", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue
            started = time.thread_time()
            try:
                self.scanner.feed(batch)
            except BaseException as exc:  # raised again in the converting thread
                self.error = exc
            self.seconds += time.thread_time() - started

    def feed(self, batch: pa.RecordBatch) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def findings(self) -> list:
        self.close()
        if self.error is not None:
            raise self.error
        started = time.thread_time()
        found = self.scanner.findings()
        self.seconds += time.thread_time() - started
        return found

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


def masked_schema(schema: pa.Schema, masking: dict) -> pa.Schema:
    """The schema after masking: dropped columns gone, masked ones text."""
    fields = []
    for f in schema:
        method = (masking.get(f.name) or {}).get("method")
        if method == "drop":
            continue
        fields.append(pa.field(f.name, pa.string()) if method == "partial" else f)
    return pa.schema(fields)


def _dictionary_columns(sample: pa.RecordBatch | None) -> list[str] | bool:
    """Dictionary-encode the columns that repeat values in the first batch. A column that is
    (nearly) unique there — record ids, licence numbers, coordinates — only pays for a
    dictionary Parquet abandons at 1 MB: skipping it made conversion ~20% faster and the file
    smaller than pyarrow's defaults (benchmarks/harvest.py)."""
    if sample is None or sample.num_rows < 100:
        return True
    return [
        field.name
        for field, column in zip(sample.schema, sample.columns, strict=True)
        if pc.count_distinct(column).as_py() < 0.97 * sample.num_rows
    ]


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


# openpyxl's read-only mode still reads a workbook's shared strings whole into memory, about
# five times their XML's size: a few hundred KB of compressed XML became 910 MB in a worker.
# Parts are measured by what they unpack to (the ZIP's own table) before anything is read.
SHARED_STRINGS_LIMIT = 128 * 1024 * 1024
PART_LIMIT = 4 * 1024 * 1024 * 1024
BOMB_RATIO = 200  # a part unpacking to more than 200 times its stored size, above 64 MiB


def _refuse_bombs(src: Path) -> None:
    try:
        parts = zipfile.ZipFile(src).infolist()
    except (zipfile.BadZipFile, OSError):
        return  # load_workbook says what is wrong with it
    for part in parts:
        name, size = part.filename.lower(), part.file_size
        too_big = size > PART_LIMIT or (name.endswith("sharedstrings.xml") and size > SHARED_STRINGS_LIMIT)
        bomb = size > 64 * 1024 * 1024 and size > BOMB_RATIO * max(part.compress_size, 1)
        if too_big or bomb:
            raise ConversionError(
                _(
                    "电子表格的内容解压后过大（%(part)s 约 %(mb)s MB），无法安全读取：请另存为 CSV 后重新提供",
                    part=part.filename[-60:],
                    mb=size // (1024 * 1024),
                )
            )


def convert_xlsx(
    src: Path,
    workdir: Path,
    *,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    metadata: dict[str, str] | None = None,
    masking: dict | None = None,
) -> list[TableInfo]:
    """Every non-empty sheet becomes a table, read from its real header (title rows above,
    merged cells, two-row headers, notes below)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _refuse_bombs(src)
    # A file object, not a path: openpyxl refuses paths without an .xlsx suffix.
    handle = open(src, "rb")  # noqa: SIM115 (closed in finally)
    try:
        wb = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        handle.close()
        raise ConversionError(_("电子表格已损坏或不是 XLSX 文件：%(error)s", error=str(exc))) from exc
    tables: list[TableInfo] = []
    try:
        for position, ws in enumerate(wb.worksheets):
            sheet_csv = workdir / f"sheet-{position}.csv"
            if not hasattr(ws, "iter_rows"):  # a chart sheet holds no table
                continue
            sheet = _sheet_to_csv(ws, sheet_csv, _merged_ranges(wb, ws))
            if sheet is None or sheet.rows_below_header == 0:  # empty, or one line of text (说明): no table
                sheet_csv.unlink(missing_ok=True)
                continue
            info = convert_csv(
                sheet_csv,
                workdir / f"table-{position}.parquet",
                workdir / f"table-{position}.csv",
                encoding="utf-8",
                row_group_bytes=row_group_bytes,
                sheet=ws.title,
                csv_is_utf8_copy=True,
                metadata=metadata,
                masking=masking,
            )
            info.notes = sheet.notes
            info.header_rows = sheet.header_rows
            # The sheet's name is shown with the table: it is scanned like the rows.
            for finding in scan_text([ws.title], "工作表名称"):
                finding.rule = "sheet_name"
                info.findings.append(finding)
            if sheet.beyond_header:
                info.problems.append(
                    {
                        "code": "beyond_header",
                        "rows": sheet.beyond_header[:MAX_BAD_ROWS_LISTED],
                        "count": len(sheet.beyond_header),
                        "width": sheet.width,
                    }
                )
            if info.row_count == 0 and sheet.rows_below_header:
                info.problems.append({"code": "empty", "rows": []})
            tables.append(info)
    except (zipfile.BadZipFile, AttributeError, KeyError) as exc:
        raise ConversionError(
            _("电子表格已损坏或含无法读取的内容（%(error)s）", error=type(exc).__name__)
        ) from exc
    finally:
        wb.close()
        handle.close()
    if not tables:
        raise ConversionError(_("电子表格中没有数据"))
    return tables


_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _merged_ranges(wb: Workbook, ws: ReadOnlyWorksheet) -> list[tuple[int, int, int, int]]:
    """Merged cells of a sheet as (first row, first column, last row, last column), 1-based.
    openpyxl's read-only mode does not give them, so they are read from the sheet's XML
    (they come after the cells; the stream is read once more, without parsing)."""
    from openpyxl.utils import column_index_from_string

    path = getattr(ws, "_worksheet_path", None)
    archive = getattr(wb, "_archive", None)
    if not path or archive is None:
        return []
    found: set[tuple[int, int, int, int]] = set()
    carry = b""
    with archive.open(path) as f:
        while chunk := f.read(1 << 20):
            data = carry + chunk
            for m in _MERGE.finditer(data):
                found.add(
                    (
                        int(m.group(2)),
                        column_index_from_string(m.group(1).decode()),
                        int(m.group(4)),
                        column_index_from_string(m.group(3).decode()),
                    )
                )
            carry = data[-100:]  # a reference cut between two chunks is found in the next
    return sorted(found)


@dataclass
class _Sheet:
    width: int
    header_rows: int
    notes: list[str]
    beyond_header: list[int]
    rows_below_header: int


def _sheet_to_csv(
    ws: ReadOnlyWorksheet, dest: Path, merges: list[tuple[int, int, int, int]]
) -> _Sheet | None:
    """Write a sheet's table as UTF-8 CSV: its header (one or two rows, merged cells filled),
    then its rows; titles above and notes below are kept aside. None for an empty sheet."""
    merged = _Merges(merges)
    rows_iter = ws.iter_rows(values_only=True)  # type: ignore[misc]  # types-openpyxl types it for Worksheet only
    head: list[tuple[int, list[str]]] = []
    for n, row in enumerate(rows_iter, start=1):
        head.append((n, merged.expand(n, row)))
        if len(head) >= LOOK_AHEAD:
            break
    if not any(cells for _line, cells in head):
        return None
    # find_layout works on the rows as read (empty ones included, so indexes are row numbers).
    rows = [c for _line, c in head]
    first_row = head[0][0]
    layout = find_layout(rows, {(r - first_row + 1, c) for r, c in merged.across})
    if layout is None:
        return None
    with open(dest, "w", encoding="utf-8", newline="") as f:
        body = _Body(f, layout.names, layout.width)
        for n, cells in head[layout.data_index :]:
            body.take(n, cells)
        for n, row in enumerate(rows_iter, start=len(head) + 1):
            body.take(n, merged.expand(n, row))
    notes = layout.titles + [
        " ".join(c.strip() for c in cells if c.strip()) for _line, cells in body.pending_notes
    ]
    return _Sheet(
        width=layout.width,
        header_rows=layout.header_rows,
        notes=notes,
        beyond_header=body.beyond,
        rows_below_header=body.below,
    )


class _Merges:
    """Merged cells repeat the value of their top-left cell, as a reader sees them."""

    def __init__(self, merges: list[tuple[int, int, int, int]]) -> None:
        self.starts: dict[int, list[tuple[int, int, int]]] = {}
        for r1, c1, r2, c2 in merges:
            self.starts.setdefault(r1, []).append((c1, r2, c2))
        self.active: dict[int, dict[int, object]] = {}  # row -> {col: value} for cells inside a merge
        # (row, col), 0-based, covered by a horizontal merge where the header is looked for
        self.across = {
            (rr - 1, cc - 1)
            for r1, c1, r2, c2 in merges
            if c2 > c1 and r1 <= LOOK_AHEAD
            for rr in range(r1, r2 + 1)
            for cc in range(c1 + 1, c2 + 1)
        }

    def expand(self, n: int, row: tuple) -> list[str]:
        """Row n's cells as text, merged cells filled, empty cells at the end dropped."""
        values = list(row)
        self._open(n, values)
        for cc, value in self.active.pop(n, {}).items():
            while len(values) < cc:
                values.append(None)
            if values[cc - 1] in (None, ""):
                values[cc - 1] = value
        cells = [_cell_text(v) for v in values]
        while cells and not cells[-1].strip():
            cells.pop()
        return cells

    def _open(self, n: int, values: list) -> None:
        """The merges whose top-left cell is in row n: their value goes to every cell they cover."""
        for c1, r2, c2 in self.starts.get(n, ()):
            if c1 - 1 < len(values):
                for rr in range(n, r2 + 1):
                    for cc in range(c1, c2 + 1):
                        if (rr, cc) != (n, c1):
                            self.active.setdefault(rr, {})[cc] = values[c1 - 1]


class _Body:
    """The rows below the header, written at the header's width. A note-like row waits until
    a data row follows it (then it was data); those still waiting at the end are the notes
    below the table."""

    def __init__(self, f: TextIO, names: list[str], width: int) -> None:
        self.writer = csv.writer(f)
        self.writer.writerow(names)
        self.width = width
        self.beyond: list[int] = []  # rows wider than the header
        self.pending_notes: list[tuple[int, list[str]]] = []
        self.below = 0

    def take(self, n: int, cells: list[str]) -> None:
        if not cells:
            return
        if is_note(cells, self.width):
            self.pending_notes.append((n, cells))
            return
        for pn, pc_ in self.pending_notes:  # a note-like row with data after it was data
            self._emit(pn, pc_)
        self.pending_notes.clear()
        self._emit(n, cells)

    def _emit(self, n: int, cells: list[str]) -> None:
        if width_of(cells) > self.width:
            self.beyond.append(n)
        self.writer.writerow((cells + [""] * self.width)[: self.width])
        self.below += 1


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
