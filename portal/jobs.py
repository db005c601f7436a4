"""Jobs as rows: what is queued, claimed, retried and finished, as plain functions over the
portal's database. portal/worker.py runs them (Huey carries the ids to worker processes).

Why a row and not only Huey's queue: Huey's storages (SQLite, Redis) hand a task to a worker
by removing it, so a worker killed mid-task loses it. Here a job is written in the transaction
of what asked for it (a rolled-back step queues nothing), claimed by one worker at a time with
a conditional UPDATE (a lease), and a job whose lease ran out — its worker was killed — is
claimed again by the next sweep. Every handler is written to be run again safely."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import and_, delete, event, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from .models import Job, utcnow
from .models.jobs import DONE, FAILED, QUEUED, RUNNING

PENDING = "portal.jobs.pending"  # Session.info key: ids of the jobs this transaction queued
UNFINISHED = (QUEUED, RUNNING)


def submit(
    s: Session,
    kind: str,
    payload: dict | None = None,
    *,
    key: str | None = None,
    run_after: dt.datetime | None = None,
    max_attempts: int = 5,
    requested_by: str | None = None,
    once: bool = False,
) -> Job:
    """Queue a job in this transaction; a worker gets it once the transaction commits. With a
    key, an unfinished job with the same key is returned instead of a second one (`once`: any
    job with the key, finished or not — the day's reminders)."""
    if key is not None:
        states = (QUEUED, RUNNING, DONE, FAILED) if once else UNFINISHED
        existing = s.scalar(select(Job).where(Job.key == key, Job.state.in_(states)).limit(1))
        if existing is not None:
            return existing
    job = Job(
        kind=kind,
        payload=payload or {},
        key=key,
        run_after=run_after or utcnow(),
        max_attempts=max_attempts,
        requested_by=requested_by,
    )
    s.add(job)
    return job


def dispatch_after_commit(sessions: sessionmaker, enqueue: Callable[[int], None]) -> None:
    """Hand every job a transaction queued to `enqueue` once that transaction has committed."""

    @event.listens_for(sessions, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        ids = [obj.id for obj in session.new if isinstance(obj, Job)]
        if ids:
            session.info.setdefault(PENDING, []).extend(ids)

    @event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(PENDING, None)

    @event.listens_for(sessions, "after_commit")
    def _dispatch(session: Session) -> None:
        for job_id in session.info.pop(PENDING, None) or ():
            enqueue(job_id)


@dataclass(frozen=True)
class Claimed:
    """A job as its worker sees it, detached from any session."""

    id: int
    kind: str
    payload: dict
    attempt: int


def claim(
    sessions: sessionmaker, job_id: int, lease_seconds: float, now: dt.datetime | None = None
) -> Claimed | None:
    """Take the job for this worker if it is due, or its last worker's lease ran out. One
    UPDATE decides, so two workers handed the same id never both run it."""
    now = (now or utcnow()).astimezone(dt.UTC)
    with sessions.begin() as s:
        taken = cast(
            "CursorResult[Any]",
            s.execute(
                update(Job)
                .where(Job.id == job_id, _claimable(now))
                .values(
                    state=RUNNING,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    lease_until=now + dt.timedelta(seconds=lease_seconds),
                )
                .execution_options(synchronize_session=False)
            ),
        )
        if taken.rowcount != 1:
            return None
        job = s.get_one(Job, job_id)
        s.refresh(job)
        return Claimed(job.id, job.kind, dict(job.payload or {}), job.attempts)


def _claimable(now: dt.datetime) -> Any:
    return or_(
        and_(Job.state == QUEUED, Job.run_after <= now),
        and_(Job.state == RUNNING, Job.lease_until < now),
    )


def due(sessions: sessionmaker, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Jobs a worker should be handed now: due and queued (a retry whose wait is over, a job
    whose hand-off was lost), or running under a lease that ran out (a killed worker)."""
    with sessions() as s:
        return list(
            s.scalars(select(Job.id).where(_claimable(now or utcnow())).order_by(Job.id).limit(limit))
        )


def heartbeat(
    sessions: sessionmaker, job_id: int, lease_seconds: float, progress: dict | None = None
) -> None:
    """The worker is alive: extend the lease (and record progress, when given)."""
    values: dict[str, Any] = {"lease_until": utcnow() + dt.timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    with sessions.begin() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == RUNNING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def succeed(sessions: sessionmaker, job_id: int, result: dict | None, attempt: int | None = None) -> None:
    with sessions.begin() as s:
        job = s.get_one(Job, job_id)
        if attempt is not None and job.attempts != attempt:
            return  # its lease ran out and another worker took it over: that run reports
        job.state, job.result, job.error = DONE, result, None
        job.finished_at, job.lease_until = utcnow(), None


def backoff(attempt: int, first_seconds: float) -> float:
    """Seconds before the next attempt: 1, 4, 16, 64 … times the first wait, at most 6 hours."""
    return float(min(first_seconds * 4 ** max(attempt - 1, 0), 6 * 3600))


def fail(
    sessions: sessionmaker,
    job_id: int,
    error: str,
    first_retry_seconds: float,
    now: dt.datetime | None = None,
) -> float | None:
    """Record a failed attempt. Returns the seconds until it is tried again, or None when it
    has had all its attempts (it stays, failed, with its error, for the bureau to see)."""
    now = (now or utcnow()).astimezone(dt.UTC)
    with sessions.begin() as s:
        job = s.get_one(Job, job_id)
        job.error, job.lease_until = error[:300], None  # the first words: a reply body may follow
        if job.attempts >= job.max_attempts:
            job.state, job.finished_at = FAILED, now
            return None
        wait = backoff(job.attempts, first_retry_seconds)
        job.state, job.run_after = QUEUED, now + dt.timedelta(seconds=wait)
        return wait


def retry_now(s: Session, job: Job) -> bool:
    """The bureau asks a failed job to be tried again (its attempts start over). False when the
    same work is already queued or running again."""
    if job.key and s.scalar(select(Job.id).where(Job.key == job.key, Job.state.in_(UNFINISHED)).limit(1)):
        return False
    job.state, job.attempts, job.run_after, job.finished_at = QUEUED, 0, utcnow(), None
    return True


def forget_finished(s: Session, before: dt.datetime) -> int:
    """Remove jobs that finished successfully before `before` (failed ones stay visible)."""
    result = s.execute(delete(Job).where(Job.state == DONE, Job.finished_at < before))
    return cast("CursorResult[Any]", result).rowcount
