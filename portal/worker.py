"""The job queue's engine and the jobs the portal runs (portal/jobs.py keeps their rows).

Huey (https://huey.readthedocs.io) carries job ids from the process that committed them to
worker processes, and runs the schedule. Chosen over RQ, Celery and Dramatiq because it is the
one with an embedded storage: SqliteHuey in the instance folder needs nothing to be started,
so `portal demo` keeps working on a machine with only Python, and RedisHuey (PORTAL_REDIS_URL)
serves any number of `portal worker` processes on any number of machines. Huey hands a task
over by removing it from its queue, so durability, retries with back-off, the lease that finds
a killed worker's job and the job's visible state live in the portal's own `jobs` table.

PORTAL_QUEUE: "" (Redis when PORTAL_REDIS_URL is set, else SQLite in the instance folder),
"sqlite", "redis", or "inline" (run each job in the committing process right after its commit;
the test suite's default)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import clock, jobs
from .models import utcnow

if TYPE_CHECKING:
    from huey import Huey
    from sqlalchemy.orm import Session

    from .context import PortalContext

log = logging.getLogger(__name__)


class JobRun:
    """What a handler gets besides its payload: the context and a way to report progress
    (which also tells the queue its worker is alive)."""

    def __init__(self, ctx: PortalContext, job_id: int, attempt: int) -> None:
        self.ctx, self.job_id, self.attempt = ctx, job_id, attempt
        self._last = float("-inf")  # the first progress is always reported

    def progress(self, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        if now - self._last < 1.0 and done < total:
            return  # at most once a second
        self._last = now
        jobs.heartbeat(
            self.ctx.sessions,
            self.job_id,
            self.ctx.settings.job_lease_seconds,
            {"done": done, "total": total, "note": note[:100]},
        )


class Retry(Exception):
    """Raised by a handler for a failure worth trying again later (a mail server refusing)."""


Handler = Callable[[JobRun, dict], "dict | None"]


@dataclass(frozen=True)
class Kind:
    handler: Handler
    max_attempts: int = 5


KINDS: dict[str, Kind] = {}


def kind(name: str, max_attempts: int = 5) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        KINDS[name] = Kind(handler, max_attempts)
        return handler

    return register


def max_attempts(name: str) -> int:
    return KINDS[name].max_attempts if name in KINDS else 5


# ---------------------------------------------------------------------------- running a job


def run_job(ctx: PortalContext, job_id: int, now: dt.datetime | None = None) -> str:
    """Claim the job and run it once; returns what became of it (for logs and tests). `now`:
    the controllable clock of tick()."""
    claimed = jobs.claim(ctx.sessions, job_id, ctx.settings.job_lease_seconds, now)
    if claimed is None:
        return "not due"  # done, running elsewhere, waiting for a retry, or gone
    spec = KINDS.get(claimed.kind)
    if spec is None:
        jobs.fail(ctx.sessions, job_id, f"unknown job kind {claimed.kind!r}", 0)
        return "failed"
    try:
        result = spec.handler(JobRun(ctx, job_id, claimed.attempt), claimed.payload)
    except Exception as exc:  # every failure is recorded on the job; none is lost
        if not isinstance(exc, Retry):
            log.exception("job %s (%s) failed", job_id, claimed.kind)
        wait = jobs.fail(
            ctx.sessions, job_id, f"{type(exc).__name__}: {exc}", ctx.settings.job_retry_seconds, now
        )
        if wait is not None:
            ctx.queue.enqueue(job_id, delay=wait)
            return "retry"
        return "failed"
    jobs.succeed(ctx.sessions, job_id, result, claimed.attempt)
    return "done"


# ---------------------------------------------------------------------------- the engine


class Queue:
    """Hands committed job ids to workers: through Huey, or (inline) by running them here."""

    def __init__(self, ctx: PortalContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        mode = settings.queue or ("redis" if settings.redis_url else "sqlite")
        self.mode = mode
        self.huey: Huey | None = None
        if mode == "inline":
            return
        name = f"portal-{ctx.cache_namespace}"
        if mode == "redis":
            from huey import RedisHuey

            self.huey = RedisHuey(name, url=settings.redis_url, results=False)
        elif mode == "sqlite":
            from huey import SqliteHuey

            self.huey = SqliteHuey(name, filename=str(settings.instance_path / "queue.db"), results=False)
        else:
            raise ValueError(f"PORTAL_QUEUE must be sqlite, redis or inline, not {mode!r}")
        from huey import crontab

        self._run = self.huey.task(name="portal.run_job")(lambda job_id: run_job(ctx, job_id))
        # Every minute: jobs due again, scheduled harvests, the day's reminders (tick below).
        self.huey.periodic_task(crontab(), name="portal.tick")(lambda: tick(ctx))

    def enqueue(self, job_id: int, delay: float = 0) -> None:
        if self.huey is None:
            if delay <= 0:
                run_job(self.ctx, job_id)
            return  # inline: a retry waits for the next tick()
        if delay > 0:
            self._run.schedule(args=(job_id,), delay=delay)
        else:
            self._run(job_id)

    def consumer(self, workers: int = 2, periodic: bool = True, in_process: bool = False) -> Any:
        """A Huey consumer of this queue: threads, so a worker shares this process's context."""
        assert self.huey is not None, "the inline queue has no workers"
        from huey.consumer import Consumer

        class _InProcess(Consumer):
            def _set_signal_handlers(self) -> None:  # the web server owns the signals
                pass

        cls = _InProcess if in_process else Consumer
        return cls(
            self.huey, workers=workers, periodic=periodic, worker_type="thread", check_worker_health=True
        )


