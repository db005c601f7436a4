"""Search: a small interface, so the engine can change without touching views.

Two engines answer it: Whoosh (an index folder beside the database; the default) and
PostgreSQL full-text search (a table in the portal's own database; PORTAL_SEARCH_BACKEND=
postgres), chosen by setting. tests/test_search.py runs the same cases on both.

    backend.index(docs)      add or replace datasets
    backend.remove(names)    take datasets out
    backend.rebuild(docs)    replace everything (portal reindex)
    backend.search(query)    hits, total and facet counts

How a query is read (words, sub-words, the synonym list, the character fallback, OR when AND
finds nothing) is decided once, for both engines, in portal/search/plan.py; the synonym list
is the bureau's (portal/search/synonyms.py, a table edited at /admin/synonyms).

Only public datasets (published, unconditional or conditional) are ever given to index();
portal/search/sync.py is the one place that decides, from the database.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..config import Settings

FACETS = ("department", "domain", "open_class", "format", "update_cycle")
SORTS = ("relevance", "newest", "downloads", "name")
# The synonym list as the engines read it: an everyday word → the official words it stands for.
Synonyms = Callable[[], Mapping[str, Sequence[str]]]


@dataclass
class SearchDoc:
    name: str
    title: str
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    department: str = ""  # code (the facet value)
    department_name: str = ""
    domain: str = ""
    open_class: str = ""
    format: str = ""
    update_cycle: str = ""
    fields: list[str] = field(default_factory=list)  # column names
    resource_code: str = ""
    published: dt.date | None = None
    title_en: str = ""  # the department's English title and summary, when given
    summary_en: str = ""

    def shown(self) -> dict:
        """What a hit shows of the dataset, stored with its entry by either engine."""
        return {
            "title": self.title,
            "title_en": self.title_en,
            "summary": self.summary[:600],
            "department": self.department,
            "department_name": self.department_name,
            "domain": self.domain,
            "open_class": self.open_class,
            "format": self.format,
            "update_cycle": self.update_cycle,
        }


@dataclass
class SearchQuery:
    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)  # facet → values (OR within, AND across)
    sort: str = "relevance"
    start: int = 0
    rows: int = 20
    facet_limit: int = 50


@dataclass
class FacetValue:
    value: str
    label: str
    count: int


@dataclass
class Hit:
    name: str
    title: str
    summary: str
    department: str
    department_name: str
    domain: str
    open_class: str
    format: str
    update_cycle: str
    published: dt.date | None
    score: float
    title_html: str  # escaped, with <mark> around matches
    summary_html: str
    title_en: str = ""


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    terms: list[str]
    took_ms: float
    relaxed: bool = False  # no dataset had every word: these have some of them, most first


class SearchBackend(Protocol):
    def index(self, docs: Iterable[SearchDoc]) -> None: ...

    def remove(self, names: Iterable[str]) -> None: ...

    def rebuild(self, docs: Iterable[SearchDoc], progress: Callable[[int], None] | None = None) -> int: ...

    def search(self, query: SearchQuery) -> SearchResult: ...


class CachedCounts:
    """Download counts by dataset name, for the "most downloaded" sort. They change with
    every download; asked again at most every `seconds` (30 s is fresh enough for a sort)."""

    def __init__(self, counts: Callable[[], dict[str, int]] | None, seconds: float = 30.0) -> None:
        self.counts, self.seconds = counts, seconds
        self._at = -seconds
        self._value: dict[str, int] = {}

    def __call__(self) -> dict[str, int]:
        if self.counts is None:
            return {}
        if time.monotonic() - self._at > self.seconds:
            self._value, self._at = self.counts(), time.monotonic()
        return self._value


def open_backend(
    settings: Settings,
    engine: Engine,
    popularity: Callable[[], dict[str, int]] | None = None,
    synonyms: Synonyms | None = None,
) -> SearchBackend:
    """The engine the settings name: `whoosh` (index folder) or `postgres` (the database)."""
    if settings.search_backend == "postgres":
        from .postgres_backend import PostgresBackend

        return PostgresBackend(engine, popularity=popularity, synonyms=synonyms)
    from .whoosh_backend import WhooshBackend

    return WhooshBackend(settings.index_path, popularity=popularity, synonyms=synonyms)
