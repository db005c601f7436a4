"""The sandbox's table and its locked DuckDB connection (issue 21, 可用不可见).

A sandbox grant's data is copied once into a DuckDB database file holding one table, `data`:
only the granted fields and rows (the same scope the licensed download uses), plus a small
`meta` table that says, per column, its kind of values and whether it identifies a person.
Queries never see the Parquet file, the portal's database or the file system: the
connection is opened read-only with external access, extension loading and configuration
changes off, a memory limit, two threads, no spilling to disk, and a timer that interrupts
it (`locked`). What may run on it is decided by licenses/disclosure.py.

Every record also gets a hidden record key (`RECORD_KEY`): a uniform 16-bit integer from the
operating system's cryptographic random source, drawn when the table is built. It is not in
`meta`, so it is not one of TableInfo.columns and no query can name it; disclosure.py sums it
per output cell to perturb the cell (the cell-key method of the Australian Bureau of
Statistics' TableBuilder). A file built before the keys existed (FORMAT 1) is refused, not
queried without them: its copy must be built again.

A query that fails inside DuckDB is refused with one fixed message: DuckDB's text can carry a
record's value (a failed conversion names the value), so it goes only to QueryRefused.detail,
for the department and the bureau.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harvest.pii import TableScanner, header_kinds
from portal.catalog.rows import Scope, scoped_table
from portal.messages import _

from .errors import LicenceError

# Kinds of header that name personal data (harvest/pii.py): a column so named is an identifier
# whatever its values. Business addresses and organisations' names are not on this list.
PERSONAL_HINTS = {"id_number", "bank_card", "email", "passport", "permit", "plate", "phone", "person", "birth",
                  "home_address"}  # fmt: skip
# A column with this many distinct values per row is a quasi-identifier (a record number, a
# licence number): grouping or filtering by it would single out records.
QUASI_IDENTIFIER_SHARE = 0.5
BATCH_ROWS = 262_144
# The hidden column of record keys (a name no harvested header has; TableInfo never lists it):
# uniform 16-bit integers. A cell key is their sum mod KEY_SPACE, uniform for any non-empty
# set of records; 16 bits resolve the perturbation table finely enough (1/65,536) and cost
# half the reading of 32 bits (about 5 ms less per query on 5 million rows).
RECORD_KEY = "__sdc_record_key"
KEY_SPACE = 2**16
# The layout of the sandbox file: 2 = with record keys. A copy's cache key should include it.
FORMAT = 2


class QueryRefused(LicenceError):
    """A sandbox query that does not pass the checks, or that hit a limit: the message names
    the rule and what to write instead. `detail` is for the department and the bureau only
    (DuckDB's own error text, which may quote a record's value): never shown to the holder."""

    def __init__(self, message: object = "", fields: Mapping[str, object] | None = None, *, detail: str | None = None) -> None:  # fmt: skip
        super().__init__(message, fields)
        self.detail = detail


@dataclass(frozen=True)
class SandboxColumn:
    name: str
    type: str  # "number" | "text" | "date" | "bool"
    identifier: bool  # personal data or a quasi-identifier
    # Why it is an identifier: "personal" (harvest/pii.py's header or value rules) or "unique"
    # (most values occur once). A "unique" number column may still be summed or averaged.
    reason: str = ""


@dataclass
class TableInfo:
    path: Path
    table: str
    rows: int
    columns: list[SandboxColumn]
    record_keys: bool = True  # the file has the hidden record keys (FORMAT 2)

    def column(self, name: str) -> SandboxColumn | None:
        """A column by name; DuckDB's names are case-insensitive, so a name that differs only
        in case is the same column."""
        exact = {c.name: c for c in self.columns}
        if name in exact:
            return exact[name]
        folded = [c for c in self.columns if c.name.casefold() == name.casefold()]
        return folded[0] if len(folded) == 1 else None


# ----------------------------------------------------------------------------- building


def value_kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    if pa.types.is_boolean(t):
        return "bool"
    return "text"


def _measured(t: pa.DataType) -> bool:
    """Fractions and dates are measures: many distinct values are expected and identify no one
    by themselves (the output rules stop single records). Integers and text with as many
    distinct values as rows are codes and record numbers."""
    return (
        pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)
    )


def _scoped_batches(parquet_path: Path, scope: Scope, scanner: TableScanner) -> Iterator[pa.RecordBatch]:
    """The granted rows and fields, batch by batch (the Parquet file is never read whole),
    each batch scanned for personal data on the way."""
    source = pq.ParquetFile(parquet_path)
    for batch in source.iter_batches(batch_size=BATCH_ROWS):
        table = scoped_table(pa.Table.from_batches([batch]), scope)
        for part in table.to_batches():
            scanner.feed(part)
            yield _with_record_keys(part)


def _with_record_keys(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with a uniform random 16-bit key per record, from the OS's CSPRNG."""
    keys = np.frombuffer(secrets.token_bytes(2 * batch.num_rows), dtype=np.uint16)
    return pa.RecordBatch.from_arrays(
        [*batch.columns, pa.array(keys, pa.uint16())], [*batch.schema.names, RECORD_KEY]
    )