def start_in_process(ctx: PortalContext, workers: int = 2) -> Callable[[], None] | None:
    """`portal serve` and `portal demo`: workers in this process, so nothing else has to run.
    Returns how to stop them (None for the inline queue, which needs none)."""
    if ctx.queue.huey is None:
        return None
    tick(ctx)
    consumer = ctx.queue.consumer(workers=workers, in_process=True)
    consumer.start()
    return lambda: consumer.stop(graceful=True)


def run_worker(ctx: PortalContext, workers: int, periodic: bool) -> None:
    """`portal worker`: run jobs until stopped (SIGINT/SIGTERM: finish the running jobs first)."""
    tick(ctx)  # what a killed worker left, and what fell due while none ran
    ctx.queue.consumer(workers=workers, periodic=periodic).run()


# ---------------------------------------------------------------------------- the schedule

DAILY_AT = dt.time(8, 0)  # Beijing time: reminders arrive at the start of the working day
_tick_lock = threading.Lock()


def tick(ctx: PortalContext, now: dt.datetime | None = None) -> list[int]:
    """Once a minute (and when a worker starts): hand over the jobs that are due — a retry
    whose wait is over, a killed worker's job whose lease ran out —, queue the harvests whose
    schedule has come and the day's reminders. `now` is the controllable clock of the tests.
    Returns the ids handed over."""
    now = (now or utcnow()).astimezone(dt.UTC)  # stored instants are UTC (SQLite keeps no zone)
    with _tick_lock:
        from .catalog.schedules import queue_due_sources

        with ctx.sessions.begin() as s:
            queue_due_sources(s, now)
            local = clock.local(now)
            if local.time() >= DAILY_AT:
                jobs.submit(
                    s,
                    "remind",
                    {"day": local.date().isoformat()},
                    key=f"remind:{local.date().isoformat()}",
                    max_attempts=max_attempts("remind"),
                    requested_by="schedule",
                    once=True,
                )
            _follows_due(s, local)
            if ctx.settings.smtp_url:
                from .mail import queue_unsent

                queue_unsent(s, now)
        try:
            ctx.counters.flush()  # the counted downloads and API calls (portal/counters.py)
        except Exception:  # kept for the next tick; the jobs below must not wait for it
            log.exception("counters: flush failed")
        handed = jobs.due(ctx.sessions, now)
        for job_id in handed:
            if ctx.queue.huey is None:
                run_job(ctx, job_id, now)
            else:
                ctx.queue.enqueue(job_id)
        return handed


def _follows_due(s: Session, local: dt.datetime) -> None:
    """Followers' catch-up check once an hour, and on Mondays the weekly digests."""
    from . import follows

    follows.queue_check(s, key=f"follows:{local:%Y-%m-%dT%H}")
    if local.weekday() == 0 and local.time() >= DAILY_AT:
        day = local.date().isoformat()
        jobs.submit(
            s, "digest", {"day": day}, key=f"digest:{day}", max_attempts=3, requested_by="schedule", once=True
        )


# ---------------------------------------------------------------------------- the jobs


@kind("mail", max_attempts=6)
def _mail(run: JobRun, payload: dict) -> dict | None:
    from . import mail

    smtp_url = run.ctx.settings.smtp_url
    if not smtp_url:
        return {"kept": "outbox"}  # no mail server: the bureau reads the outbox
    error = mail.deliver_one(run.ctx.sessions, payload["message"], smtp_url)
    if error:
        raise Retry(error)
    return None


