"""Rows of a data table, for the data API: column selection, equality and range filters,
a text match, sorting and paging, answered from the Parquet file with pyarrow.

How a query runs (each step measured in benchmarks/api.py against DuckDB):
- the filter, as a pyarrow expression, prunes row groups by their min/max statistics;
- each remaining row group reads only the filter columns first, and string columns stay
  dictionary-encoded, so a test like 所属街道 = '古楼街道' is decided once per distinct value
  instead of once per row;
- only the rows that match are then read in the other columns (late materialization);
- row groups are worked on in parallel, in order, and without a sort the work stops as soon
  as the page is full;
- with a sort, each row group keeps only its best offset+limit+1 rows (top-k), and when the
  page is smaller than the number of row groups, its other columns are read only afterwards,
  from the row groups its rows live in;
- with a sort on a number or a date, row groups are visited best statistics first, and once
  the k-th best row so far beats what a row group's statistics allow, that row group (and
  every one after it) is not read at all; in a row group that is read, the sort columns are
  read only after its filter matched, and rows below the k-th best are dropped before any
  other column is read;
- the filter and sort columns' decoded chunks are kept per process (ChunkCache, bounded), so
  the next query on a popular dataset does not decode them again.

A Scope says what the asker may see (all of an unconditional table; the granted fields and
rows of a licensed one). It is applied here, under every filter the asker adds, so no
parameter can widen it.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..labels import label
from ..messages import _
from .bundle import field_type

ROW_CAP = 1000  # rows per call, however many are asked for
DEFAULT_LIMIT = 100
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


class QueryError(ValueError):
    """A parameter the API cannot answer; the message says what to change."""


@dataclass
class Scope:
    fields: list[str] | None = None  # None: every column
    row_filter: dict[str, list[str]] | None = None  # {"column": ["value", ...]}: only those rows


@dataclass
class RowQuery:
    fields: list[str] | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)  # column → any of these values
    ranges: dict[str, dict[str, str]] = field(default_factory=dict)  # column → {"gte": "10", ...}
    text: str = ""
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: bool = False


@dataclass
class RowPage:
    schema: pa.Schema
    table: pa.Table
    more: bool
    total: int | None


class ChunkCache:
    """Decoded column chunks kept in this process, at most `max_bytes` of them.

    Why: a sorted query tests and sorts every row group it cannot prune, and decoding the
    filter and sort columns is most of its cost (a plain, Snappy-compressed 64-bit column of
    280,000 rows: ~4.5 ms); the next query on a popular dataset asks for the same columns.
    Kept: the filter and sort columns' chunks as read (text as dictionaries), keyed by file,
    its mtime and size, row group and column. A file's content never changes under its name;
    a replaced one has another mtime or size, and its old chunks age out.

    Which stay: a chunk is worth what decoding it again costs per byte it takes (its measured
    decode time over its size) times how often it is asked for (a count per key, halved every
    AGE_EVERY lookups, so old favourites fade). A chunk gets in only by pushing out chunks
    worth clearly less (DEARER times), the least worth first. So the room goes to the chunks
    that save the most decoding per byte (a plain float column costs ~5 times more per byte
    than a dictionary-encoded integer one), and a table larger than the cache, read in turn
    query after query, keeps the part that fits. Plain LRU would keep nothing useful there:
    each chunk would be pushed out just before it is asked for again.
    """

    AGE_EVERY = 4096
    # Measured decode times wobble: chunks of about the same worth must not take turns.
    DEARER = 1.25
    SAMPLE = 64  # victims are chosen among this many least recently used chunks

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # key → (chunk, seconds to decode it per byte), least recently used first
        self._kept: OrderedDict[Hashable, tuple[pa.ChunkedArray, float]] = OrderedDict()
        self._bytes = 0
        self._asked: dict[Hashable, int] = {}
        self._lookups = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> pa.ChunkedArray | None:
        with self._lock:
            self._asked[key] = self._asked.get(key, 0) + 1
            self._lookups += 1
            if self._lookups >= self.AGE_EVERY:
                self._lookups = 0
                self._asked = {k: n // 2 for k, n in self._asked.items() if n > 1}
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
            return kept[0]

    def put(self, key: Hashable, chunk: pa.ChunkedArray, seconds: float) -> None:
        """Keep a chunk that took `seconds` to decode, if it is worth its room."""
        size = chunk.nbytes
        per_byte = seconds / max(size, 1)
        with self._lock:
            if key in self._kept or size > self.max_bytes // 4:  # no chunk takes most of the room
                return
            victims = self._victims(size, self._worth(key, per_byte))
            if victims is None:
                return
            for victim in victims:
                self._bytes -= self._kept.pop(victim)[0].nbytes
            self._kept[key] = (chunk, per_byte)
            self._bytes += size

    def _worth(self, key: Hashable, per_byte: float) -> float:
        return self._asked.get(key, 0) * per_byte

    def _victims(self, size: int, worth: float) -> list[Hashable] | None:
        """The chunks to drop to make room for `size` bytes worth `worth`: among the SAMPLE
        least recently used, least worth first; None when one of them is not clearly worth
        less. (A sample, as Redis does, so a put costs the same however many chunks are kept.)"""
        room = self.max_bytes - self._bytes
        if room >= size:
            return []
        victims: list[Hashable] = []
        oldest = itertools.islice(self._kept.items(), self.SAMPLE)
        for key, (kept, per_byte) in sorted(oldest, key=lambda item: self._worth(item[0], item[1][1])):
            if self._worth(key, per_byte) * self.DEARER >= worth:
                return None
            victims.append(key)
            room += kept.nbytes
            if room >= size:
                return victims
        return None

    def resize(self, max_bytes: int) -> None:
        """A new bound (PORTAL_DATA_API_CACHE_BYTES; 0 keeps nothing): the oldest chunks go."""
        with self._lock:
            self.max_bytes = max_bytes
            while self._kept and self._bytes > max_bytes:
                self._bytes -= self._kept.popitem(last=False)[1][0].nbytes

    @property
    def size(self) -> int:
        return self._bytes


CHUNKS = ChunkCache(64 * 1024 * 1024)  # resized from the settings when a portal starts


@dataclass
class ParquetTable:
    """An opened Parquet file: its footer, schema, and which string columns are stored with
    a dictionary (those are read as dictionaries: cheap to test, cheap to carry)."""

    path: str
    version: tuple[int, int]  # mtime and size: a replaced file is another file
    dataset: pads.Dataset
    metadata: pq.FileMetaData
    schema: pa.Schema
    dictionary_columns: list[str]
    column_index: dict[str, int]  # a column's place among a row group's column chunks

    def read(self, row_group: int, columns: list[str], *, keep: bool = False) -> pa.Table:
        """Columns of one row group. `keep`: the filter and sort columns, which the next query
        on this file is likely to test again, are taken from and kept in CHUNKS."""
        if not keep or not CHUNKS.max_bytes:
            return self._read(row_group, columns)
        found = {c: CHUNKS.get((self.path, self.version, row_group, c)) for c in columns}
        for c in [c for c, chunk in found.items() if chunk is None]:
            # One column at a time: what each costs to decode is what the cache weighs (the
            # calling thread's CPU time, which another process's load does not inflate).
            started = time.thread_time()
            found[c] = self._read(row_group, [c])[c]
            CHUNKS.put((self.path, self.version, row_group, c), found[c], time.thread_time() - started)
        return pa.table({c: found[c] for c in columns})

    def _read(self, row_group: int, columns: list[str]) -> pa.Table:
        f = pq.ParquetFile(
            self.path,
            metadata=self.metadata,
            read_dictionary=[c for c in columns if c in self.dictionary_columns],
        )
        return f.read_row_group(row_group, columns=columns, use_threads=False)


@functools.lru_cache(maxsize=256)
def _opened(path: str, mtime_ns: int, size: int) -> ParquetTable:
    """Opening reads the footer; files are named by content and never rewritten in place, so
    an opened file is kept (the mtime and size guard against a replaced one)."""
    dataset = pads.dataset(path, format="parquet")
    metadata = pq.read_metadata(path)
    schema = dataset.schema
    dictionary_columns = []
    column_index: dict[str, int] = {}
    if metadata.num_row_groups:
        column_index = {
            metadata.row_group(0).column(i).path_in_schema: i for i in range(metadata.num_columns)
        }
        dictionary_columns = [
            f.name
            for f in schema
            if _is_text(f.type)
            and f.name in column_index
            and metadata.row_group(0).column(column_index[f.name]).has_dictionary_page
        ]
    return ParquetTable(path, (mtime_ns, size), dataset, metadata, schema, dictionary_columns, column_index)


def open_table(path: Path) -> ParquetTable:
    stat = path.stat()
    return _opened(str(path), stat.st_mtime_ns, stat.st_size)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


WORKERS = os.cpu_count() or 2
_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rows")


def visible_columns(schema: pa.Schema, scope: Scope) -> list[str]:
    if scope.fields is None:
        return list(schema.names)
    allowed = set(scope.fields)
    return [n for n in schema.names if n in allowed]


def times_as_text(table: pa.Table) -> pa.Table:
    """Dates, times of day and timestamps as the ISO text a person and any client read
    ("2026-01-01", "19:00:00", "2026-01-01T19:00:00"): Arrow's own text for a time stored in
    milliseconds is "19:00:00.000", and JSON has no time of day at all."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_date(t):
            column = pc.strftime(column, format="%Y-%m-%d")
        elif pa.types.is_time(t):
            column = pc.strftime(pc.cast(column, pa.time32("s"), safe=False), format="%H:%M:%S")
        elif pa.types.is_timestamp(t):
            column = pc.strftime(
                pc.cast(column, pa.timestamp("s", t.tz), safe=False), format="%Y-%m-%dT%H:%M:%S"
            )
        columns[name] = column
    return pa.table(columns) if columns else table