def _identifiers(con: duckdb.DuckDBPyConnection, schema: pa.Schema, scanner: TableScanner, rows: int) -> dict:
    personal = {f.column for f in scanner.findings()} | {
        c for f in scanner.findings() for c in (f.columns or [])
    }
    out: dict[str, str] = {}
    for f in schema:
        if f.name in personal or header_kinds(f.name) & PERSONAL_HINTS:
            out[f.name] = "personal"
        elif rows and not _measured(f.type) and value_kind(f.type) != "bool":
            distinct = con.execute(f'SELECT count(DISTINCT "{_quoted(f.name)}") FROM data').fetchone()
            if distinct and distinct[0] >= QUASI_IDENTIFIER_SHARE * rows:
                out[f.name] = "unique"
    return out


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def build_table(parquet_path: Path, scope: Scope, out_path: Path) -> TableInfo:
    """Write the sandbox's DuckDB file: table `data` (granted fields and rows only) and `meta`
    (the columns). Written beside out_path and renamed over it, so a reader never opens a
    half-written file."""
    schema = scoped_table(pq.ParquetFile(parquet_path).schema_arrow.empty_table(), scope).schema
    if RECORD_KEY in schema.names:
        raise LicenceError(_("数据表含有保留列名「%(name)s」，无法建立沙箱副本", name=RECORD_KEY))
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{threading.get_ident()}.part")
    tmp.unlink(missing_ok=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scanner = TableScanner(schema.names)
    keyed = schema.append(pa.field(RECORD_KEY, pa.uint16()))
    reader = pa.RecordBatchReader.from_batches(keyed, _scoped_batches(parquet_path, scope, scanner))
    try:
        with duckdb.connect(str(tmp)) as con:
            con.execute("SET enable_progress_bar = false")
            con.register("granted", reader)
            con.execute("CREATE TABLE data AS SELECT * FROM granted")
            con.unregister("granted")
            rows = _count(con)
            identifiers = _identifiers(con, schema, scanner, rows)
            columns = [
                SandboxColumn(f.name, value_kind(f.type), f.name in identifiers, identifiers.get(f.name, ""))
                for f in schema
            ]
            con.execute("CREATE TABLE meta (position INTEGER, name VARCHAR, type VARCHAR, reason VARCHAR)")
            con.executemany(
                "INSERT INTO meta VALUES (?, ?, ?, ?)",
                [[i, c.name, c.type, c.reason] for i, c in enumerate(columns)],
            )
            con.execute("CHECKPOINT")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return TableInfo(out_path, "data", rows, columns)


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM data").fetchone()
    return int(row[0]) if row else 0


MEMORY_LIMIT = "512MB"  # run_query's default; the file stays open under it (_opened)


def read_table_info(path: Path) -> TableInfo:
    # Through the process's open database (DuckDB opens a file once per process, with one
    # configuration): a session of its own, closed after.
    with _opened(path, MEMORY_LIMIT).cursor() as con:
        meta = con.execute("SELECT name, type, reason FROM meta ORDER BY position").fetchall()
        rows = _count(con)
        keyed = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'data' AND column_name = ?",
            [RECORD_KEY],
        ).fetchone()
    columns = [SandboxColumn(n, t, bool(r), r) for n, t, r in meta]
    return TableInfo(path, "data", rows, columns, record_keys=bool(keyed and keyed[0]))


