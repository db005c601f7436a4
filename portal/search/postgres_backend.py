"""The PostgreSQL backend: full-text search in the portal's own database.

Why: with several machines behind a load balancer, a Whoosh folder would have to be copied
to each; a table in the shared database is seen by all at once, consistent with the catalog
(a harvest's commit is visible to every worker in the same instant).

Words are made by portal.search.text (rjieba for Chinese, stems for Latin words, codes in
parts) exactly as for Whoosh, and stored as a tsvector written lexeme by lexeme: PostgreSQL's
own parser would cut Chinese wrongly, so it never sees the text. Field weights mirror the
Whoosh boosts: A = title, English title and catalog code (3), B = tags (2), D = summary,
English summary, department, domain, column names, title bigrams (1). A query is the plan of
portal/search/plan.py written as a tsquery: every clause (`&`), each clause its alternatives
(`|`); rank is ts_rank with those weights (term frequency × field weight; unlike Whoosh's BM25
it has no inverse document frequency). When that finds nothing, the relaxed clauses joined by
`|`, ranked by how many clauses a dataset matches, then by each clause's ts_rank weighted by
how rare the clause is among the matches (the inverse document frequency ts_rank lacks).

PostgreSQL only finds the matching rows (GIN index) and ranks them, in one statement that
returns them as two strings (ids, ranks), not one row per match; each worker keeps a query's
matches per index generation (portal_search.state, bumped by every write). Filters, facet
counts, the sort and the page are computed in the worker over per-generation arrays
(portal/search/pg_arrays.py), as the Whoosh backend does; only the page's rows are read.
Aggregating facets and sorting all matches in SQL cost ~150 ms for a word in 40 % of
100,000 datasets; a repeated query now costs a few milliseconds, a new one the GIN scan and
ts_rank over its matches (benchmarks/search.py, docs/benchmarks.md).

The table lives in its own schema, `portal_search`, created here on first use: it is derived
data the backend owns (as Whoosh owns its folder), rebuilt by `portal reindex`, left out of
backups and of the Alembic models.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from itertools import islice

import numpy as np
from sqlalchemy import Connection, Engine, Row, TextClause, text

from . import (
    FACETS,
    CachedCounts,
    FacetValue,
    Hit,
    SearchDoc,
    SearchQuery,
    SearchResult,
    Synonyms,
)
from .pg_arrays import Matches, Snapshot, parse, top_k
from .plan import All, Node, Plan, Term, make_plan, terms
from .text import bigrams, highlight, tokenize

SCHEMA = "portal_search"
TABLE = f"{SCHEMA}.document"
STATE = f"{SCHEMA}.state"  # the index's generation: bumped by every write, in its transaction
BUMP = text(f"UPDATE {STATE} SET generation = generation + 1")
ATTEMPTS = 3  # a search that saw a write commit halfway is done again
# ts_rank's weights for {D, C, B, A}: the same 1 : 2 : 3 as Whoosh's field boosts.
RANK_WEIGHTS = "{0.333, 0.5, 0.667, 1.0}"
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_POSITIONS_PER_WORD = 255
CLAUSE_RANK = 1e4  # a relaxed query: the number of clauses matched first, then the rank


def _create(table: str, suffix: str = "") -> list[str]:
    """The table and its indexes; `suffix` names a table being built beside the live one."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{table}{suffix} (
            name text PRIMARY KEY,
            id bigserial,
            words tsvector NOT NULL,
            title text NOT NULL,
            title_en text NOT NULL DEFAULT '',
            summary text NOT NULL,
            department text NOT NULL,
            department_name text NOT NULL,
            domain text NOT NULL,
            open_class text NOT NULL,
            format text NOT NULL,
            update_cycle text NOT NULL,
            published date)""",
        f"CREATE INDEX IF NOT EXISTS {table}_words{suffix} ON {SCHEMA}.{table}{suffix} USING gin (words)",
        f"CREATE INDEX IF NOT EXISTS {table}_published{suffix} ON {SCHEMA}.{table}{suffix} "
        f"(published DESC NULLS LAST, name)",
    ]


COLUMNS = (
    "name",
    "title",
    "title_en",
    "summary",
    "department",
    "department_name",
    "domain",
    "open_class",
    "format",
    "update_cycle",
    "published",
)


def _upsert(table: str) -> TextClause:
    """Insert or replace documents in `table` (the live one, or one being built)."""
    return text(
        f"INSERT INTO {SCHEMA}.{table} ({', '.join(COLUMNS)}, words) "
        f"VALUES ({', '.join(':' + c for c in COLUMNS)}, CAST(:words AS tsvector)) "
        f"ON CONFLICT (name) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[1:])}, "
        f"words = excluded.words"
    )


UPSERT = _upsert("document")


def _lexeme(word: str) -> str:
    """A word quoted for tsvector/tsquery input, taken as it is (no parser, no dictionary)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery(node: Node) -> str:
    """A plan's node as tsquery text: every word quoted, taken as it is."""
    if isinstance(node, Term):
        return _lexeme(node.word)
    joiner = " & " if isinstance(node, All) else " | "
    return "(" + joiner.join(tsquery(p) for p in node.parts) + ")"


