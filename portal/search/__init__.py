"""Search: a small interface, so another engine can replace Whoosh without touching views.

    backend.index(docs)      add or replace datasets
    backend.remove(names)    take datasets out
    backend.rebuild(docs)    replace everything (portal reindex)
    backend.search(query)    hits, total and facet counts

Only public datasets (published, unconditional or conditional) are ever given to index();
portal/search/sync.py is the one place that decides, from the database.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

FACETS = ("department", "domain", "open_class", "format", "update_cycle")
SORTS = ("relevance", "newest", "downloads", "name")


@dataclass
class SearchDoc:
    name: str
    title: str
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    department: str = ""        # code (the facet value)
    department_name: str = ""
    domain: str = ""
    open_class: str = ""
    format: str = ""
    update_cycle: str = ""
    fields: list[str] = field(default_factory=list)  # column names
    resource_code: str = ""
    published: dt.date | None = None


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
    title_html: str      # escaped, with <mark> around matches
    summary_html: str


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    terms: list[str]
    took_ms: float


class SearchBackend(Protocol):
    def index(self, docs: Iterable[SearchDoc]) -> None: ...

    def remove(self, names: Iterable[str]) -> None: ...

    def rebuild(self, docs: Iterable[SearchDoc], progress: Callable[[int], None] | None = None) -> int: ...

    def search(self, query: SearchQuery) -> SearchResult: ...


def open_backend(index_path, popularity: Callable[[], dict[str, int]] | None = None) -> SearchBackend:  # noqa: ANN001
    from .whoosh_backend import WhooshBackend

    return WhooshBackend(index_path, popularity=popularity)