def value_for(arrow_type: pa.DataType, text: str, column: str) -> str | bool | dt.date | pa.Scalar:
    """A filter value as the column's type: '2020-01-01' for a date column, '12' for an
    integer one. Anything that does not convert is the asker's mistake, said plainly."""
    try:
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return str(text)
        if pa.types.is_boolean(arrow_type):
            lowered = str(text).strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "1")
        if pa.types.is_date(arrow_type):
            return dt.date.fromisoformat(str(text).strip())
        if pa.types.is_timestamp(arrow_type):
            return pa.scalar(dt.datetime.fromisoformat(str(text).strip())).cast(arrow_type)
        if pa.types.is_time(arrow_type):  # "20:00", "20:00:00"
            return pa.scalar(dt.time.fromisoformat(str(text).strip()), type=arrow_type)
        return pc.cast(pa.array([str(text).strip()]), arrow_type)[0]
    except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise QueryError(
            _(
                "字段“%(column)s”的值“%(value)s”不是%(type)s",
                column=column,
                value=text,
                type=label("data_type", field_type(str(arrow_type))),
            )
        ) from exc


def _check_columns(names: list[str], visible: list[str], what: str) -> None:
    unknown = [n for n in names if n not in visible]
    if unknown:
        raise QueryError(
            _(
                "没有字段 %(unknown)s（%(what)s）；可用的字段：%(columns)s",
                unknown=", ".join(unknown),
                what=what,
                columns=", ".join(visible),
            )
        )