def tsvector_literal(doc: SearchDoc) -> str:
    """`'word':1A,7A 'other':2D …` — each word with its positions and its field's weight."""
    fields = [
        ("A", tokenize(doc.title)),
        ("A", tokenize(doc.title_en)),
        ("A", tokenize(doc.resource_code)),
        ("B", [t for tag in doc.tags for t in tokenize(tag)]),
        ("D", tokenize(doc.summary)),
        ("D", tokenize(doc.summary_en)),
        ("D", tokenize(doc.department_name)),
        ("D", tokenize(doc.domain)),
        ("D", [t for f in doc.fields for t in tokenize(f)]),
        ("D", bigrams(doc.title)),
    ]
    positions: dict[str, list[str]] = {}
    position = 0
    for weight, words in fields:
        for word in words:
            position = min(position + 1, MAX_POSITION)
            at = positions.setdefault(word, [])
            if len(at) < MAX_POSITIONS_PER_WORD:
                at.append(f"{position}{weight}")
    return " ".join(f"{_lexeme(w)}:{','.join(at)}" for w, at in positions.items())


def _row(doc: SearchDoc) -> dict:
    return {"name": doc.name, **doc.shown(), "published": doc.published, "words": tsvector_literal(doc)}


def _batches(items: Iterable, size: int) -> Iterable[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class PostgresBackend:
    def __init__(
        self,
        engine: Engine,
        popularity: Callable[[], dict[str, int]] | None = None,
        synonyms: Synonyms | None = None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the postgres search backend needs a PostgreSQL database")
        self.engine = engine
        self.popularity = CachedCounts(popularity)
        self.synonyms = synonyms or (lambda: {})
        with engine.begin() as conn:
            # Workers start together: one creates the schema, the others wait for it.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('portal_search schema'))"))
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            for statement in _create("document"):
                conn.execute(text(statement))
            # The generation starts from the clock: a schema made again never repeats one seen.
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {STATE} (generation bigint NOT NULL)"))
            conn.execute(
                text(
                    f"INSERT INTO {STATE} SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {STATE})"
                )
            )
            self._upgrade(conn)
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _upgrade(conn: Connection) -> None:
        """A table made by an earlier version: the columns added since (`portal reindex` fills
        title_en; the row ids are numbered here)."""
        missing = set(["title_en", "id"]) - set(
            conn.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = 'document'"
                ),
                {"schema": SCHEMA},
            )
        )
        if "title_en" in missing:
            conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN title_en text NOT NULL DEFAULT ''"))
        if "id" in missing:
            conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN id bigserial"))
        if missing:
            conn.execute(BUMP)

    # ------------------------------------------------------------------ writing

    def index(self, docs: Iterable[SearchDoc]) -> None:
        with self.engine.begin() as conn:
            written = False
            for batch in _batches(docs, 500):
                conn.execute(UPSERT, [_row(d) for d in batch])
                written = True
            if written:
                conn.execute(BUMP)  # last: the state row is locked for an instant only

    def remove(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            with self.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM {TABLE} WHERE name = ANY(:names)"), {"names": names})
                conn.execute(BUMP)

    def rebuild(self, docs: Iterable[SearchDoc], progress: Callable[[int], None] | None = None) -> int:
        """Build a new table beside the old and swap them in one transaction: searches use the
        old index until the commit, and no dead rows are left behind (deleting every row and
        inserting again left the table twice its size until a vacuum, and searches 3× slower).
        The indexes are made once the rows are in: a GIN index filled row by row keeps its
        entries in a pending list until a vacuum, and with a long one the planner chose a
        sequential scan (a one-word query 13 ms instead of 4 ms at 10,000 datasets)."""
        n = 0
        table, *indexes = _create("document", "_new")
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}_new"))
            conn.execute(text(table))
            fill = _upsert("document_new")
            for batch in _batches(docs, 1000):
                conn.execute(fill, [_row(d) for d in batch])
                for _ in batch:
                    n += 1
                    if progress:
                        progress(n)
            for statement in indexes:
                conn.execute(text(statement))
            conn.execute(text(f"ANALYZE {TABLE}_new"))  # the planner's statistics for the new contents
            # From here to the commit searches wait (an exclusive lock), for milliseconds only.
            conn.execute(text(f"DROP TABLE {TABLE}"))
            conn.execute(text(f"ALTER TABLE {TABLE}_new RENAME TO document"))
            conn.execute(text(f"ALTER INDEX {SCHEMA}.document_new_pkey RENAME TO document_pkey"))
            for index in ("document_words", "document_published"):
                conn.execute(text(f"ALTER INDEX {SCHEMA}.{index}_new RENAME TO {index}"))
            conn.execute(BUMP)  # after the swap: the table's lock first, then the state row's
        return n

    # ------------------------------------------------------------------ reading

    def search(self, query: SearchQuery) -> SearchResult:
        """PostgreSQL finds the matches through the GIN index and ranks them (cached per
        generation); filters, facets and the page's order come from the worker's arrays. Every
        statement also reads the generation: one that saw a write commit halfway is redone."""
        started = time.perf_counter()
        plan = make_plan(query.q, self.synonyms())
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Each statement sees the database as of its start: no transaction held open.
            for attempt in range(ATTEMPTS):
                answer = self._answer(conn, plan, query, last=attempt == ATTEMPTS - 1)
                if answer is not None:
                    break
        total, hits, facets, relaxed = answer  # type: ignore[misc]
        return SearchResult(
            total=total,
            hits=hits,
            facets=facets,
            terms=plan.highlights(relaxed),
            relaxed=relaxed,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def _answer(
        self, conn: Connection, plan: Plan, query: SearchQuery, last: bool
    ) -> tuple[int, list[Hit], dict[str, list[FacetValue]], bool] | None:
        """The search in one generation, or None when a write committed during it."""
        snap = self._snapshot(conn)
        matched = self._match(conn, snap, plan, snap.filter_mask(query.filters), last)
        if matched is None:
            return None
        found, scores, relaxed = matched
        order = self._order(snap, found, scores, query, ranked=bool(plan.clauses))
        generation, rows = self._rows(conn, [snap.names[i] for i in found[order]])
        if generation != snap.generation and not last:
            return None
        words = plan.highlights(relaxed)
        page = [(snap.names[i], float(s)) for i, s in zip(found[order], scores[order], strict=True)]
        hits = [_hit(rows[name], score, words) for name, score in page if name in rows]
        return len(found), hits, snap.facets(found, query.facet_limit), relaxed

    def _snapshot(self, conn: Connection) -> Snapshot:
        """This generation's arrays: kept, or read in one statement with the generation."""
        generation = conn.execute(text(f"SELECT generation FROM {STATE}")).scalar_one()
        snap = self._snap
        if snap is not None and snap.generation == generation:
            return snap
        with self._lock:
            snap = self._snap
            if snap is not None and snap.generation == generation:
                return snap
            snap = self._read_snapshot(conn, generation)
            if self._snap is None or snap.generation > self._snap.generation:
                self._snap = snap
        return snap

    @staticmethod
    def _read_snapshot(conn: Connection, generation: int) -> Snapshot:
        """Every row's facets, date and title, in name order (the generation read with them;
        an empty table keeps the one read before: a later statement sees if it moved on)."""
        cursor = conn.connection.cursor()  # plain tuples: 100,000 rows
        try:
            cursor.execute(
                f"SELECT (SELECT generation FROM {STATE}), id, name, title, published, department_name, "
                f"{', '.join(FACETS)} FROM {TABLE} ORDER BY name"
            )
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return Snapshot(rows[0][0] if rows else generation, [r[1:] for r in rows])

    def _match(
        self, conn: Connection, snap: Snapshot, plan: Plan, mask: np.ndarray, last: bool
    ) -> tuple[np.ndarray, np.ndarray, bool] | None:
        """Rows that match (positions), their scores, and whether the search was relaxed."""
        if not plan.clauses:
            found = np.flatnonzero(mask)
            return found, np.zeros(len(found)), False
        strict = self._matches(conn, snap, tsquery(plan.strict), (), last)  # type: ignore[arg-type]
        if strict is None:
            return None
        rows, ranks = strict
        keep = mask[rows]
        if keep.any() or plan.loose is None:
            return rows[keep], ranks[0][keep], False
        loose = self._relaxed(conn, snap, plan, mask, last)
        return None if loose is None else (*loose, True)

    def _relaxed(
        self, conn: Connection, snap: Snapshot, plan: Plan, mask: np.ndarray, last: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Nothing has every word: any clause, words or bigrams. Clauses matched × CLAUSE_RANK +
        each matched clause's rank × how rare it is among the matches (in float8, in the order
        PostgreSQL added them up). ts_rank divides an OR's rank by the number of its words,
        which would sink a clause with many alternatives (an entry of the synonym list):
        multiplied back, it is the sum over the words a dataset holds, as Whoosh's score is."""
        clauses = tuple(tsquery(c) for c in plan.relaxed)
        matches = self._matches(conn, snap, tsquery(plan.loose), clauses, last)  # type: ignore[arg-type]
        if matches is None:
            return None
        keep = mask[matches[0]]
        rows, ranks = matches[0][keep], matches[1][:, keep]
        scores = np.zeros(len(rows))
        for i, clause in enumerate(plan.relaxed):
            held = ranks[i] >= 0
            n = int(held.sum())
            idf = math.log(1 + (len(rows) - n + 0.5) / (n + 0.5)) * len(terms(clause))
            rank = ranks[i].astype(np.float32).astype(np.float64)  # ts_rank's float4, as float8
            scores = scores + np.where(held, CLAUSE_RANK + idf * rank, 0.0)
        return rows, scores

    def _matches(
        self, conn: Connection, snap: Snapshot, query: str, clauses: tuple[str, ...], last: bool
    ) -> Matches | None:
        """The rows matching `query` and their ranks: ts_rank of the query, or with `clauses`
        each clause's (-1 where it does not match). None: read in another generation (unless
        `last`: then the rows the snapshot knows, not kept)."""
        key = (query, clauses)
        cached = snap.cache_get(key)
        if cached is not None:
            return cached
        ranks = (
            [f"ts_rank('{RANK_WEIGHTS}', words, CAST(:q AS tsquery))"]
            if not clauses
            else [
                f"CASE WHEN words @@ CAST(:c{i} AS tsquery) "
                f"THEN ts_rank('{RANK_WEIGHTS}', words, CAST(:c{i} AS tsquery)) ELSE -1 END"
                for i in range(len(clauses))
            ]
        )
        row = conn.execute(
            text(
                f"SELECT (SELECT generation FROM {STATE}), string_agg(id::text, ' ')"
                + "".join(f", string_agg(({r})::text, ' ')" for r in ranks)
                + f" FROM {TABLE} WHERE words @@ CAST(:q AS tsquery)"
            ),
            {"q": query, **{f"c{i}": c for i, c in enumerate(clauses)}},
        ).one()
        if row[0] != snap.generation and not last:
            return None
        rows, known = snap.positions(parse(row[1], np.int64))
        found = (rows[known], np.stack([parse(r, np.float64) for r in row[2:]])[:, known])
        if row[0] == snap.generation:
            snap.cache_put(key, found)
        return found

    def _order(
        self, snap: Snapshot, found: np.ndarray, scores: np.ndarray, query: SearchQuery, ranked: bool
    ) -> np.ndarray:
        """Indices into `found` of the page: the order `ORDER BY …, d.name LIMIT … OFFSET` gave."""
        sort = query.sort if query.sort in ("relevance", "newest", "downloads", "name") else "relevance"
        if sort == "relevance" and not ranked:
            sort = "newest"
        newest = snap.newest[found]
        if sort == "relevance":
            keys = [-scores, newest, found]
        elif sort == "newest":
            keys = [newest, found]
        elif sort == "downloads":
            keys = [-snap.popularity(self.popularity(), found), newest, found]
        else:
            keys = [snap.title_rank[found]]
        start = max(query.start, 0)
        return top_k(keys, start + max(query.rows, 0))[start:]

    @staticmethod
    def _rows(conn: Connection, names: list[str]) -> tuple[int, dict[str, Row]]:
        """The page's rows by name, and the generation they were read in."""
        rows = conn.execute(
            text(
                f"SELECT s.generation, d.name, title, title_en, summary, department, department_name, domain, "
                f"open_class, format, update_cycle, published FROM {STATE} s "
                f"LEFT JOIN {TABLE} d ON d.name = ANY(:names)"
            ),
            {"names": names},
        ).all()
        return rows[0].generation, {r.name: r for r in rows if r.name is not None}


def _hit(r: Row, score: float, words: list[str]) -> Hit:
    return Hit(
        name=r.name,
        title=r.title,
        summary=r.summary,
        department=r.department,
        department_name=r.department_name,
        domain=r.domain,
        open_class=r.open_class,
        format=r.format,
        update_cycle=r.update_cycle,
        published=r.published,
        score=score,
        title_html=highlight(r.title, words),
        summary_html=highlight(r.summary, words),
        title_en=r.title_en,
    )
