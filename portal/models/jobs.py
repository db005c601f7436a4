"""Jobs: work the portal does outside a web request (mail, harvests, reindexing, reminders),
one row each. The row is the job's truth — Huey (portal/worker.py) only carries its id to a
worker — so a job written in a transaction exists exactly when that transaction commits, and a
job whose worker was killed is found again by its expired lease (portal/jobs.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # a handler's name (portal/worker.py HANDLERS)
    payload: Mapped[dict] = mapped_column(default=dict)
    # Jobs that would do the same work share a key; a second is not queued while one with the
    # key is unfinished (a daily reminder queued by every worker's scheduler runs once).
    key: Mapped[str | None] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)  # not before (retries wait here)
    lease_until: Mapped[datetime | None]  # a running job whose lease passed lost its worker
    progress: Mapped[dict | None] = mapped_column()  # {"done": n, "total": m, "note": "…"}
    result: Mapped[dict | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)  # the last attempt's error, in words
    requested_by: Mapped[str | None] = mapped_column(String(200))  # an e-mail, "schedule", "cli"
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
