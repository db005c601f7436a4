"""Rows of a data table, for the data API: column selection, equality and range filters,
a text match, sorting and paging, answered from the Parquet file with pyarrow.

Filters are pyarrow dataset expressions, so they are pushed down to the Parquet reader:
row groups whose statistics cannot match are skipped, and only the columns needed are read.
Without a sort the scan stops as soon as the page is full.

A Scope says what the asker may see (all of an unconditional table; the granted fields and
rows of a licensed one). It is applied here, under every filter the asker adds, so no
parameter can widen it.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

ROW_CAP = 1000        # rows per call, however many are asked for
DEFAULT_LIMIT = 100
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


class QueryError(ValueError):
    """A parameter the API cannot answer; the message says what to change."""


@dataclass
class Scope:
    fields: list[str] | None = None                 # None: every column
    row_filter: dict[str, list[str]] | None = None  # {"column": ["value", ...]}: only those rows


@dataclass
class RowQuery:
    fields: list[str] | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)        # column → any of these values
    ranges: dict[str, dict[str, str]] = field(default_factory=dict)   # column → {"gte": "10", ...}
    text: str = ""
    sort: list[tuple[str, bool]] = field(default_factory=list)        # (column, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: bool = False


@dataclass
class RowPage:
    schema: pa.Schema
    table: pa.Table
    more: bool
    total: int | None


@functools.lru_cache(maxsize=256)
def _dataset(path: str, mtime_ns: int) -> pads.Dataset:
    """Opening a dataset reads the Parquet footer; files are named by content and never
    rewritten in place, so the opened dataset is kept (the mtime guards a replaced file)."""
    return pads.dataset(path, format="parquet")


def open_table(path: Path) -> pads.Dataset:
    return _dataset(str(path), path.stat().st_mtime_ns)


def visible_columns(schema: pa.Schema, scope: Scope) -> list[str]:
    if scope.fields is None:
        return list(schema.names)
    allowed = set(scope.fields)
    return [n for n in schema.names if n in allowed]


def value_for(arrow_type: pa.DataType, text: str, column: str):  # noqa: ANN201
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
        return pc.cast(pa.array([str(text).strip()]), arrow_type)[0]
    except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise QueryError(f"字段“{column}”的值“{text}”不是 {arrow_type} / "
                         f"value {text!r} of column {column!r} is not a {arrow_type}") from exc


def _check_columns(names: list[str], visible: list[str], what: str) -> None:
    unknown = [n for n in names if n not in visible]
    if unknown:
        raise QueryError(f"没有字段 {', '.join(unknown)}（{what}）/ no such column {', '.join(unknown)} ({what}); "
                         f"columns: {', '.join(visible)}")


def scope_filter(schema: pa.Schema, scope: Scope) -> pc.Expression | None:
    """The grant's rows, compared as text (the row filter is stored as the curator typed it)."""
    expr = None
    for column, values in (scope.row_filter or {}).items():
        if column not in schema.names:
            # A grant naming a column the file no longer has matches nothing, rather than everything.
            return pc.scalar(False)
        hit = pc.field(column).cast(pa.string()).isin([str(v) for v in values])
        expr = hit if expr is None else expr & hit
    return expr


def build_filter(schema: pa.Schema, query: RowQuery, scope: Scope) -> pc.Expression | None:
    visible = visible_columns(schema, scope)
    _check_columns(list(query.equals), visible, "eq")
    _check_columns(list(query.ranges), visible, "range")
    parts: list[pc.Expression] = []
    if (grant_rows := scope_filter(schema, scope)) is not None:
        parts.append(grant_rows)
    for column, values in query.equals.items():
        typed = [value_for(schema.field(column).type, v, column) for v in values]
        parts.append(pc.field(column) == typed[0] if len(typed) == 1 else pc.field(column).isin(typed))
    for column, bounds in query.ranges.items():
        for op, text in bounds.items():
            if op not in RANGE_OPERATORS:
                raise QueryError(f"未知的比较 {op} / unknown comparison {op!r}; use one of {', '.join(RANGE_OPERATORS)}")
            value = value_for(schema.field(column).type, text, column)
            ref = pc.field(column)
            parts.append({"gt": ref > value, "gte": ref >= value, "lt": ref < value, "lte": ref <= value}[op])
    if query.text.strip():
        text_columns = [c for c in visible if pa.types.is_string(schema.field(c).type)
                        or pa.types.is_large_string(schema.field(c).type)]
        if not text_columns:
            return pc.scalar(False)
        words = [w for w in query.text.split() if w]
        for word in words:  # every word somewhere in the row's text columns
            any_column = None
            for c in text_columns:
                hit = pc.match_substring(pc.field(c), word, ignore_case=True)
                any_column = hit if any_column is None else any_column | hit
            parts.append(any_column)
    if not parts:
        return None
    expr = parts[0]
    for p in parts[1:]:
        expr = expr & p
    return expr


def query_rows(path: Path, query: RowQuery, scope: Scope) -> RowPage:
    dataset = open_table(path)
    schema = dataset.schema
    visible = visible_columns(schema, scope)
    columns = query.fields or visible
    _check_columns(columns, visible, "fields")
    _check_columns([c for c, _ in query.sort], visible, "sort")
    if not 0 < query.limit <= ROW_CAP:
        raise QueryError(f"limit 须在 1 到 {ROW_CAP} 之间 / limit must be 1 to {ROW_CAP}")
    if query.offset < 0:
        raise QueryError("offset 不能为负 / offset must not be negative")
    expr = build_filter(schema, query, scope)
    wanted = query.offset + query.limit + 1  # one more tells whether another page follows
    out_schema = pa.schema([schema.field(c) for c in columns])
    if query.sort:
        sort_columns = list(dict.fromkeys(columns + [c for c, _ in query.sort]))
        table = dataset.to_table(columns=sort_columns, filter=expr)
        # A full stable sort: ties keep file order, so pages never overlap or skip a row.
        table = table.sort_by([(c, "descending" if desc else "ascending") for c, desc in query.sort])
        page = table.slice(query.offset, query.limit + 1).select(columns)
    else:
        batches, seen = [], 0
        for batch in dataset.to_batches(columns=columns, filter=expr):
            if batch.num_rows:
                batches.append(batch)
                seen += batch.num_rows
            if seen >= wanted:
                break
        page = pa.Table.from_batches(batches, schema=out_schema).slice(query.offset, query.limit + 1)
    total = dataset.count_rows(filter=expr) if query.count else None
    more = page.num_rows > query.limit
    return RowPage(out_schema, page.slice(0, query.limit), more, total)
