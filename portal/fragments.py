"""Parts of pages kept rendered in each worker, for everyone the page cache does not serve.

Why: the page cache (portal/page_cache.py) answers anonymous repeat requests from Redis, but a
signed-in reader, a long-tail URL or a portal without Redis pays the whole render: on a dataset
page ~20 ms, of which the catalog's own text (facts, schema, previews, history, related
datasets, API calls) is nearly all, and the same for every reader. So that text is rendered
once and kept here, and each request renders only what is its own around it (the header with
the reader's name, follow buttons, forms with their CSRF tokens, comments).

What a kept part may hold — never anything of one reader: no form with a CSRF token (refused
when stored: `put` checks), no name, no grant unless the key names that grant. The views
decide what goes in a part and put in its key everything the part shows that is not covered by
the generation below (the dataset's row as loaded for this request, the language, today's date
for the acquisition dates, the reader's grant).

When a part is dropped — the same moment a cached page is: a commit that changed anything
public pages show moves a generation (`portal/page_cache.py` `on_public_change`), read once per
request before anything is rendered, and a part is used only at the generation it was rendered
at. With Redis the generation is the page cache's own counter, shared by every process and
machine. Without Redis it is a small file in the instance folder, rewritten after each such
commit by whichever process made it (web worker, harvest, CLI): every process of one machine
sees it. Parts also expire after `seconds` (the page cache's lifetime), which bounds what
changes without an ORM change (counts added in bulk) and what another machine could show.
Memory: at most `max_bytes` of text per process, least recently used dropped first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from markupsafe import Markup

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
T = TypeVar("T")
# A per-session secret must never be kept for everyone (see the module's docstring).
SECRETS = ('name="csrf_token"', 'name="form_nonce"')


class FileGeneration:
    """The generation without Redis: a file in the instance folder, rewritten after a change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.on_lost: Callable[[], None] = lambda: None  # the store's clear(), set by Fragments

    def current(self) -> str:
        try:
            return self.path.read_text() or ""
        except FileNotFoundError:
            return self._start()
        except OSError as exc:
            log.warning("fragment generation unreadable: %s", exc)
            self.on_lost()
            return ""  # nothing is kept or served meanwhile

    def _start(self) -> str:
        """A new instance, or one whose file a failed bump removed: a new random generation (no
        part kept before it can match), made once whichever process comes first."""
        value = secrets.token_hex(8)
        try:
            with open(self.path, "x") as f:
                f.write(value)
        except FileExistsError:
            return self.path.read_text() or ""
        except OSError as exc:  # a full disk: nothing kept until a generation can be written
            log.warning("fragment generation cannot be written: %s", exc)
            return ""
        return value

    def bump(self) -> None:
        # A new random value, written whole: two bumps in one clock tick still differ, and a
        # reader never sees half a file. Called after a commit: a failure must not fail the
        # change, and must not leave the old generation standing (a full disk): the file is
        # removed, which needs no space, and nothing is kept until a new one can be written.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            tmp.write_text(secrets.token_hex(8))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("fragment generation not moved after a commit: %s", exc)
            self.on_lost()
            for leftover in (tmp, self.path):
                with contextlib.suppress(OSError):
                    leftover.unlink()