# ---------------------------------------------------------------------- the plan of a query

Test = Callable[[pa.Array], pa.Array]  # values of one column → true where the row passes


@dataclass
class Plan:
    prune: pc.Expression | None  # for row-group statistics
    all_of: list[tuple[str, Test]]  # every one must hold
    any_of: list[list[tuple[str, Test]]]  # per text word: some column holds it
    nothing: bool = False  # the grant names a column the file lacks

    @property
    def columns(self) -> list[str]:
        return list(
            dict.fromkeys(
                [c for c, _value in self.all_of] + [c for group in self.any_of for c, _value in group]
            )
        )


def _bound(fn: Callable[..., pa.Array], *args: object, **kwargs: object) -> Test:
    """A test that calls fn(column, *args, **kwargs), with the values bound now."""
    return lambda a: fn(a, *args, **kwargs)


def _text_is_in(a: pa.Array, allowed: pa.Array) -> pa.Array:
    return pc.is_in(pc.cast(a, pa.string()), value_set=allowed)


def _and(a: pc.Expression | None, b: pc.Expression) -> pc.Expression:
    return b if a is None else a & b


def plan(schema: pa.Schema, query: RowQuery, scope: Scope) -> Plan:
    visible = visible_columns(schema, scope)
    _check_columns(list(query.equals), visible, "eq")
    _check_columns(list(query.ranges), visible, "range")
    p = Plan(None, [], [])
    for column, values in (scope.row_filter or {}).items():
        # The grant's rows, compared as text (the row filter is stored as the curator typed it).
        if column not in schema.names:
            p.nothing = True  # a grant naming a column the file lacks matches nothing, not everything
            continue
        allowed = pa.array([str(v) for v in values], pa.string())
        p.all_of.append((column, _bound(_text_is_in, allowed)))
    for column, texts in query.equals.items():
        t = schema.field(column).type
        typed = [value_for(t, v, column) for v in texts]
        p.prune = _and(
            p.prune, pc.field(column).isin(typed) if len(typed) > 1 else pc.field(column) == typed[0]
        )
        value_set = pa.array([v.as_py() if isinstance(v, pa.Scalar) else v for v in typed], t)
        p.all_of.append((column, _bound(pc.is_in, value_set=value_set)))
    for column, bounds in query.ranges.items():
        t = schema.field(column).type
        for op, text in bounds.items():
            if op not in RANGE_OPERATORS:
                raise QueryError(_("未知的比较 %(op)s；可用：%(ops)s", op=op, ops=", ".join(RANGE_OPERATORS)))
            value = value_for(t, text, column)
            scalar = value if isinstance(value, pa.Scalar) else pa.scalar(value, t)
            ref = pc.field(column)
            p.prune = _and(
                p.prune,
                {"gt": ref > scalar, "gte": ref >= scalar, "lt": ref < scalar, "lte": ref <= scalar}[op],
            )
            fn = {"gt": pc.greater, "gte": pc.greater_equal, "lt": pc.less, "lte": pc.less_equal}[op]
            p.all_of.append((column, _bound(fn, scalar)))
    words = [w for w in query.text.split() if w]
    if words:
        text_columns = [c for c in visible if _is_text(schema.field(c).type)]
        if not text_columns:
            p.nothing = True
        for word in words:  # every word somewhere in the row's text columns
            p.any_of.append([(c, _bound(pc.match_substring, word, ignore_case=True)) for c in text_columns])
    return p


