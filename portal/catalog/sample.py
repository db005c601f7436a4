"""Sample data before applying (样例数据, issue 21 item 4): a conditional dataset's page shows a
synthetic sample of each table — its columns, types, formats and plausible ranges — so an
applicant can judge the data and scope a request without seeing any of it.

What makes it synthetic, column by column, each drawn on its own (so no real row's combination
of values survives):
- identifiers and other text that is mostly unique (ID numbers, licence numbers, names): new
  strings of the same shape — a digit for a digit, a Latin letter for a letter, a Chinese
  character for a Chinese character — never one of the column's real values;
- categories: only values that at least `k` records share (a rarer value could single out its
  few records), drawn in proportion; a column with none shows "—";
- numbers, dates and times: drawn between the column's 5th and 95th percentiles (the extremes
  belong to single records), with the column's own precision.
A row that nevertheless equals a real row is drawn again.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from portal.models import DataTable
    from portal.storage import Storage

SAMPLE_ROWS = 8
SMALLEST_CATEGORY = 10  # k: a category is shown only when at least this many records share it
READ_ROWS = 200_000  # the column statistics read at most this many rows
CATEGORY_SHARE = 0.5  # fewer distinct values than half the rows: a category, not an identifier
# Frequent characters: text that reads as Chinese without being anyone's name or address.
COMMON_HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
    "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反明看原又利比或但质气第向道命"
)


@dataclass(frozen=True)
class Sample:
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    hidden_categories: list[str]  # columns whose every value is shared by fewer than k records
    k: int = SMALLEST_CATEGORY


def sample_of(storage: Storage, table: DataTable, k: int = SMALLEST_CATEGORY) -> Sample:
    """The synthetic sample of a served table (kept per file: the same file gives the same sample)."""
    return _sample(str(storage.local_path(table.parquet_path)), table.row_count, k)


@lru_cache(maxsize=256)
def _sample(path: str, row_count: int, k: int) -> Sample:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    data = next(pf.iter_batches(batch_size=READ_ROWS), None)
    columns = pf.schema_arrow.names
    if data is None or data.num_rows == 0:
        return Sample(columns, [], row_count, [], k)
    # Seeded by the file: the same version shows the same sample (no averaging over reloads).
    rng = random.Random(f"{path}:{row_count}")
    drawn: dict[str, list[Any]] = {}
    hidden = []
    for name in columns:
        values, no_category = _column(data.column(name), rng, k)
        drawn[name] = values
        if no_category:
            hidden.append(name)
    real_rows = {tuple(r.values()) for r in data.to_pylist()}
    rows = []
    for i in range(SAMPLE_ROWS):
        row = {name: drawn[name][i] for name in columns}
        tries = 0
        while tuple(row.values()) in real_rows and tries < 20:  # never a real combination
            row = {name: rng.choice(drawn[name]) for name in columns}
            tries += 1
        rows.append(row)
    return Sample(columns, rows, row_count, hidden, k)


def _column(column: pa.ChunkedArray | pa.Array, rng: random.Random, k: int) -> tuple[list[Any], bool]:
    """SAMPLE_ROWS synthetic values for a column, and whether its categories were all too rare."""
    import pyarrow as pa

    kind = column.type
    values = [v for v in column.to_pylist() if v is not None and v != ""]
    if not values:
        return [None] * SAMPLE_ROWS, False
    if pa.types.is_boolean(kind):
        return _categories(values, rng, k)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _numbers(values, rng, integer=pa.types.is_integer(kind)), False
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return _instants(values, rng), False
    if pa.types.is_time(kind):
        return [dt.time(rng.randrange(24), rng.randrange(60)) for _ in range(SAMPLE_ROWS)], False
    texts = [str(v) for v in values]
    if len(set(texts)) < max(CATEGORY_SHARE * len(texts), 2) and len(texts) >= k:
        return _categories(texts, rng, k)
    if len(texts) < k and not all(_is_code(t) for t in texts):
        return _categories(texts, rng, k)  # too few records to tell a name from a category: hidden
    return _shaped(texts, rng), False


def _categories(values: list, rng: random.Random, k: int) -> tuple[list[Any], bool]:
    from collections import Counter

    counts = {v: n for v, n in Counter(values).items() if n >= k}
    if not counts:
        return ["—"] * SAMPLE_ROWS, True
    kept, weights = list(counts), list(counts.values())
    return rng.choices(kept, weights=weights, k=SAMPLE_ROWS), False


def _between(values: list, rng: random.Random) -> tuple[Any, Any]:
    ordered = sorted(values)
    low = ordered[int(0.05 * (len(ordered) - 1))]
    high = ordered[int(0.95 * (len(ordered) - 1))]
    return low, high


def _numbers(values: list, rng: random.Random, integer: bool) -> list[Any]:
    low, high = _between([float(v) for v in values], rng)
    if integer:
        return [rng.randint(int(low), int(high)) for _ in range(SAMPLE_ROWS)]
    places = max((_places(v) for v in values[:1000]), default=2)
    return [round(rng.uniform(low, high), places) for _ in range(SAMPLE_ROWS)]


def _places(value: Any) -> int:
    text = f"{float(value):.6f}".rstrip("0")
    return min(len(text.split(".")[1]) if "." in text else 0, 6)


def _instants(values: list, rng: random.Random) -> list[Any]:
    low, high = _between(values, rng)
    span = (high - low).total_seconds() if isinstance(low, dt.datetime) else (high - low).days
    out = []
    for _ in range(SAMPLE_ROWS):
        step = rng.uniform(0, span) if span > 0 else 0
        out.append(
            low
            + (dt.timedelta(seconds=step) if isinstance(low, dt.datetime) else dt.timedelta(days=int(step)))
        )
    return out


def _shaped(texts: list[str], rng: random.Random) -> list[str]:
    """New strings in the shape of the column's values: never one of them. A long Chinese text
    keeps its last two characters (店, 公司, 街道: what kind of thing it names, not which)."""
    real = set(texts)
    out = []
    for _ in range(SAMPLE_ROWS):
        model = rng.choice(texts)
        coded = _is_code(model)
        keep = 2 if len(model) >= 6 and all("\u4e00" <= c <= "\u9fff" for c in model[-2:]) else 0
        for _attempt in range(20):
            made = (
                "".join(_like(c, rng, coded) for c in model[: len(model) - keep]) + model[len(model) - keep :]
            )
            if made not in real:
                break
        out.append(made)
    return out


def _is_code(text: str) -> bool:
    """Mostly digits: a code whose letters mark its kind (an ID's check letter X, 鲁DA…)."""
    return sum(c.isdigit() for c in text) > len(text) / 2


def _like(c: str, rng: random.Random, coded: bool = False) -> str:
    if c.isdigit():
        return rng.choice(string.digits)
    if coded:  # a code's letters and characters mark its kind (X, 鲁DA): only its digits vary
        return c
    if "A" <= c <= "Z":
        return rng.choice(string.ascii_uppercase)
    if "a" <= c <= "z":
        return rng.choice(string.ascii_lowercase)
    if "\u4e00" <= c <= "\u9fff":
        return rng.choice(COMMON_HAN)
    return c  # punctuation and separators keep the format (-, /, (, …)
