"""Answers to anonymous readers, kept in Redis until the catalog changes.

Why: most traffic is anonymous reading of the same pages (home, search, dataset pages, the
CKAN and data APIs). Rendering one costs milliseconds of CPU; a worker answering from Redis
costs a fraction of one. On the 2-core load machine this is the difference between
~350 req/s and several times that (docs/benchmarks.md).

What is cached — only all of these at once:
- a GET to a view marked @cacheable (public reading views), answered 200 to a request with
  no session or remember cookie and no Authorization header (a signed-in user, a token
  holder, anyone with a grant is never served from or stored into the cache), with no
  Set-Cookie in the answer; bodies up to 2 MB. Downloads are never marked: their bytes stream.
- under a key of: scheme, host, path and query, the `lang` and `care` cookies, the Accept
  header (DCAT negotiates on it), and today's date (answers state the acquisition date).

When it is dropped — exactly when it must be: every committed transaction that changed a row
of a model public pages show (everything but the logs in NOT_SHOWN) increments a generation
counter in Redis after the commit, in whatever process committed (web worker, harvest, CLI;
the listener is `on_public_change` below with portal/fragments.py's RedisGeneration.bump);
an entry is used only if it was rendered at the current generation, read before rendering.
So a dataset withdrawn, held or reclassified is gone from every cached page the moment its
transaction commits. Entries also expire after PORTAL_PAGE_CACHE_SECONDS (default 60): the
download counts shown on pages change without invalidating (they are counted with a bulk
UPDATE, not an ORM change) and are at most that old.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TYPE_CHECKING, ParamSpec, cast

import redis
from flask import Response, make_response
from flask.typing import ResponseReturnValue
from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker
from werkzeug.http import parse_cookie

from portal import clock

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.datastructures import MultiDict

P = ParamSpec("P")

MARK = "X-Portal-Cacheable"  # set by @cacheable views, removed before the answer leaves
# What an answer counts as (an API call: "kind|dataset id|0", portal/views/api_usage.py): stored
# with the entry and counted again at every hit, into the batched counters' pending hash
# (portal/counters.py, the same key), so calls answered from here are counted too; never sent.
COUNT_HEADER = "X-Portal-Count"
STATUS_HEADER = "X-Page-Cache"  # hit | miss, for operators and tests
MAX_BODY = 2 * 1024 * 1024
# Files stream and are never stored: asking Redis first would be a round trip for nothing on
# every download (under load it alone put downloads' p99 past 1 s, docs/benchmarks.md).
STREAMED = re.compile(r"/dataset/[^/]+/(?:download|bundle)/")
PRIVATE_COOKIES = ("session", "remember_token")
# Headers that belong to one request, not to the page (rate-limit counters of the asker).
NOT_STORED = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after", MARK.lower())
# Models whose rows no cached page shows: changing them must not empty the cache (a download,
# an audit line, a login's timestamp or a harvest log entry is written on every request or entry).
# Cached pages are what anonymous readers see: no account's data is on them.
log = logging.getLogger(__name__)
NOT_SHOWN = {
    "DownloadEvent",
    "AuditEvent",
    "OutboxMessage",
    "HarvestJob",
    "HarvestJobEntry",
    "LicensedDownload",
    "UsageReport",
    "ApiToken",
    "User",
    "DailyCounter",  # flushed every minute: the statistics pages age up to page_cache_seconds instead
    "CounterBatch",
}


def cacheable(view: Callable[P, ResponseReturnValue]) -> Callable[P, Response]:
    """Mark a public reading view's answers as cacheable for anonymous readers."""
    from flask_login import current_user

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        response = make_response(view(*args, **kwargs))
        if response.status_code == 200 and not current_user.is_authenticated:
            response.headers[MARK] = "1"
        return response

    return wrapper


