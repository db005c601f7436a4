"""The PostgreSQL backend's per-generation arrays, kept in each worker (as the Whoosh backend
keeps its snapshot): PostgreSQL finds the matching rows through its GIN index and ranks them;
filters, facet counts, sorting and the top-k page are computed here over compact arrays.

Rows are numbered by their position in `ORDER BY name` (the database's collation: the last
tie-breaker of every sort, as `ORDER BY …, d.name` had it). Every write to the index bumps
`portal_search.state.generation` in its own transaction; a search reads the generation and
the matches in one REPEATABLE READ transaction, so the arrays it uses are those of exactly
the rows it matched. A query's matches and ranks are cached per generation (like Whoosh's
postings), bounded by the number of entries kept.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from ..models import OPEN_CLASS_LABELS
from . import FACETS, FacetValue

EPOCH = dt.date(1970, 1, 1)
NO_DATE = np.iinfo(np.int32).max  # sorts after every date: `published DESC NULLS LAST`
CACHE_ENTRIES = 2_000_000  # positions and ranks kept per generation (~24 MB)

Matches = tuple[np.ndarray, np.ndarray]  # positions (int64), and one row of ranks per column


class Snapshot:
    """The facet values, dates and title order of every row of one generation."""

    def __init__(self, generation: int, rows: Sequence[Sequence]) -> None:
        """`rows`: (id, name, title, published, department_name, *FACETS) in name order."""
        self.generation = generation
        columns = list(zip(*rows, strict=True)) if rows else [()] * (5 + len(FACETS))
        ids = np.array(columns[0], dtype=np.int64)
        self.id_order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.id_order]
        self.names: list[str] = list(columns[1])
        # `title COLLATE "C"`: code-point order; equal titles keep name order (stable).
        self.title_rank = np.empty(len(ids), dtype=np.int64)
        self.title_rank[np.argsort(np.array(columns[2], dtype=str), kind="stable")] = np.arange(len(ids))
        days = {d: -(d - EPOCH).days for d in set(columns[3]) if d is not None}
        days[None] = NO_DATE
        self.newest = np.fromiter(map(days.__getitem__, columns[3]), dtype=np.int64, count=len(ids))
        self.values = {facet: sorted(set(columns[5 + i])) for i, facet in enumerate(FACETS)}
        self.ordinals = {
            facet: _ordinals(columns[5 + i], self.values[facet]) for i, facet in enumerate(FACETS)
        }
        self.department_names = dict(zip(columns[5], columns[4], strict=True))
        self.cache: OrderedDict[object, Matches] = OrderedDict()
        self.cached = 0
        self.lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.names)

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of database ids, and which ids are rows of this generation."""
        if not self.size:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        at = np.minimum(np.searchsorted(self.sorted_ids, ids), self.size - 1)
        return self.id_order[at], self.sorted_ids[at] == ids

    def filter_mask(self, filters: Mapping[str, Sequence[str]] | None) -> np.ndarray:
        """Rows whose facet value is one of those selected, for every facet with a selection."""
        mask = np.ones(self.size, dtype=bool)
        for facet, selected in (filters or {}).items():
            if facet in FACETS and selected:
                wanted = [i for i, v in enumerate(self.values[facet]) if v in set(selected)]
                mask &= np.isin(self.ordinals[facet], wanted)
        return mask

    def facets(self, rows: np.ndarray, limit: int) -> dict[str, list[FacetValue]]:
        """Counts over `rows`: most first, ties in code-point order of the value; no empty value."""
        out = {}
        for facet in FACETS:
            values = self.values[facet]
            counts = np.bincount(self.ordinals[facet][rows], minlength=len(values))
            order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] and values[i]]
            out[facet] = [
                FacetValue(values[i], self.label(facet, values[i]), int(counts[i])) for i in order[:limit]
            ]
        return out

    def label(self, facet: str, value: str) -> str:
        if facet == "department":
            return self.department_names.get(value, value)
        if facet == "open_class":
            return OPEN_CLASS_LABELS.get(value, value)
        return value

    @functools.cached_property
    def position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def popularity(self, counts: Mapping[str, int], rows: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.int64)
        for name, n in counts.items():
            i = self.position.get(name)
            if i is not None:
                out[i] = n
        return out[rows]

    def cache_get(self, key: object) -> Matches | None:
        with self.lock:
            found = self.cache.get(key)
            if found is not None:
                self.cache.move_to_end(key)
            return found

    def cache_put(self, key: object, matches: Matches) -> None:
        with self.lock:
            self.cache[key] = matches
            self.cached += matches[1].size + matches[0].size
            while self.cached > CACHE_ENTRIES and len(self.cache) > 1:
                _, (rows, ranks) = self.cache.popitem(last=False)
                self.cached -= ranks.size + rows.size


def _ordinals(column: Sequence[str], values: list[str]) -> np.ndarray:
    """Each row's value as its number in `values` (code-point order, as np.unique had it)."""
    number = {v: i for i, v in enumerate(values)}
    return np.fromiter(map(number.__getitem__, column), dtype=np.int32, count=len(column))


def top_k(keys: list[np.ndarray], want: int) -> np.ndarray:
    """Indices of the `want` smallest, by the first key, then the next …; the last key is
    unique. Only the rows that can still make the page are sorted."""
    return _top(keys, np.arange(len(keys[0])), want)


def _top(keys: list[np.ndarray], idx: np.ndarray, want: int) -> np.ndarray:
    if want <= 0 or not len(idx):
        return idx[:0]
    if len(idx) <= want or len(keys) == 1:
        return idx[np.lexsort([k[idx] for k in reversed(keys)])][:want]
    first = keys[0][idx]
    nth = np.partition(first, want - 1)[want - 1]
    sure, tied = idx[first < nth], idx[first == nth]
    return np.concatenate([_top(keys, sure, len(sure)), _top(keys[1:], tied, want - len(sure))])


def parse(column: str | None, dtype: type) -> np.ndarray:
    """A `string_agg(…, ' ')` of numbers as an array (one text value, not one row per match)."""
    if not column:
        return np.empty(0, dtype=dtype)
    return np.fromstring(column, dtype=np.float64, sep=" ").astype(dtype)