class RedisGeneration:
    """The page cache's generation in Redis (moved by portal/page_cache.py's listener), shared
    by every process and node, with an epoch: a Redis restarted empty counts from 0 again, and
    a part kept at "7" before must not match "7" after, so the generation is "<epoch>:<count>"
    and a new epoch is drawn whenever Redis has none.

    While Redis is away nothing is kept or served, and this worker forgets what it kept: a
    change committed meanwhile could not move the counter. A bump owed by this process is paid
    before its next answer (until then nothing is kept); one owed by a process that has ended
    is bounded by the parts' lifetime, as the page cache's own entries are."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client, self.key, self.epoch_key = client, key, key + ":epoch"
        self.on_lost: Callable[[], None] = lambda: None  # the store's clear(), set by Fragments
        self.owed = False

    def current(self) -> str:
        import redis as redis_module

        try:
            if self.owed:
                self.client.incr(self.key)
                self.owed = False
            epoch, count = self.client.mget(self.epoch_key, self.key)
            if epoch is None:
                self.client.set(self.epoch_key, secrets.token_hex(8), nx=True)
                epoch = self.client.get(self.epoch_key)
        except redis_module.RedisError as exc:
            log.warning("fragment cache unavailable: %s", exc)
            self.on_lost()
            return ""  # "" is never used as a generation: nothing is kept or served meanwhile
        return f"{_text(epoch)}:{_text(count) or '0'}"

    def bump(self) -> None:
        """After a commit (the page cache's listener calls it) or a change made outside the
        ORM (a restore). The page cache's entries go with it."""
        import redis as redis_module

        try:
            self.client.incr(self.key)
        except redis_module.RedisError as exc:
            # The change is committed and must not be reported as failed.
            log.error("page generation not moved after a commit: %s", exc)
            self.owed = True
            self.on_lost()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


class SharedParts:
    """The second level with Redis: text parts shared by every worker and node, so a page new to
    this worker is rendered once for all of them, not once per worker. Stored as JSON (text and
    which of it is markup), never as pickles; anything else stays in the worker."""

    def __init__(self, client: redis.Redis, namespace: str, seconds: float) -> None:
        self.client, self.prefix, self.seconds = client, f"portal:{namespace}:parts:", seconds

    def _name(self, key: Hashable) -> str:
        return self.prefix + hashlib.sha256(repr(key).encode()).hexdigest()

    def get(self, key: Hashable, generation: str) -> object:
        import redis as redis_module

        try:
            raw = self.client.get(self._name(key))
        except redis_module.RedisError as exc:
            log.warning("shared parts unavailable: %s", exc)
            return MISSING
        if not isinstance(raw, bytes):
            return MISSING
        stored = json.loads(raw)
        return _decoded(stored) if stored.get("generation") == generation else MISSING

    def put(self, key: Hashable, generation: str, value: object) -> None:
        import redis as redis_module

        encoded = _encoded(value)
        if encoded is None:
            return
        try:
            self.client.set(
                self._name(key),
                json.dumps({"generation": generation, **encoded}, ensure_ascii=False),
                ex=max(int(self.seconds), 1),
            )
        except redis_module.RedisError as exc:
            log.warning("shared parts unavailable: %s", exc)


MISSING = object()


def _encoded(value: object) -> dict | None:
    if isinstance(value, str):
        return {"text": [isinstance(value, Markup), str(value)]}
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {"parts": {k: [isinstance(v, Markup), str(v)] for k, v in value.items()}}
    return None  # a data API answer's bytes, a file's facts: this worker only


def _decoded(stored: dict) -> object:
    def one(pair: list) -> str:
        return Markup(pair[1]) if pair[0] else str(pair[1])

    if "text" in stored:
        return one(stored["text"])
    return {k: one(v) for k, v in stored["parts"].items()}


class Fragments:
    """A bounded, thread-safe store of rendered parts, each valid at one generation; with Redis,
    a second level shared by every worker (SharedParts)."""

    STRIPES = 64

    def __init__(
        self,
        generation: FileGeneration | RedisGeneration,
        max_bytes: int,
        seconds: float,
        shared: SharedParts | None = None,
    ) -> None:
        self.generation = generation
        self.max_bytes = max_bytes
        self.seconds = seconds
        self.shared = shared
        self._entries: OrderedDict[Hashable, tuple[str, float, int, object]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        # One render of a key at a time in this process: sixteen threads asking for the same new
        # page would otherwise render it sixteen times, each slowed down by the others.
        # (re-entrant: a part rendered inside another by the same thread must not wait for itself)
        self._rendering = [threading.RLock() for _ in range(self.STRIPES)]
        self.hits = self.misses = 0
        generation.on_lost = self.clear

    def get_or_render(
        self,
        key: Hashable | None,
        generation: str,
        render: Callable[[], T],
        size: Callable[[T], int | None],
        share: bool = True,
    ) -> T:
        """The part kept under `key` at `generation`, or `render()` (then kept). A None key or an
        empty generation (Redis away) renders without keeping. `share=False`: this worker only."""
        if key is None or not generation or self.max_bytes <= 0:
            return render()
        found = self._kept(key, generation)
        if found is not MISSING:
            return found  # type: ignore[return-value]  # stored by this method with its T
        with self._rendering[hash(key) % self.STRIPES]:
            found = self._kept(key, generation)  # rendered by the thread we waited for
            shared = self.shared if share else None
            if found is MISSING and shared is not None:
                found = shared.get(key, generation)
                if found is not MISSING:
                    self._keep(key, generation, found, size(found))  # type: ignore[arg-type]
            if found is not MISSING:
                return found  # type: ignore[return-value]
            self.misses += 1
            value = render()
            nbytes = size(value)
            if nbytes is not None and nbytes < 0:
                log.error("not kept: a part of %r holds a form's CSRF token or nonce", key)
            elif nbytes is not None:
                self._keep(key, generation, value, nbytes)
                if shared is not None:
                    shared.put(key, generation, value)
            return value

    def _kept(self, key: Hashable, generation: str) -> object:
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == generation and found[1] > time.monotonic():
                self._entries.move_to_end(key)
                self.hits += 1
                return found[3]
        return MISSING

    def _keep(self, key: Hashable, generation: str, value: object, nbytes: int | None) -> None:
        if nbytes is None or nbytes < 0:
            return
        # The key is held too: a key with a long query string in it costs as much as a part.
        nbytes += key_size(key)
        if nbytes > self.max_bytes // 8:
            return  # one huge page must not empty the store
        expires = time.monotonic() + self.seconds
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[2]
            self._entries[key] = (generation, expires, nbytes, value)
            self._size += nbytes
            while self._size > self.max_bytes and self._entries:
                _key, (_g, _e, dropped, _v) = self._entries.popitem(last=False)
                self._size -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def drop_where(self, test: Callable[[Hashable], bool]) -> None:
        """Forget the parts whose key passes `test` (benchmarks/render.py: one reader's own)."""
        with self._lock:
            for key in [k for k in self._entries if test(k)]:
                self._size -= self._entries.pop(key)[2]


def key_size(key: object) -> int:
    """What a key holds in memory: its tuples and their strings and numbers."""
    if isinstance(key, tuple):
        return sys.getsizeof(key) + sum(key_size(k) for k in key)
    return sys.getsizeof(key)


def text_size(parts: object) -> int | None:
    """What a part costs in memory (as CPython holds the text: 1, 2 or 4 bytes a character); None
    for what is not text (a redirect: never kept); -1 for text that must not be kept: a form's
    per-session secret in it."""
    if isinstance(parts, str):
        texts = [parts]
    elif isinstance(parts, dict) and all(isinstance(t, str) for t in parts.values()):
        texts = list(parts.values())
    else:
        return None
    if any(secret in text for text in texts for secret in SECRETS):
        return -1
    return sum(sys.getsizeof(t) for t in texts)  # 1, 2 or 4 bytes a character, as CPython holds it
