"""The Whoosh backend: Whoosh keeps the index on disk (segments, postings, stored fields,
columns, one writer at a time); the query side is our own, over compact arrays.

Why not Whoosh's searcher with `groupedby` facets: at 100,000 datasets a common word (社区
matches 40% of them) took 605 ms at p95, because scoring and facet counting walk every
matching document in Python. Here:

- each term's postings are read once per index generation, block by block, into numpy
  arrays (docnums and a BM25 contribution) and kept in an LRU cache;
- a query (portal/search/plan.py) scatters those into one dense score vector, weighted,
  and evaluates its clauses as boolean masks: every clause first; when that finds nothing,
  any clause, those matching more clauses first;
- facet counts are `np.bincount` over per-document ordinal arrays read from Whoosh columns
  when the index generation changes;
- sorting takes the top `start + rows` with `np.argpartition`, and only those documents'
  stored fields are read.

Web workers only read. They notice a new commit (the harvest or `portal reindex`) within
`refresh_seconds` and build a new snapshot; searches in flight keep the old one.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh import writing
from whoosh.index import Index
from whoosh.matching import Matcher

from ..models import OPEN_CLASS_LABELS
from . import (
    FACETS,
    CachedCounts,
    FacetValue,
    Hit,
    SearchDoc,
    SearchQuery,
    SearchResult,
    Synonyms,
    whoosh_build,
)
from .plan import All, Any, Node, Term, make_plan, terms
from .text import highlight
from .whoosh_build import EPOCH, SCHEMA, whoosh_document

# Text fields and how much a match in each counts (title bigrams: the character fallback).
BOOSTS = {
    "title": 3.0,
    "title_en": 3.0,
    "tags": 2.0,
    "code": 3.0,
    "summary": 1.0,
    "summary_en": 1.0,
    "department_t": 1.0,
    "domain_t": 1.0,
    "fields": 1.0,
    "chars": 1.0,
}
# A relaxed (OR) query ranks by the number of clauses matched first, then by score.
CLAUSE_RANK = 1e4
# "Look at the index on disk at the next search": earlier than any time.monotonic() (which
# starts near 0 at boot, so 0.0 here once meant "not yet" on a machine up for minutes).
LOOK_NOW = float("-inf")
K1 = 1.2


class _Snapshot:
    """Arrays for one committed generation of the index; immutable once built."""

    def __init__(self, ix: Index) -> None:
        self.searcher = ix.searcher()
        reader = self.searcher.reader()
        self.leaves = list(reader.leaf_readers()) if hasattr(reader, "leaf_readers") else [(reader, 0)]
        self.size = reader.doc_count_all()
        self.live = np.zeros(self.size, dtype=bool)
        for leaf, offset in self.leaves:
            ids = np.fromiter(leaf.all_doc_ids(), dtype=np.int64)
            self.live[ids + offset] = True
        self.n_live = int(self.live.sum())
        self.ordinals: dict[str, np.ndarray] = {}
        self.values: dict[str, list[str]] = {}
        for facet in FACETS:
            column = self._column(facet, "")
            values, inverse = np.unique(np.array(column, dtype=object).astype(str), return_inverse=True)
            self.values[facet] = [str(v) for v in values]
            self.ordinals[facet] = inverse.astype(np.int32)
        self.published = np.array(self._column("published", -1), dtype=np.int32)
        titles = np.array(self._column("title_sort", ""), dtype=object).astype(str)
        self.title_rank = np.empty(self.size, dtype=np.int32)
        self.title_rank[np.argsort(titles, kind="stable")] = np.arange(self.size, dtype=np.int32)
        self.names: list[str] = [str(n) for n in self._column("name", "")]
        self.department_names = dict(
            zip(self._column("department", ""), self._column("department_name", ""), strict=True)
        )
        self.docnum = {name: i for i, name in enumerate(self.names) if self.live[i]}
        self.terms: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _column(self, field: str, default: object) -> list:
        out = [default] * self.size
        for leaf, offset in self.leaves:
            if leaf.has_column(field):
                values = list(leaf.column_reader(field))
                out[offset : offset + len(values)] = values
        return out

    def close(self) -> None:
        self.searcher.close()


class WhooshBackend:
    def __init__(
        self,
        path: str | Path,
        popularity: Callable[[], dict[str, int]] | None = None,
        refresh_seconds: float = 1.0,
        term_cache_size: int = 4096,
        synonyms: Synonyms | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if whoosh_index.exists_in(self.path):
            self.ix = whoosh_index.open_dir(self.path)
            self._add_new_fields()
        else:
            self.ix = whoosh_index.create_in(self.path, SCHEMA)
        self.popularity = CachedCounts(popularity)
        self.synonyms = synonyms or (lambda: {})
        self.refresh_seconds = refresh_seconds
        self.term_cache_size = term_cache_size
        self._snapshot: _Snapshot | None = None
        self._checked_at = LOOK_NOW
        self._lock = threading.Lock()  # building snapshots
        self._io = threading.Lock()  # Whoosh readers share file handles

    def _add_new_fields(self) -> None:
        """An index made by an earlier version lacks fields added since (English, bigrams):
        add them, so it keeps working; `portal reindex` fills them."""
        if not set(SCHEMA.names()) - set(self.ix.schema.names()):
            return
        with self._writer() as writer:
            for name in SCHEMA.names():
                if name not in writer.schema.names():
                    writer.add_field(name, SCHEMA[name])
        self.ix = whoosh_index.open_dir(self.path)

    # ------------------------------------------------------------------ writing

    def _writer(self) -> writing.IndexWriter:
        # One writer at a time (Whoosh's lock); wait for a running one rather than fail.
        return self.ix.writer(timeout=120.0, delay=0.25, limitmb=256)

    def index(self, docs: Iterable[SearchDoc]) -> None:
        docs = list(docs)
        if not docs:
            return
        with self._writer() as writer:
            for doc in docs:
                writer.update_document(**whoosh_document(doc))
        self._checked_at = LOOK_NOW  # this process wrote: its next search looks at once

    def remove(self, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            return
        with self._writer() as writer:
            for name in names:
                writer.delete_by_term("name", name)
        self._checked_at = LOOK_NOW

    def rebuild(self, docs: Iterable[SearchDoc], progress: Callable[[int], None] | None = None) -> int:
        """Replace the whole index: words cut and segments written in one process per core,
        committed without a merge (portal/search/whoosh_build.py). 100,000 datasets: see
        benchmarks/search_build.py and docs/benchmarks.md."""
        procs = max(1, min(os.cpu_count() or 1, 4))
        n = whoosh_build.build(self.ix, docs, procs, progress)
        self._checked_at = LOOK_NOW
        return n

    # ------------------------------------------------------------------ reading

    def look_again(self) -> None:
        """The next search checks the index on disk at once, not after `refresh_seconds`: an
        answer about to be kept (portal/fragments.py) must not come from an index another
        process has just replaced."""
        self._checked_at = LOOK_NOW

    def snapshot(self) -> _Snapshot:
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and now - self._checked_at < self.refresh_seconds:
            return snap
        with self._lock:
            snap = self._snapshot
            self._checked_at = now
            if snap is None or not snap.searcher.up_to_date():
                # Not closed: a search in flight may still use it; it is collected with its files.
                self.ix = whoosh_index.open_dir(self.path)
                snap = self._snapshot = _Snapshot(self.ix)
            return snap

    def _postings(self, snap: _Snapshot, term: str) -> tuple[np.ndarray, np.ndarray]:
        """All documents with `term` in any text field, and the term's score contribution."""
        cached = snap.terms.get(term)
        if cached is not None:
            snap.terms.move_to_end(term)
            return cached
        ids_parts, score_parts = [], []
        n = max(snap.n_live, 1)
        with self._io:
            for field, boost in BOOSTS.items():
                ids, weights = [], []
                for leaf, offset in snap.leaves:
                    if (field, term) not in leaf:
                        continue
                    for block_ids, block_weights in _blocks(leaf.postings(field, term)):
                        ids.append(np.asarray(block_ids, dtype=np.int64) + offset)
                        weights.append(np.asarray(block_weights, dtype=np.float32))
                if not ids:
                    continue
                ids_a, tf = np.concatenate(ids), np.concatenate(weights)
                df = len(ids_a)
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                ids_parts.append(ids_a)
                score_parts.append(boost * idf * tf * (K1 + 1) / (tf + K1))
        if ids_parts:
            all_ids = np.concatenate(ids_parts)
            all_scores = np.concatenate(score_parts).astype(np.float32)
            unique, inverse = np.unique(all_ids, return_inverse=True)
            merged = np.zeros(len(unique), dtype=np.float32)
            np.add.at(merged, inverse, all_scores)
            result = (unique, merged)
        else:
            result = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        snap.terms[term] = result
        if len(snap.terms) > self.term_cache_size:
            snap.terms.popitem(last=False)
        return result

    def _popularity(self, snap: _Snapshot) -> np.ndarray:
        counts = np.zeros(snap.size, dtype=np.int64)
        for name, n in self.popularity().items():
            i = snap.docnum.get(name)
            if i is not None:
                counts[i] = n
        return counts

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        snap = self.snapshot()
        plan = make_plan(query.q, self.synonyms())
        mask = snap.live.copy()
        for facet, selected in (query.filters or {}).items():
            if facet not in snap.ordinals or not selected:
                continue
            wanted = [i for i, v in enumerate(snap.values[facet]) if v in set(selected)]
            mask &= np.isin(snap.ordinals[facet], wanted)
        scores = np.zeros(snap.size, dtype=np.float32)
        relaxed = False
        if plan.clauses:
            masks: dict[str, np.ndarray] = {}
            found = self._matches(snap, plan.strict, masks) & mask
            if found.any():
                self._score(snap, plan.strict, scores)
            elif plan.loose is not None:  # nothing has every word: any clause, words or bigrams; more first
                relaxed = True
                clauses = np.zeros(snap.size, dtype=np.int16)
                for clause in plan.relaxed:
                    clauses += self._matches(snap, clause, masks)
                found = (clauses > 0) & mask
                for clause in plan.required:
                    found &= self._matches(snap, clause, masks)
                self._score(snap, plan.loose, scores)
                scores += clauses.astype(np.float32) * CLAUSE_RANK
            mask = found
        matches = np.flatnonzero(mask)
        facets = {}
        for facet in FACETS:
            counts = np.bincount(snap.ordinals[facet][matches], minlength=len(snap.values[facet]))
            order = np.argsort(-counts, kind="stable")[: query.facet_limit]
            facets[facet] = [
                FacetValue(
                    snap.values[facet][i], self._label(snap, facet, snap.values[facet][i]), int(counts[i])
                )
                for i in order
                if counts[i] and snap.values[facet][i]
            ]
        page = self._page(snap, matches, scores, query)
        with self._io:
            stored = [snap.searcher.stored_fields(int(d)) for d in page]
        words = plan.highlights(relaxed)
        hits = [self._hit(s, float(scores[d]), words) for d, s in zip(page, stored, strict=True)]
        return SearchResult(
            total=len(matches),
            hits=hits,
            facets=facets,
            terms=words,
            relaxed=relaxed,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def _matches(self, snap: _Snapshot, node: Node | None, masks: dict[str, np.ndarray]) -> np.ndarray:
        """The documents a node of the plan matches, as a boolean mask."""
        if isinstance(node, Term):
            mask = masks.get(node.word)
            if mask is None:
                mask = masks[node.word] = np.zeros(snap.size, dtype=bool)
                mask[self._postings(snap, node.word)[0]] = True
            return mask
        if isinstance(node, All):
            out = self._matches(snap, node.parts[0], masks).copy()
            for part in node.parts[1:]:
                out &= self._matches(snap, part, masks)
            return out
        if isinstance(node, Any):
            out = self._matches(snap, node.parts[0], masks).copy()
            for part in node.parts[1:]:
                out |= self._matches(snap, part, masks)
            return out
        return np.zeros(snap.size, dtype=bool)

    def _score(self, snap: _Snapshot, node: Node | None, scores: np.ndarray) -> None:
        """BM25 of every term of the plan a document holds, times the term's weight."""
        for word, weight in terms(node).items():
            ids, contribution = self._postings(snap, word)
            scores[ids] += contribution * np.float32(weight)

    def _page(
        self, snap: _Snapshot, matches: np.ndarray, scores: np.ndarray, query: SearchQuery
    ) -> np.ndarray:
        sort = query.sort if query.sort in ("relevance", "newest", "downloads", "name") else "relevance"
        if sort == "relevance" and not query.q.strip():
            sort = "newest"
        # One key, smaller first; ties broken by newest, then by docnum (stable).
        published = snap.published[matches].astype(np.float64)
        if sort == "relevance":
            key = -scores[matches].astype(np.float64) * 1e6 - published / 1e6
        elif sort == "newest":
            key = -published
        elif sort == "downloads":
            key = -self._popularity(snap)[matches].astype(np.float64) * 1e6 - published / 1e6
        else:
            key = snap.title_rank[matches].astype(np.float64)
        want = query.start + query.rows
        if want <= 0 or not len(matches):
            return matches[:0]
        if len(matches) > want:
            top = np.argpartition(key, want - 1)[:want]
            top = top[np.lexsort((matches[top], key[top]))]
        else:
            top = np.lexsort((matches, key))
        return matches[top][query.start : want]

    @staticmethod
    def _label(snap: _Snapshot, facet: str, value: str) -> str:
        if facet == "department":
            return snap.department_names.get(value, value)
        if facet == "open_class":
            return OPEN_CLASS_LABELS.get(value, value)
        return value

    @staticmethod
    def _hit(stored: dict, score: float, words: list[str]) -> Hit:
        data = stored.get("data") or {}
        published = EPOCH + dt.timedelta(days=data["published"]) if data.get("published", -1) >= 0 else None
        return Hit(
            name=stored["name"],
            title=data.get("title", ""),
            summary=data.get("summary", ""),
            department=data.get("department", ""),
            department_name=data.get("department_name", ""),
            domain=data.get("domain", ""),
            open_class=data.get("open_class", ""),
            format=data.get("format", ""),
            update_cycle=data.get("update_cycle", ""),
            published=published,
            score=score,
            title_html=highlight(data.get("title", ""), words),
            summary_html=highlight(data.get("summary", ""), words),
            title_en=data.get("title_en", ""),
        )


def _blocks(matcher: Matcher) -> Iterator[tuple[Sequence[int], Sequence[float]]]:
    """Postings a block at a time: (ids, weights). Reads Whoosh's W3 leaf matcher's blocks
    directly (its per-posting Python API costs ~1 µs a posting); other matchers fall back."""
    if hasattr(matcher, "_read_ids") and hasattr(matcher, "_next_block"):
        while not matcher._atend:
            matcher._read_ids()
            matcher._read_weights()
            yield matcher._ids, matcher._weights
            matcher._next_block()
        return
    ids: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    yield ids, weights