def scoped_table(table: pa.Table, scope: Scope) -> pa.Table:
    """A whole table cut to the scope (the licensed ZIP): the same rules as the API's plan —
    rows compared as text, a filter column the file lacks matching nothing — then the fields."""
    p = plan(table.schema, RowQuery(), scope)
    if p.nothing:
        table = table.slice(0, 0)
    elif p.all_of:
        table = table.take(_matches(table, p))
    return table.select(visible_columns(table.schema, scope))


def _test(column: pa.ChunkedArray, test: Test) -> pa.Array:
    """True/false per row. A dictionary column is tested once per distinct value."""
    parts = [
        _test_dictionary(chunk, test)
        if pa.types.is_dictionary(chunk.type)
        else pc.fill_null(test(chunk), False)
        for chunk in column.chunks
    ]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.bool_())


def _test_dictionary(chunk: pa.DictionaryArray, test: Test) -> pa.Array:
    """The rows whose value passes, from the verdict on each distinct value. When a single value
    passes (eq[所属街道]=古楼街道), the rows are those holding its code: comparing codes costs a
    third of looking a verdict up per row (a bit-packed take), measured on 280,000 rows."""
    per_value = pc.fill_null(test(chunk.dictionary), False)
    passing = pc.indices_nonzero(per_value)
    if len(passing) == 0:
        return pa.repeat(pa.scalar(False), len(chunk))
    if len(passing) == 1:
        code = pa.scalar(passing[0].as_py(), chunk.indices.type)
        return pc.fill_null(pc.equal(chunk.indices, code), False)
    return pc.fill_null(pc.take(per_value, chunk.indices), False)


def _matches(table: pa.Table, p: Plan) -> pa.Array:
    """Indices of the rows that pass every test. Each test after the first looks only at the
    rows still in the running (a 所属街道 = '古楼街道' first leaves a twentieth of them)."""
    picked: pa.Array | None = None  # None: every row still in the running

    def narrow(keep: pa.Array) -> pa.Array:
        kept = pc.indices_nonzero(keep)
        return kept if picked is None else pc.take(picked, kept)

    for column, test in p.all_of:
        picked = narrow(_test(_rows_of(table[column], picked), test))
    for group in p.any_of:
        some = None
        for column, test in group:
            hit = _test(_rows_of(table[column], picked), test)
            some = hit if some is None else pc.or_(some, hit)
        if some is not None:
            picked = narrow(some)
    return pa.array(range(table.num_rows), pa.uint64()) if picked is None else picked


