"""The data sandbox (可用不可见, issue 21): a grant delivered as a sandbox lets its holder run
aggregate queries over the granted part of a dataset; only outputs that pass statistical
disclosure control leave (licenses/disclosure.py, licenses/sandbox.py). Every query and its
result are kept for the department and the bureau."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .accounts import User
from .base import Base, utcnow
from .catalog import Dataset, DataTable
from .licensing import ApplicationItem, Grant

# queued → running → done | refused (the check said no before running) | failed (limits, errors)
QUERY_STATUSES = ("queued", "running", "done", "refused", "failed")
RELEASE_STATUSES = ("pending", "approved", "refused")


class SandboxQuery(Base):
    __tablename__ = "sandbox_queries"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("application_items.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("data_tables.id"))  # which table of the dataset
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sql: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    # Why it was refused or failed, or what was suppressed: a stored message (portal/messages.py).
    message: Mapped[str | None] = mapped_column(Text)
    # The checked query (licenses/disclosure.Plan.to_json): what differencing re-evaluates.
    plan: Mapped[dict | None] = mapped_column()
    # What the holder sees: {"columns": [...], "rows": [[...]], "suppressed": [[row, col, reason]]}.
    result: Mapped[dict | None] = mapped_column()
    # The unsuppressed output, for the department and the bureau only (and for a release).
    raw_result: Mapped[dict | None] = mapped_column()
    # Records behind each released cell, by group key: what later queries are compared with.
    cells: Mapped[dict | None] = mapped_column()
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None]

    grant: Mapped[Grant] = relationship()
    item: Mapped[ApplicationItem] = relationship()
    dataset: Mapped[Dataset] = relationship()
    table: Mapped[DataTable] = relationship()
    user: Mapped[User] = relationship()
    releases: Mapped[list[SandboxRelease]] = relationship(
        back_populates="query", order_by="SandboxRelease.id"
    )


class SandboxRelease(Base):
    """A request to release an output the automatic check could not pass, decided by the
    providing department with reasons."""

    __tablename__ = "sandbox_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("sandbox_queries.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)

    query: Mapped[SandboxQuery] = relationship(back_populates="releases")
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
