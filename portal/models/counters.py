"""Daily counters for the public statistics and the API tokens' quotas (portal/counters.py
keeps the increments in memory or Redis and adds them here in batches)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class DailyCounter(Base):
    """How many times something happened on one Beijing day: a download of a dataset's file
    ("download"), a data API call ("api_data"), a metadata API call ("api_meta"). 0 stands for
    no dataset / no token (NULL would make the upsert's key never match)."""

    __tablename__ = "daily_counters"
    __table_args__ = (
        Index("ix_daily_counters_dataset_day", "dataset_id", "day"),
        Index("ix_daily_counters_token_day", "token_id", "day"),
    )

    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, default=0)
    token_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class CounterBatch(Base):
    """A batch of increments already added to daily_counters: a batch retried after a crash
    between the database's commit and the batch's removal is not added twice."""

    __tablename__ = "counter_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    flushed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
