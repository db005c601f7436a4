"""Harvest sources, jobs and their per-entry reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class HarvestSource(Base):
    """Where entries come from: a CKAN action API, or a department's catalog spreadsheet."""

    __tablename__ = "harvest_sources"
    __table_args__ = (UniqueConstraint("kind", "location"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "ckan" | "spreadsheet"
    location: Mapped[str] = mapped_column(Text)  # the API URL, or the spreadsheet's absolute path
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Registered in the admin (portal/catalog/schedules.py); sources first met by `portal
    # harvest` on the command line are "manual" until the bureau gives them a schedule.
    schedule: Mapped[str] = mapped_column(String(20), default="manual")  # manual|daily|weekly|cycle
    schedule_hour: Mapped[int] = mapped_column(default=2)  # Beijing time
    schedule_weekday: Mapped[int] = mapped_column(default=0)  # Monday, for weekly
    enabled: Mapped[bool] = mapped_column(default=True)
    token_sealed: Mapped[str | None] = mapped_column(Text)  # a CKAN token, encrypted; never shown
    last_queued_at: Mapped[datetime | None]  # when the schedule last queued a run

    jobs: Mapped[list[HarvestJob]] = relationship(back_populates="source", order_by="HarvestJob.id")


class HarvestJob(Base):
    """One run of the harvester over one source. Committed when it starts, so a killed run
    stays visible as 'running' and never finished."""

    __tablename__ = "harvest_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("harvest_sources.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|finished|failed
    error: Mapped[str | None] = mapped_column(Text)  # why the source as a whole could not be read
    counts: Mapped[dict] = mapped_column(default=dict)

    source: Mapped[HarvestSource] = relationship(back_populates="jobs")
    entries: Mapped[list[HarvestJobEntry]] = relationship(
        back_populates="job", order_by="HarvestJobEntry.id", cascade="all, delete-orphan"
    )


class HarvestJobEntry(Base):
    __tablename__ = "harvest_job_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("harvest_jobs.id"), index=True)
    source_ref: Mapped[str] = mapped_column(String(200))  # CKAN name or 信息资源代码
    open_class: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[list | None] = mapped_column()  # what was found where (Dataset.hold_details)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))

    job: Mapped[HarvestJob] = relationship(back_populates="entries")