class PageCache:
    """WSGI middleware in front of the Flask app (inside ProxyFix, so host and scheme are the client's)."""

    def __init__(
        self, wsgi_app: WSGIApplication, redis_client: redis.Redis, namespace: str, seconds: int
    ) -> None:
        self.wsgi_app = wsgi_app
        self.redis = redis_client
        self.seconds = seconds
        self.generation_key = generation_key(namespace)
        self.prefix = f"portal:{namespace}:pages:"
        self.counters_key = f"portal:{namespace}:counters:pending"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        if not self._anonymous_read(environ, cookies) or STREAMED.match(environ.get("PATH_INFO", "")):
            return self._strip_mark(environ, start_response)
        key = self.prefix + self._key(environ, cookies)
        try:
            # bytes: the client decodes nothing (redis-py's types also allow str)
            generation, stored = cast("list[bytes | None]", self.redis.mget(self.generation_key, key))
        except redis.RedisError as exc:  # Redis away: render every page, as without a cache
            log.warning("page cache unavailable: %s", exc)
            return self._strip_mark(environ, start_response)
        generation = generation or b"0"
        if stored is not None:
            entry_generation, status, headers, body = _unpack(stored)
            if entry_generation == generation:
                if environ["REQUEST_METHOD"] == "GET":  # a HEAD carries no answer: not a call
                    self._count(headers)
                headers = [(k, v) for k, v in headers if k != COUNT_HEADER]
                start_response(status, [*headers, (STATUS_HEADER, "hit")])
                return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self._render_and_store(environ, start_response, key, generation)

    def _count(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name == COUNT_HEADER:
                try:
                    self.redis.hincrby(f"{self.counters_key}", f"{clock.today().isoformat()}|{value}", 1)
                except redis.RedisError as exc:
                    log.warning("page cache: a call not counted: %s", exc)

    @staticmethod
    def _anonymous_read(environ: WSGIEnvironment, cookies: MultiDict[str, str]) -> bool:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or environ.get("HTTP_AUTHORIZATION"):
            return False
        return not any(name in cookies for name in PRIVATE_COOKIES)

    @staticmethod
    def _key(environ: WSGIEnvironment, cookies: MultiDict[str, str]) -> str:
        parts = [
            environ["wsgi.url_scheme"],
            environ.get("HTTP_HOST", ""),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            cookies.get("lang", ""),
            cookies.get("care", ""),
            environ.get("HTTP_ACCEPT", ""),
            clock.today().isoformat(),
        ]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()

    def _strip_mark(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            return start_response(
                status, [(k, v) for k, v in headers if k not in (MARK, COUNT_HEADER)], exc_info
            )

        return self.wsgi_app(environ, start)

    def _render_and_store(
        self, environ: WSGIEnvironment, start_response: StartResponse, key: str, generation: bytes
    ) -> Iterable[bytes]:
        seen: dict = {}

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            seen.update(status=status, headers=headers)
            kept = [(k, v) for k, v in headers if k not in (MARK, COUNT_HEADER)]
            return start_response(
                status, [*kept, (STATUS_HEADER, "miss")] if (MARK, "1") in headers else kept, exc_info
            )

        body_iter = self.wsgi_app(environ, start)
        headers = seen.get("headers", [])
        if (
            environ["REQUEST_METHOD"] != "GET"
            or (MARK, "1") not in headers
            or not seen["status"].startswith("200")
            or any(k.lower() == "set-cookie" for k, _ in headers)
        ):
            return body_iter  # streamed as it is (downloads, pages of signed-in users, errors)
        try:
            body = b"".join(body_iter)
        finally:
            if hasattr(body_iter, "close"):
                body_iter.close()
        if len(body) <= MAX_BODY:
            stored = [(k, v) for k, v in headers if k.lower() not in NOT_STORED]
            try:
                self.redis.set(key, _pack(generation, seen["status"], stored, body), ex=self.seconds)
            except redis.RedisError as exc:
                log.warning("page cache unavailable: %s", exc)
        return [body]


def _pack(generation: bytes, status: str, headers: list, body: bytes) -> bytes:
    return generation + b"\n" + json.dumps([status, headers]).encode() + b"\n" + body


def _unpack(stored: bytes) -> tuple[bytes, str, list[tuple[str, str]], bytes]:
    generation, meta, body = stored.split(b"\n", 2)
    status, headers = json.loads(meta)
    return generation, status, [tuple(h) for h in headers], body


def mark_public_change(session: Session) -> None:
    """What this transaction changed public pages show though no ORM row says so (the search
    index, brought up to date beside it): move the generation after its commit."""
    session.info["public_change"] = True


def on_public_change(sessions: sessionmaker[Session], callback: Callable[[], None]) -> None:
    """Call `callback` after each commit that changed a row of a model public pages show (the
    page cache's generation; without Redis, the rendered parts' one: portal/fragments.py)."""

    @event.listens_for(sessions, "before_flush")
    def _note_changes(session: Session, _context: UOWTransaction, _instances: object) -> None:
        changed = (*session.new, *session.dirty, *session.deleted)
        if any(type(obj).__name__ not in NOT_SHOWN for obj in changed):
            session.info["public_change"] = True

    @event.listens_for(sessions, "after_commit")
    def _after(session: Session) -> None:
        if session.info.pop("public_change", False):
            callback()

    @event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("public_change", None)


def bump(redis_client: redis.Redis, namespace: str) -> None:
    """Drop every cached page (after a restore or anything done outside the ORM)."""
    redis_client.incr(generation_key(namespace))


def generation_key(namespace: str) -> str:
    return f"portal:{namespace}:pages:generation"