@kind("follows", max_attempts=3)
def _follows(run: JobRun, payload: dict) -> dict | None:
    """Tell followers what changed since they were last told (portal/follows.py)."""
    from . import follows

    search = run.ctx.search
    with run.ctx.sessions.begin() as s:
        return follows.check(s, search, run.ctx.settings.base_url)


@kind("digest", max_attempts=3)
def _digest(run: JobRun, payload: dict) -> dict | None:
    """The weekly digests of followers who chose them."""
    from . import follows

    with run.ctx.sessions.begin() as s:
        return {"digests": follows.digest(s, utcnow())}


@kind("remind", max_attempts=3)
def _remind(run: JobRun, payload: dict) -> dict | None:
    """The day's reminders, once per day (each reminder is itself sent once)."""
    from .catalog.uploads import forget_stale
    from .deadlines import remind_all
    from .models.forms import forget_done_forms

    day = dt.date.fromisoformat(payload["day"])
    with run.ctx.sessions.begin() as s:
        sent = remind_all(s, today=day, site_url=run.ctx.settings.base_url)
        forgotten = forget_done_forms(s, utcnow() - dt.timedelta(days=30))
        old_jobs = jobs.forget_finished(s, utcnow() - dt.timedelta(days=30))
        uploads = forget_stale(s, run.ctx.uploads_folder, utcnow() - dt.timedelta(days=7))
    _forget_unfetched_licensed_files(run.ctx)
    return {
        "reminders": sent,
        "forms_forgotten": forgotten,
        "jobs_forgotten": old_jobs,
        "uploads_discarded": uploads,
    }


def _forget_unfetched_licensed_files(ctx: PortalContext) -> None:
    """Licensed ZIPs made but never fetched are not kept past a day (licensed data is made for
    one download), nor are yesterday's bundles."""
    import shutil

    day_ago = time.time() - 86400
    for name in ("licensed", "bundles"):
        folder = ctx.storage.cache_path(name)
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry.stat().st_mtime < day_ago:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


@kind("reindex", max_attempts=3)
def _reindex(run: JobRun, payload: dict) -> dict | None:
    from .search.sync import reindex

    n = reindex(run.ctx.sessions, run.ctx.search, progress=lambda done, total: run.progress(done, total))
    return {"indexed": n}


@kind("harvest", max_attempts=2)
def _harvest(run: JobRun, payload: dict) -> dict | None:
    """A registered source harvested (or, dry, harvested into a throwaway copy of the database
    and a scratch folder: the real code decides, nothing is published)."""
    from harvest.run import Harvester, JobReport
    from harvest.sources import CkanSource, SpreadsheetSource

    from .catalog import department_catalog
    from .catalog.schedules import open_registered
    from .db import throwaway
    from .models import HarvestSource
    from .storage import DryRunStorage

    ctx = run.ctx
    dry_run, staged = bool(payload.get("dry_run")), payload.get("staged")
    source: CkanSource | SpreadsheetSource
    with ctx.sessions() as s:
        src = s.get(HarvestSource, payload["source"])
        if src is None:
            return {"error": "source removed"}
        if staged:  # a department's uploaded catalog: checked, or confirmed and made current
            catalog = Path(staged)
            if not dry_run:
                catalog = department_catalog.promote(catalog, ctx.settings.instance_path, src.location)
            source = department_catalog.open_staged(catalog, src.location, ctx.settings.http_timeout)
        else:
            source = open_registered(
                src, ctx.settings.load_secret_key(), ctx.settings.http_timeout, ctx.settings.instance_path
            )
    only = payload.get("department")

    def progress(done: int, total: int, ref: str) -> None:
        run.progress(done, total, ref)

    report: JobReport
    if not dry_run:
        harvester = ctx.harvester()
        harvester.only_department = only
        report = harvester.run(source, progress=progress)
        if report.error:
            raise Retry(report.error)
        return {"harvest_job": report.job_id, "counts": report.counts}
    import tempfile

    with throwaway(ctx.engine) as sessions, tempfile.TemporaryDirectory(prefix="dry-run-files-") as folder:
        dry = Harvester(
            sessions,
            DryRunStorage(ctx.storage, Path(folder)),
            row_group_bytes=ctx.settings.parquet_row_group_bytes,
            timeout=ctx.settings.http_timeout,
            only_department=only,
        )
        report = dry.run(source, progress=progress)
    if report.error:
        raise Retry(report.error)
    changes = [e.as_dict() for e in report.entries if e.action != "unchanged"]
    return {
        "dry_run": True,
        "counts": report.counts,
        "entries": changes[:1000],
        "more": max(len(changes) - 1000, 0),
    }