def _rows_of(column: pa.ChunkedArray, picked: pa.Array | None) -> pa.ChunkedArray:
    return column if picked is None else column.take(picked)


def _decoded(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table(
        {
            name: table[name].cast(schema.field(name).type)
            if pa.types.is_dictionary(table[name].type)
            else table[name]
            for name in table.column_names
        }
    )


def _matching_rows(source: ParquetTable, row_group: int, p: Plan, columns: list[str]) -> pa.Table:
    """The matching rows of one row group, in `columns`: filter columns first, the rest only
    for the rows that matched."""
    tested = source.read(row_group, p.columns, keep=True) if p.columns else None
    if tested is None:
        return _decoded(source.read(row_group, columns), source.schema)
    indices = _matches(tested, p)
    if len(indices) == 0:
        return source.schema.empty_table().select(columns)
    rest = [c for c in columns if c not in tested.column_names]
    picked = {c: tested[c].take(indices) for c in columns if c in tested.column_names}
    if rest:
        picked |= {
            c: col.take(indices) for c, col in zip(rest, source.read(row_group, rest).columns, strict=True)
        }
    return _decoded(pa.table({c: picked[c] for c in columns}), source.schema)


def _row_groups(source: ParquetTable, p: Plan) -> list[int]:
    """Row groups whose statistics allow a match (all of them without a filter)."""
    if p.prune is None:
        return list(range(source.metadata.num_row_groups))
    fragment = next(source.dataset.get_fragments())
    return [rg.id for piece in fragment.split_by_row_group(filter=p.prune) for rg in piece.row_groups]


def _in_order(row_groups: list[int], work: Callable[[int], Any]) -> Iterator[Any]:
    """Results row group by row group, in the given order, with as many in flight as there
    are cores; stopping early cancels what has not started. The next row group starts once
    the caller has taken the last result, so it sees what the caller learnt from it (the
    top-k's bar)."""
    window = WORKERS
    pending = [_POOL.submit(work, rg) for rg in row_groups[:window]]
    next_rg = window
    try:
        while pending:
            yield pending.pop(0).result()
            if next_rg < len(row_groups):
                pending.append(_POOL.submit(work, row_groups[next_rg]))
                next_rg += 1
    finally:
        for f in pending:
            f.cancel()


def query_rows(path: Path, query: RowQuery, scope: Scope) -> RowPage:
    source = open_table(path)
    schema = source.schema
    visible = visible_columns(schema, scope)
    columns = query.fields or visible
    _check_columns(columns, visible, "fields")
    _check_columns([c for c, _descending in query.sort], visible, "sort")
    if not 0 < query.limit <= ROW_CAP:
        raise QueryError(_("limit 须在 1 到 %(row_cap)s 之间", row_cap=ROW_CAP))
    if query.offset < 0:
        raise QueryError(_("offset 不能为负"))
    p = plan(schema, query, scope)
    out_schema = pa.schema([schema.field(c) for c in columns])
    if p.nothing:
        return RowPage(out_schema, out_schema.empty_table(), False, 0 if query.count else None)
    if query.sort:
        page, total = _sorted_page(source, p, query, columns)
    else:
        page, total = _first_rows(source, p, query, columns)
    more = page.num_rows > query.limit
    return RowPage(out_schema, page.slice(0, query.limit), more, total if query.count else None)


def _first_rows(source: ParquetTable, p: Plan, query: RowQuery, columns: list[str]) -> tuple[pa.Table, int]:
    """Unsorted: matching rows in file order, stopping once the page (and one more row) is
    full, unless every match must be counted."""
    wanted = query.offset + query.limit + 1  # one more tells whether another page follows
    parts, seen = [], 0
    for part in _in_order(_row_groups(source, p), lambda rg: _matching_rows(source, rg, p, columns)):
        if seen < wanted:
            parts.append(part)
        seen += part.num_rows
        if seen >= wanted and not query.count:
            break
    table = pa.concat_tables(parts) if parts else source.schema.empty_table().select(columns)
    return table.slice(query.offset, query.limit + 1), seen


# ---------------------------------------------------------------------- sorted pages (top-k)

ROW_GROUP = "\x00row_group"  # where a candidate row lives; no harvested header has a NUL
POSITION = "\x00position"


@dataclass
class _Candidates:
    table: pa.Table | None  # the best rows of one row group: the columns read so far + where
    matched: int  # how many rows of the row group matched


def _sort_keys(query: RowQuery) -> list[tuple[str, str]]:
    """The asked order, then file order: a total order, so a per-row-group top-k merged is
    the same page as a stable sort of every match (ties keep file order)."""
    keys = [(c, "descending" if desc else "ascending") for c, desc in query.sort]
    return keys + [(ROW_GROUP, "ascending"), (POSITION, "ascending")]


def _top(table: pa.Table, keys: list[tuple[str, str]], k: int) -> pa.Table:
    """The best k rows of `table`, in order."""
    return table.take(pc.sort_indices(table, sort_keys=keys)[:k])


def _is_sorted_like_its_statistics(t: pa.DataType) -> bool:
    """Numbers and dates: their Parquet statistics are values that compare as the sort does.
    (Text statistics may be cut short by other writers; NaN is left out of float statistics and,
    like a null, sorts after every value in both directions, so it never beats a bound.)"""
    return (
        pa.types.is_signed_integer(t)
        or pa.types.is_float32(t)
        or pa.types.is_float64(t)
        or pa.types.is_date32(t)
    )


def _best_possible(
    source: ParquetTable, row_groups: list[int], column: str, descending: bool
) -> dict[int, Any]:
    """Per row group, the best first sort key any of its rows can have, from the statistics (its
    largest value for a descending sort). Row groups without statistics are left out."""
    index = source.column_index.get(column)
    if index is None or not _is_sorted_like_its_statistics(source.schema.field(column).type):
        return {}
    bounds = {}
    for rg in row_groups:
        stats = source.metadata.row_group(rg).column(index).statistics
        if stats is None or not stats.has_min_max:
            continue
        value = stats.max if descending else stats.min
        if not (isinstance(value, float) and math.isnan(value)):
            bounds[rg] = value
    return bounds


class _Best:
    """The best k rows found so far, and the bar: the first sort key of the k-th of them. A row
    whose first key is worse than the bar can never be on the page, nor a row group whose
    statistics say none of its rows reaches it (classic top-k pruning)."""

    def __init__(self, keys: list[tuple[str, str]], k: int) -> None:
        self.keys, self.k = keys, k
        self.column, self.descending = keys[0][0], keys[0][1] == "descending"
        self.table: pa.Table | None = None
        # None: no bar yet (fewer than k rows), or none at all: the k-th is a null or a NaN,
        # which sort after every value, so any row may still beat it.
        self.bar: pa.Scalar | None = None

    def add(self, table: pa.Table) -> None:
        merged = table if self.table is None else pa.concat_tables([self.table, table])
        self.table = _top(merged, self.keys, self.k)
        if self.table.num_rows >= self.k:
            last = self.table[self.column][self.k - 1]
            self.bar = last if last.is_valid and not _is_nan(last) else None

    def may_reach(self, best_possible: Any) -> bool:
        """Whether a row group whose best first key is `best_possible` may hold a row of the page
        (a tie may: the page breaks ties by file order). Unknown (None): it may."""
        bar = self.bar  # read once: the main thread moves it while workers ask
        if bar is None or best_possible is None:
            return True
        return bool(best_possible >= bar.as_py()) if self.descending else bool(best_possible <= bar.as_py())

    def reaching(self, table: pa.Table) -> pa.Array | None:
        """The rows of `table` whose first key reaches the bar (None: all of them)."""
        bar = self.bar
        if bar is None:
            return None
        reach = (pc.greater_equal if self.descending else pc.less_equal)(table[self.column], bar)
        return pc.indices_nonzero(pc.fill_null(reach, False))


def _is_nan(value: pa.Scalar) -> bool:
    return pa.types.is_floating(value.type) and math.isnan(value.as_py())


def _candidates(
    source: ParquetTable, row_group: int, p: Plan, query: RowQuery, early: list[str], best: _Best, bound: Any
) -> _Candidates:
    """One row group's matching rows, counted; and, when the row group can still reach the
    page, its best offset+limit+1 in the sort columns (and `early`). The filter columns are
    read and tested first, the sort columns only for a row group with matches, and the other
    columns (`early`) only for one with a row that reaches the bar."""
    tested = source.read(row_group, p.columns, keep=True) if p.columns else None
    matched = _matches(tested, p) if tested is not None else None
    count = source.metadata.row_group(row_group).num_rows if matched is None else len(matched)
    if count == 0 or not best.may_reach(bound):
        return _Candidates(None, count)
    sort_columns = [c for c, _descending in query.sort]
    keys = _columns_of(source, row_group, tested, sort_columns, keep=True)
    keys = _decoded(keys if matched is None else keys.take(matched), source.schema)
    reaching = best.reaching(keys)  # rows of `keys`; None: all
    if reaching is not None and len(reaching) == 0:
        return _Candidates(None, count)
    table = keys if reaching is None else keys.take(reaching)
    # sort_indices is stable, so ties stay in file order, as the page breaks them.
    top = pc.sort_indices(table, sort_keys=_sort_keys(query)[: len(query.sort)])[
        : query.offset + query.limit + 1
    ]
    in_keys = top if reaching is None else reaching.take(top)
    positions = in_keys if matched is None else matched.take(in_keys)
    out = _columns_of(source, row_group, tested, [c for c in early if c not in sort_columns], keep=False)
    picked = pa.table(
        {c: table[c].take(top) for c in sort_columns} | {c: out[c].take(positions) for c in out.column_names}
    )
    picked = _decoded(picked, source.schema).append_column(
        ROW_GROUP, pa.repeat(pa.scalar(row_group, pa.int64()), len(top))
    )
    return _Candidates(picked.append_column(POSITION, pc.cast(positions, pa.int64())), count)


def _columns_of(
    source: ParquetTable, row_group: int, tested: pa.Table | None, columns: list[str], *, keep: bool
) -> pa.Table:
    """`columns` of a row group: those the filter read already, the others read now."""
    have = {c: tested[c] for c in columns if c in tested.column_names} if tested is not None else {}
    missing = [c for c in columns if c not in have]
    read = (
        dict(zip(missing, source.read(row_group, missing, keep=keep).columns, strict=True)) if missing else {}
    )
    return pa.table({c: have[c] if c in have else read[c] for c in columns})


def _sorted_page(source: ParquetTable, p: Plan, query: RowQuery, columns: list[str]) -> tuple[pa.Table, int]:
    row_groups = _row_groups(source, p)
    k = query.offset + query.limit + 1
    # A page of k rows spread over fewer row groups than k touches most of them anyway: its
    # columns are then read with the sort columns, in one pass, rather than in a second one.
    early = columns if k >= len(row_groups) else []
    best = _Best(_sort_keys(query), k)
    bounds = _best_possible(source, row_groups, best.column, best.descending)
    # The most promising row groups first (those without statistics before all), so the bar
    # rises fast; once one cannot reach it, none after it can.
    order = [rg for rg in row_groups if rg not in bounds]
    order += sorted(bounds, key=lambda rg: bounds[rg], reverse=best.descending)
    work = functools.partial(_candidates, source, p=p, query=query, early=early, best=best)
    total = 0
    for i, found in enumerate(_in_order(order, lambda rg: work(rg, bound=bounds.get(rg)))):
        total += found.matched
        if found.table is not None:
            best.add(found.table)
        if not query.count and i + 1 < len(order) and not best.may_reach(bounds.get(order[i + 1])):
            break  # every row group left is out of reach, and no count is asked
    if best.table is None:
        return source.schema.empty_table().select(columns), total
    page = best.table.slice(query.offset, query.limit + 1)
    return _with_columns(source, page, columns), total


def _with_columns(source: ParquetTable, page: pa.Table, columns: list[str]) -> pa.Table:
    """The page's rows in `columns`: those already read are kept, the others are read from
    the row groups the page's rows live in, and only those."""
    missing = [c for c in columns if c not in page.column_names]
    if not missing or page.num_rows == 0:
        return page.select(columns) if page.num_rows else source.schema.empty_table().select(columns)
    groups = pc.unique(page[ROW_GROUP]).to_pylist()
    where = {rg: pc.indices_nonzero(pc.equal(page[ROW_GROUP], rg)) for rg in groups}

    def fetch(rg: int) -> pa.Table:
        positions = page[POSITION].take(where[rg])
        return _decoded(source.read(rg, missing).take(positions), source.schema)

    fetched = pa.concat_tables(list(_POOL.map(fetch, groups)))
    order = pc.sort_indices(pa.concat_arrays([where[rg] for rg in groups]))
    fetched = fetched.take(order)  # back in the page's order
    return pa.table({c: page[c] if c in page.column_names else fetched[c] for c in columns})