# ----------------------------------------------------------------------------- the connection


def _config(memory_limit: str) -> dict:
    return {
        "enable_external_access": False,  # no files, URLs, ATTACH, COPY, read_* or glob
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "memory_limit": memory_limit,
        "threads": 2,
        "max_temp_directory_size": "0KB",  # no spilling: the memory limit is the limit
    }


def _watch(
    con: duckdb.DuckDBPyConnection, timeout_s: float, stop: threading.Event, fired: threading.Event
) -> None:
    """Interrupt the connection once the time is up, and again every 50 ms until the query
    has stopped: an interrupt that arrives between two statements is lost."""
    if stop.wait(timeout_s):
        return
    fired.set()
    while True:
        con.interrupt()
        if stop.wait(0.05):
            return


NOT_RUN = _(
    "查询无法执行，请检查语句（例如比较或运算的两边类型是否一致：文本列不能与数字或日期比较，"
    "需要时用 TRY_CAST 转换）。"
)


def _timed_out(timeout_s: float) -> QueryRefused:
    seconds = format(timeout_s, "g")  # 30, not 30.0
    return QueryRefused(
        _("查询超过 %(seconds)s 秒未完成，已停止。请缩小筛选范围或减少分组后再试。", seconds=seconds)
    )


_OPEN: dict[tuple[str, int, str], duckdb.DuckDBPyConnection] = {}
_OPEN_LOCK = threading.Lock()
KEEP_OPEN = 8  # sandbox files kept open per process


def _opened(path: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """The sandbox file opened once per process and version (opening and locking costs ~13 ms,
    a query on a 5 M-row table ~6): read-only, external access and extensions off, then the
    configuration locked — no SET, no PRAGMA can change it from any session made from it
    (each query runs in its own cursor, which inherits all of it)."""
    key = (str(path), path.stat().st_mtime_ns, memory_limit)
    with _OPEN_LOCK:
        con = _OPEN.get(key)
        if con is None:
            _close_other_versions(key)
            con = duckdb.connect(str(path), read_only=True, config=_config(memory_limit))
            # The progress bar is a session option (not accepted in the connect config).
            con.execute("SET enable_progress_bar = false")
            con.execute("SET lock_configuration = true")
            _OPEN[key] = con
        return con


def _close_other_versions(key: tuple[str, int, str]) -> None:
    """An earlier version of the file (or the same file under another memory limit: DuckDB
    opens a file once per process with one configuration) is closed first; then the oldest
    beyond KEEP_OPEN."""
    for old in [k for k in _OPEN if k[0] == key[0]]:
        _OPEN.pop(old).close()
    while len(_OPEN) >= KEEP_OPEN:
        _OPEN.pop(next(iter(_OPEN))).close()


@contextmanager
def locked(path: Path, *, timeout_s: float, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the sandbox file that is interrupted after timeout_s; the
    interrupt and the memory limit come back as QueryRefused with the limit named."""
    con = _opened(path, memory_limit).cursor()  # a session of its own on the open database
    stop, fired = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(con, timeout_s, stop, fired), daemon=True)
    watcher.start()
    try:
        yield con
        if fired.is_set():  # finished, but only after the time was up
            raise _timed_out(timeout_s)
    except duckdb.InterruptException as exc:
        raise _timed_out(timeout_s) from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryRefused(
            _(
                "查询所需内存超过 %(limit)s，已停止。请减少分组、去掉 COUNT(DISTINCT …) 或缩小筛选范围后再试。",
                limit=memory_limit,
            )
        ) from exc
    except duckdb.Error as exc:
        if fired.is_set():  # the interrupt, reported as another error
            raise _timed_out(timeout_s) from exc
        # DuckDB's text may quote a record's value: it stays with the department and the bureau.
        raise QueryRefused(NOT_RUN, detail=str(exc)[:2000]) from exc
    finally:
        stop.set()
        watcher.join()
        con.close()
