"""Batched counters: downloads and API calls counted without a database write per request
(a download's count reaches daily_counters and Dataset.download_count in the same batch).

An increment is kept in this process's memory, or in Redis when PORTAL_REDIS_URL is set (one
count for every worker process and machine), and added to the daily_counters table in batches:
by the job queue's minute tick (portal/worker.py), every minute by a thread in a web process
that keeps them in memory, and at process exit.

Nothing is lost or counted twice: a flush takes the pending increments away as one batch with
an id (a swap in memory; a RENAME in Redis), adds the batch's deltas with one upsert per key
in one transaction that also records the batch's id, and forgets the batch only after the
commit. A flush that fails halfway rolls back and leaves the batch to the next flush; a batch
whose transaction committed but which was not yet forgotten (the process died in between) is
recognised by its recorded id and not added again.

API tokens' daily quotas are counted here too: in Redis (atomic across workers) or, without
it, in memory seeded from the table (one process only, as the rate limits are).

Redis away for a moment must not fail a download or an API call: an increment Redis refuses
is kept in this process's memory (flushed by the same thread and at exit), and a quota is
counted in memory from the table meanwhile.

A web process with Redis does not ask Redis once per call: its increments wait up to
`send_seconds` (one second) in memory and go to Redis together, in one MULTI/EXEC round trip,
from the same thread (under load a round trip per call was a tenth of a request's time,
docs/benchmarks.md); the rest go with the process's last flush at exit. (A connection lost
after EXEC was sent and before its answer cannot tell whether it was applied: those increments
are then kept for the table, as with any call Redis did not answer.)
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from redis import RedisError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from . import clock
from .models import CounterBatch, DailyCounter, Dataset

if TYPE_CHECKING:
    import redis
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
Key = tuple[str, str, int, int]  # (Beijing day ISO, kind, dataset id or 0, token id or 0)
KINDS = ("download", "api_data", "api_meta")
API_KINDS = ("api_data", "api_meta")
KEEP_BATCH_IDS = dt.timedelta(days=7)
_alive: weakref.WeakSet[Counters] = weakref.WeakSet()


def _encode(key: Key) -> str:
    return "|".join(str(part) for part in key)


def _decode(text: str | bytes) -> Key:
    day, kind, dataset_id, token_id = (text.decode() if isinstance(text, bytes) else text).split("|")
    return day, kind, int(dataset_id), int(token_id)


class Counters:
    """This portal's pending increments (memory or Redis) and their flush into the table."""

    def __init__(self, sessions: sessionmaker[Session], redis_url: str = "", namespace: str = "") -> None:
        self.sessions = sessions
        self.redis: redis.Redis | None = None
        self.prefix = f"portal:{namespace}:counters"  # page_cache.py counts cache hits into its :pending
        if redis_url:
            import redis as redis_module

            # a Redis that stops answering costs a request seconds, not a hang
            self.redis = redis_module.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: Counter[Key] = Counter()
        self._unsent: Counter[Key] = Counter()  # with Redis and send_seconds: not yet in Redis
        self.send_seconds = 0.0  # 0: each increment goes to Redis at once (start_flushing sets it)
        self._batches: dict[str, Counter[Key]] = {}  # taken away, not yet known to be in the table
        self._quota: dict[tuple[int, str], int] = {}
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ counting

    def add(self, kind: str, dataset_id: int | None = None, token_id: int | None = None, n: int = 1) -> None:
        key = (clock.today().isoformat(), kind, dataset_id or 0, token_id or 0)
        if self.redis is not None and self.send_seconds > 0:
            with self._lock:
                self._unsent[key] += n
            return
        if self.redis is not None:
            try:
                self.redis.hincrby(f"{self.prefix}:pending", _encode(key), n)
                return
            except RedisError as exc:  # kept here instead, flushed with this process's own
                log.warning("counters: Redis unavailable, counting in memory: %s", exc)
        with self._lock:
            self._pending[key] += n

    def send(self) -> None:
        """This process's unsent increments into Redis, all in one transaction; if Redis does not
        answer, kept in memory for the table (flush_own)."""
        if self.redis is None:
            return
        with self._lock:
            batch, self._unsent = self._unsent, Counter()
        if not batch:
            return
        try:
            pipe = self.redis.pipeline(transaction=True)
            for key, n in batch.items():
                pipe.hincrby(f"{self.prefix}:pending", _encode(key), n)
            pipe.execute()
        except RedisError as exc:
            log.warning("counters: Redis unavailable, counting in memory: %s", exc)
            with self._lock:
                self._pending.update(batch)

    def pending(self) -> Counter[Key]:
        """Increments not yet in the table (pending and taken batches)."""
        total: Counter[Key] = Counter()
        if self.redis is not None:
            try:
                for name in [f"{self.prefix}:pending", *self.redis.scan_iter(f"{self.prefix}:batch:*")]:
                    for key, n in self.redis.hgetall(name).items():
                        total[_decode(key)] += int(n)
            except RedisError as exc:
                log.warning("counters: Redis unavailable, its pending counts not shown: %s", exc)
        with self._lock:
            total.update(self._pending)
            total.update(self._unsent)
            for batch in self._batches.values():
                total.update(batch)
        return total

    # ------------------------------------------------------------------ flushing

    def flush(self) -> int:
        """Add every pending increment to the table; the number of keys added."""
        with self._flush_lock:
            self.send()
            added = self._flush_memory()
            if self.redis is not None:
                added += self._flush_redis()
            return added

    def flush_own(self) -> int:
        """Only this process's own increments: with Redis, those not yet sent go to it, those
        Redis refused to the table."""
        with self._flush_lock:
            self.send()
            return self._flush_memory()

    def _flush_memory(self) -> int:  # under self._flush_lock
        with self._lock:
            if self._pending:
                self._batches[uuid.uuid4().hex] = self._pending
                self._pending = Counter()
            batches = list(self._batches.items())
        added = 0
        for batch_id, batch in batches:
            self.apply(batch_id, batch)  # raises on failure: the batch stays for the next flush
            with self._lock:
                self._batches.pop(batch_id, None)
            added += len(batch)
        return added

    def _flush_redis(self) -> int:
        import redis as redis_module

        assert self.redis is not None
        with contextlib.suppress(redis_module.ResponseError):  # nothing pending
            self.redis.rename(f"{self.prefix}:pending", f"{self.prefix}:batch:{uuid.uuid4().hex}")
        added = 0
        for name in list(self.redis.scan_iter(f"{self.prefix}:batch:*")):
            text = name.decode() if isinstance(name, bytes) else name
            batch: Counter[Key] = Counter(
                {_decode(key): int(n) for key, n in self.redis.hgetall(text).items()}
            )
            self.apply(text.rsplit(":", 1)[1], batch)
            self.redis.delete(text)
            added += len(batch)
        return added

    def apply(self, batch_id: str, batch: Counter[Key]) -> bool:
        """One transaction: the batch's id and every delta, or nothing. False when the batch
        had already been added (its id is recorded)."""
        with self.sessions() as s:
            try:
                s.add(CounterBatch(id=batch_id))
                s.flush()
            except IntegrityError:
                s.rollback()
                return False
            downloads: Counter[int] = Counter()
            for (day, kind, dataset_id, token_id), n in sorted(batch.items()):
                if n:
                    upsert(s, dt.date.fromisoformat(day), kind, dataset_id, token_id, n)
                if kind == "download" and dataset_id:
                    downloads[dataset_id] += n
            for dataset_id, n in sorted(downloads.items()):  # the dataset page's running total
                s.execute(
                    update(Dataset)
                    .where(Dataset.id == dataset_id)
                    .values(download_count=Dataset.download_count + n)
                )
            s.execute(delete(CounterBatch).where(CounterBatch.flushed_at < clock.now() - KEEP_BATCH_IDS))
            s.commit()
        return True

    def start_flushing(self, seconds: int, send_seconds: float = 1.0) -> None:
        """A daemon thread flushing this process's memory every `seconds`, and a last flush
        when the process exits. With Redis, increments are sent to it every `send_seconds`
        and only what Redis refused is flushed here: the job queue's minute tick flushes Redis
        for every process."""
        if seconds <= 0 or self._thread is not None:
            return
        _alive.add(self)
        stop = threading.Event()
        if self.redis is not None:
            self.send_seconds = send_seconds
        period = min(seconds, send_seconds) if self.redis is not None and send_seconds > 0 else seconds

        def run() -> None:
            last_flush = time.monotonic()
            while not stop.wait(period):
                try:
                    if self.redis is None:
                        self.flush()
                        continue
                    self.send()
                    if time.monotonic() - last_flush >= seconds:
                        last_flush = time.monotonic()
                        self.flush_own()
                except Exception:  # the database away for a moment: the next round retries
                    log.exception("counters: flush failed; kept for the next one")

        self._stop = stop
        self._thread = threading.Thread(target=run, name="portal-counters", daemon=True)
        self._thread.start()

    def stop_flushing(self) -> None:
        """Stop the thread (the process's last flush still happens at exit)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    # ------------------------------------------------------------------ quotas

    def quota_take(self, token_id: int, limit: int) -> int | None:
        """Count one call of the token against today's quota: the calls made today including
        this one, or None (not counted) when the quota is used up."""
        today = clock.today().isoformat()
        if self.redis is not None:
            key = f"{self.prefix}:quota:{token_id}:{today}"
            try:
                used = int(self.redis.incr(key))
                if used == 1:
                    self.redis.expire(key, 2 * 86400)
                refused = used > limit
                if refused:
                    self.redis.decr(key)
                    used -= 1
                with self._lock:  # the last count Redis gave (every process's calls): the fallback's start
                    self._quota = {k: v for k, v in self._quota.items() if k[1] == today}
                    self._quota[(token_id, today)] = used
                return None if refused else used
            except RedisError as exc:
                # This process counts on from the last count Redis gave it for the token (else
                # the table and what it holds): each process allows at most what was left then.
                log.warning("counters: Redis unavailable, quota counted in this process: %s", exc)
        with self._lock:
            if (token_id, today) not in self._quota:
                self._quota = {k: v for k, v in self._quota.items() if k[1] == today}
                self._quota[(token_id, today)] = self._stored_today(token_id, today)
            used = self._quota[(token_id, today)] + 1
            if used > limit:
                return None
            self._quota[(token_id, today)] = used
            return used

    def _stored_today(self, token_id: int, today: str) -> int:
        """Calls of the token today already in the table or pending here (under self._lock)."""
        with self.sessions() as s:
            stored = s.scalar(
                select(func.coalesce(func.sum(DailyCounter.count), 0)).where(
                    DailyCounter.token_id == token_id, DailyCounter.day == dt.date.fromisoformat(today)
                )
            )
        pending = [self._pending, self._unsent, *self._batches.values()]
        return int(stored or 0) + sum(
            n for c in pending for (day, _k, _d, tid), n in c.items() if tid == token_id and day == today
        )


def upsert(s: Session, day: dt.date, kind: str, dataset_id: int, token_id: int, n: int) -> None:
    """count += n for the key, the row made if there is none: one atomic statement."""
    table: Any = DailyCounter.__table__
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # the same API
    statement = insert(table).values(day=day, kind=kind, dataset_id=dataset_id, token_id=token_id, count=n)
    s.execute(
        statement.on_conflict_do_update(
            index_elements=["day", "kind", "dataset_id", "token_id"],
            set_={"count": table.c.count + statement.excluded.count},
        )
    )


@atexit.register
def _flush_at_exit() -> None:
    for counters in list(_alive):
        try:
            # The thread first: a batch it has taken to send must be back before the last flush.
            counters.stop_flushing()
            counters.flush() if counters.redis is None else counters.flush_own()
        except Exception as exc:  # the database gone already: nothing more can be done here
            log.warning(
                "counters: could not flush at exit: %s", str(exc).splitlines()[0] if str(exc) else exc
            )
