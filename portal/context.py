"""PortalContext: what every part of a running portal shares (settings, engine, sessions,
storage, search, the harvester). The web app keeps one in app.extensions['portal']; the CLI,
workers and tests make their own. It is the one place the parts are wired together."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import deployment, jobs
from .config import Settings
from .db import make_engine, make_sessionmaker, upgrade
from .storage import open_storage

if TYPE_CHECKING:
    import redis

    from harvest.run import Harvester

    from .fragments import Fragments
    from .search import SearchBackend
    from .search.synonyms import CachedSynonyms


def redis_client(url: str) -> redis.Redis:
    """The Redis client of the page cache and the kept parts: a Redis that stops answering must
    cost a page seconds, not hang it (redis-py before 8 has no timeout of its own)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class PortalContext:
    """What every part of a running portal shares; kept in app.extensions['portal']."""

    def __init__(self, settings: Settings, *, files_moving: bool = False) -> None:
        import licenses.follow  # noqa: F401  (grants follow their datasets in every process that changes them)
        import portal.follows  # noqa: F401  (and so do followers' notices)

        settings.ensure_dirs()
        self.settings = settings
        self.engine = make_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)
        upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.storage = open_storage(settings)
        self._search: SearchBackend | None = None
        self._synonyms: CachedSynonyms | None = None
        # Which portal this is (portal/deployment.py): checked against this node's secret key and
        # files before anything serves. Portals sharing one Redis keep apart by it: the page
        # cache's namespace is the deployment's identity, however a node spells the database URL.
        self.identity = deployment.check(
            self.sessions, settings.load_secret_key(), self.storage, files_moving=files_moving
        )
        self.cache_namespace = self.identity[:12]
        from .worker import Queue

        # Jobs a transaction queued (mail among them) go to a worker once it commits.
        self.queue = Queue(self)
        jobs.dispatch_after_commit(self.sessions, self.queue.enqueue)
        from .counters import Counters

        # Downloads and API calls, counted in batches (in Redis when there is one).
        self.counters = Counters(self.sessions, settings.redis_url, self.cache_namespace)
        # With Redis, a commit that changed what public pages show moves one generation there
        # (portal/page_cache.py), shared by every process and node: the page cache and the kept
        # parts of pages (portal/fragments.py) are valid only at it. Without Redis the parts
        # use a generation file in the instance folder instead, and there is no page cache.
        self.redis: redis.Redis | None = None  # the page cache's, when it is on
        shared: redis.Redis | None = None
        if settings.redis_url:
            shared = redis_client(settings.redis_url)
            if settings.page_cache_seconds > 0:
                self.redis = shared
        self.fragments = self._fragments(settings, shared)

    def _fragments(self, settings: Settings, shared: redis.Redis | None) -> Fragments:
        from . import page_cache
        from .fragments import FileGeneration, Fragments, RedisGeneration, SharedParts

        # As long as the page cache keeps a page at most: what changes without an ORM change
        # (counts added in bulk) ages no more here than there.
        seconds = settings.page_cache_seconds or 60
        if shared is not None:
            generation = RedisGeneration(shared, page_cache.generation_key(self.cache_namespace))
            page_cache.on_public_change(self.sessions, generation.bump)
            parts = SharedParts(shared, self.cache_namespace, seconds)
            return Fragments(generation, settings.fragment_cache_bytes, seconds, shared=parts)
        on_disk = FileGeneration(Path(settings.instance_path) / "pages.generation")
        page_cache.on_public_change(self.sessions, on_disk.bump)
        return Fragments(on_disk, settings.fragment_cache_bytes, seconds)

    @property
    def search(self) -> SearchBackend:
        """The search backend the settings name (Whoosh by default), opened on first use."""
        if self._search is None:
            from .search import open_backend
            from .search.sync import popularity

            self._search = open_backend(
                self.settings, self.engine, popularity=popularity(self.sessions), synonyms=self.synonyms
            )
        return self._search

    @property
    def synonyms(self) -> CachedSynonyms:
        """The bureau's synonym list as this process's searches read it (cached a few seconds;
        `invalidate()` after an edit made here)."""
        if self._synonyms is None:
            from .search.synonyms import CachedSynonyms

            self._synonyms = CachedSynonyms(self.sessions)
        return self._synonyms

    @property
    def uploads_folder(self) -> Path:
        """Where a department's uploads arrive (portal/catalog/uploads.py)."""
        from .catalog.uploads import folder_for

        return folder_for(
            self.storage, Path(self.settings.uploads_path) if self.settings.uploads_path else None
        )

    def harvester(self) -> Harvester:
        """A harvester that keeps this instance's search index in step."""
        from harvest.run import Harvester

        from .search.sync import sync

        return Harvester(
            self.sessions,
            self.storage,
            row_group_bytes=self.settings.parquet_row_group_bytes,
            timeout=self.settings.http_timeout,
            sync_index=lambda: sync(self.sessions, self.search),
        )
