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
Facet counts come from one aggregate over the matches.

The table lives in its own schema, `portal_search`, created here on first use: it is derived
data the backend owns (as Whoosh owns its folder), rebuilt by `portal reindex`, left out of
backups and of the Alembic models.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

from sqlalchemy import Connection, Engine, Row, TextClause, text

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
)
from .plan import All, Node, Term, make_plan, terms
from .text import bigrams, highlight, tokenize

SCHEMA = "portal_search"
TABLE = f"{SCHEMA}.document"
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
    return {
        "name": doc.name,
        "title": doc.title,
        "title_en": doc.title_en,
        "summary": doc.summary[:600],
        "department": doc.department,
        "department_name": doc.department_name,
        "domain": doc.domain,
        "open_class": doc.open_class,
        "format": doc.format,
        "update_cycle": doc.update_cycle,
        "published": doc.published,
        "words": tsvector_literal(doc),
    }


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
            # A table made by an earlier version: the column added since (`portal reindex` fills it).
            conn.execute(
                text(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS title_en text NOT NULL DEFAULT ''")
            )

    # ------------------------------------------------------------------ writing

    def index(self, docs: Iterable[SearchDoc]) -> None:
        with self.engine.begin() as conn:
            for batch in _batches(docs, 500):
                conn.execute(UPSERT, [_row(d) for d in batch])

    def remove(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            with self.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM {TABLE} WHERE name = ANY(:names)"), {"names": names})

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
        return n

    # ------------------------------------------------------------------ reading

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        plan = make_plan(query.q, self.synonyms())
        where, params = ["true"], {}
        for facet, selected in (query.filters or {}).items():
            if facet in FACETS and selected:
                where.append(f"{facet} = ANY(:filter_{facet})")
                params[f"filter_{facet}"] = list(selected)
        filters = " AND ".join(where)
        relaxed = False
        with self.engine.connect() as conn:
            if not plan.clauses:
                total, facets, _ = self._facets(conn, filters, params, query.facet_limit)
                rows = self._page(conn, filters, params, query, "0")
            else:
                strict = {**params, "tsquery": tsquery(plan.strict)}  # type: ignore[arg-type]
                condition = f"{filters} AND words @@ CAST(:tsquery AS tsquery)"
                total, facets, _ = self._facets(conn, condition, strict, query.facet_limit)
                if total or plan.loose is None:
                    rows = (
                        self._page(
                            conn,
                            condition,
                            strict,
                            query,
                            f"ts_rank('{RANK_WEIGHTS}', words, CAST(:tsquery AS tsquery))",
                        )
                        if total
                        else []
                    )
                else:  # nothing has every word: any clause, words or bigrams; more clauses first
                    relaxed = True
                    loose = {
                        **params,
                        "tsquery": tsquery(plan.loose),
                        **{f"clause_{i}": tsquery(c) for i, c in enumerate(plan.relaxed)},
                    }
                    condition = f"{filters} AND words @@ CAST(:tsquery AS tsquery)"
                    total, facets, df = self._facets(
                        conn, condition, loose, query.facet_limit, len(plan.relaxed)
                    )
                    score = self._relaxed_score(loose, plan.relaxed, df, total)
                    rows = self._page(conn, condition, loose, query, score) if total else []
        words = plan.highlights(relaxed)
        hits = [
            Hit(
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
                score=float(r.score),
                title_html=highlight(r.title, words),
                summary_html=highlight(r.summary, words),
                title_en=r.title_en,
            )
            for r in rows
        ]
        return SearchResult(
            total=total,
            hits=hits,
            facets=facets,
            terms=words,
            relaxed=relaxed,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    @staticmethod
    def _relaxed_score(params: dict, plan_clauses: list[Node], df: list[int], total: int) -> str:
        """Clauses matched × CLAUSE_RANK + each matched clause's rank × how rare it is. ts_rank
        divides an OR's rank by the number of its words, which would sink a clause with many
        alternatives (an entry of the synonym list): multiplied back, it is the sum over the
        words a dataset holds, as Whoosh's score is."""
        parts = []
        for i, n in enumerate(df):
            params[f"idf_{i}"] = math.log(1 + (total - n + 0.5) / (n + 0.5)) * len(terms(plan_clauses[i]))
            clause = f"CAST(:clause_{i} AS tsquery)"
            parts.append(
                f"(CASE WHEN words @@ {clause} THEN {CLAUSE_RANK} + "
                f"CAST(:idf_{i} AS float8) * ts_rank('{RANK_WEIGHTS}', words, {clause}) ELSE 0 END)"
            )
        return " + ".join(parts)

    def _facets(
        self, conn: Connection, condition: str, params: dict, limit: int, clauses: int = 0
    ) -> tuple[int, dict[str, list[FacetValue]], list[int]]:
        """Every facet's counts over the matches, and their total, from one aggregate: counts
        per combination of facet values (hundreds of rows, not one per dataset), summed here.
        (GROUPING SETS, one per facet, took 1.5× as long at 100,000 datasets.) With `clauses`,
        also how many matches each clause of a relaxed query has."""
        per_clause = "".join(
            f", sum(CASE WHEN words @@ CAST(:clause_{i} AS tsquery) THEN 1 ELSE 0 END) AS c{i}"
            for i in range(clauses)
        )
        rows = conn.execute(
            text(
                f"SELECT {', '.join(FACETS)}, department_name, count(*) AS n{per_clause} FROM {TABLE} WHERE {condition} "
                f"GROUP BY {', '.join(FACETS)}, department_name"
            ),
            params,
        ).all()
        counts: dict[str, Counter] = {f: Counter() for f in FACETS}
        department_names = {}
        for row in rows:
            for facet in FACETS:
                counts[facet][getattr(row, facet)] += row.n
            department_names[row.department] = row.department_name
        labels = {"department": department_names, "open_class": OPEN_CLASS_LABELS}
        facets = {}
        for facet in FACETS:
            # Most first; ties in code-point order of the value, as the Whoosh backend does.
            ordered = sorted(((v, n) for v, n in counts[facet].items() if v), key=lambda vn: (-vn[1], vn[0]))
            facets[facet] = [FacetValue(v, labels.get(facet, {}).get(v, v), n) for v, n in ordered[:limit]]
        matched = [sum(int(getattr(row, f"c{i}")) for row in rows) for i in range(clauses)]
        return sum(row.n for row in rows), facets, matched

    def _page(
        self, conn: Connection, condition: str, params: dict, query: SearchQuery, score: str
    ) -> Sequence[Row]:
        sort = query.sort if query.sort in ("relevance", "newest", "downloads", "name") else "relevance"
        if sort == "relevance" and score == "0":
            sort = "newest"
        join, newest = "", "published DESC NULLS LAST"
        order = {
            "relevance": f"score DESC, {newest}",
            "newest": newest,
            "name": 'title COLLATE "C"',
            "downloads": f"coalesce(popular.n, 0) DESC, {newest}",
        }[sort]
        if sort == "downloads":
            counts = self.popularity()
            join = (
                "LEFT JOIN unnest(CAST(:popular_names AS text[]), CAST(:popular_counts AS bigint[])) "
                "AS popular(name, n) ON popular.name = d.name"
            )
            params = {**params, "popular_names": list(counts), "popular_counts": list(counts.values())}
        return conn.execute(
            text(
                f"SELECT d.name, title, title_en, summary, department, department_name, domain, open_class, format, "
                f"update_cycle, published, {score} AS score FROM {TABLE} d {join} WHERE {condition} "
                f"ORDER BY {order}, d.name LIMIT :rows OFFSET :start"
            ),
            {**params, "rows": max(query.rows, 0), "start": max(query.start, 0)},
        ).all()