@kind("check_upload", max_attempts=2)
def _check_upload(run: JobRun, payload: dict) -> dict | None:
    """A department's upload checked in a dry run (portal/catalog/uploads.py)."""
    from .catalog import uploads

    ctx = run.ctx
    try:
        report = uploads.check(
            ctx.engine,
            ctx.storage,
            ctx.uploads_folder,
            payload["upload"],
            ctx.settings.parquet_row_group_bytes,
        )
    except Exception:  # a file no reader understands: said on the report, not retried
        log.exception("upload %s could not be checked", payload["upload"])
        report = {"error": "文件无法读取"}
    uploads.record_check(ctx.sessions, payload["upload"], report)
    return {"status": report.get("status"), "error": report.get("error")}


@kind("publish_upload", max_attempts=2)
def _publish_upload(run: JobRun, payload: dict) -> dict | None:
    """The checked upload made the dataset's new version, for real."""
    from .catalog import uploads
    from .errors import DomainError
    from .models import Upload, User
    from .search.sync import sync

    ctx = run.ctx
    with ctx.sessions() as s:
        upload = s.get_one(Upload, payload["upload"])
        if upload.status != "publishing":
            return {"skipped": upload.status}
        try:
            status = uploads.publish(
                s,
                ctx.storage,
                ctx.uploads_folder,
                s.get_one(User, payload["by"]),
                upload,
                ctx.settings.parquet_row_group_bytes,
            )
        except DomainError as exc:
            s.rollback()
            upload = s.get_one(Upload, payload["upload"])
            upload.status, upload.error = "failed", str(exc.message)
            s.commit()
            return {"error": str(exc.message)}
        s.commit()
    sync(ctx.sessions, ctx.search)
    return {"status": status}


@kind("bundle", max_attempts=3)
def _bundle(run: JobRun, payload: dict) -> dict | None:
    """The day's attribution bundle of a table (data, datapackage.json, ATTRIBUTION.txt)."""
    from .catalog.bundle import build_bundle
    from .models import DataTable

    ctx = run.ctx
    with ctx.sessions() as s:
        table = s.get(DataTable, payload["table"])
        if table is None or not table.distribution.dataset.is_public:
            return {"skipped": "not public"}
        path = build_bundle(
            ctx.storage,
            table.distribution.dataset,
            table,
            dt.date.fromisoformat(payload["day"]),
            # The portal's configured address, never a request's Host header: one bundle a day
            # is served to everyone.
            site=ctx.settings.base_url,
        )
    return {"bytes": path.stat().st_size}


@kind("sandbox_query", max_attempts=2)
def _sandbox_query(run: JobRun, payload: dict) -> dict | None:
    """A sandbox query: checked, run over the granted part only, its output disclosure-checked
    (licenses/sandbox.py). A query runs once: a second delivery finds it no longer queued."""
    from licenses import sandbox

    with run.ctx.sessions() as s:
        status = sandbox.run(s, run.ctx.storage, payload["query"])
        s.commit()
    return {"status": status}


@kind("sandbox_prepare", max_attempts=2)
def _sandbox_prepare(run: JobRun, payload: dict) -> dict | None:
    """A sandbox table's DuckDB copy, made before its first query (licenses/sandbox.py)."""
    from licenses import sandbox

    if payload.get("grant") is None:
        return None
    with run.ctx.sessions() as s:
        sandbox.prepare(s, run.ctx.storage, payload["grant"], payload["table"])
    return None


@kind("licensed_zip", max_attempts=2)
def _licensed_zip(run: JobRun, payload: dict) -> dict | None:
    """A grant holder's licensed ZIP (the granted fields and rows, attribution, agreement),
    made for one download: its path is the job's result, and the file goes once it is sent."""
    from licenses import grants
    from licenses.errors import LicenceError

    from .models import Grant, User

    ctx = run.ctx
    with ctx.sessions() as s:
        grant = s.get_one(Grant, payload["grant"])
        item = next(i for i in grant.application.items if i.id == payload["item"])
        user = s.get_one(User, payload["user"])
        if grant.state() != "valid" or grant.user_id != user.id:
            return {"refused": "grant not valid"}
        try:
            made = grants.build_licensed_zip(
                s, ctx.storage, grant, item, user, payload["site"], ip=payload.get("ip")
            )
        except LicenceError as exc:
            return {"refused": str(exc)}
        s.commit()
    return {"path": str(made.path), "name": made.name}
