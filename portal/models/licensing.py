"""Conditional data (Art. 25): applications, their history, agreements, grants, licensed
downloads and usage reports."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, ForeignKey, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from portal import clock

from ..labels import label
from ..messages import Message
from .accounts import User
from .base import Base, utcnow
from .catalog import AppendOnlyError, Dataset, Department


class Purpose(enum.StrEnum):
    INNOVATION = "innovation"  # 创新发展
    GOVERNANCE = "governance"  # 城市治理
    SOCIAL = "social"  # 社会服务
    RESEARCH = "research"  # 科研教育
    COMMERCIAL = "commercial"  # 商业开发

    @property
    def label(self) -> Message | str:
        return label("purpose", self.value)

    @property
    def route(self) -> str:
        """Art. 25: the purpose decides the route."""
        return {"research": "research", "commercial": "tender"}.get(self.value, "consent")


class AppStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # waiting for the provider
    INFO_REQUESTED = "info_requested"  # returned to the applicant for more information
    APPROVED = "approved"  # agreement offered, waiting for acceptance
    REFUSED = "refused"  # with reasons
    WITHDRAWN = "withdrawn"
    GRANTED = "granted"  # agreement accepted, grant issued
    INTEREST = "interest"  # commercial purpose: interest registered for a tender


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)  # the provider
    purpose: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(20))
    scenario: Mapped[str] = mapped_column(Text)
    security_measures: Mapped[str] = mapped_column(Text)
    period_from: Mapped[dt.date]
    period_until: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Incremented by every transition; a decision applies only to the version it was made on,
    # so two curators deciding at once cannot both succeed.
    version: Mapped[int] = mapped_column(default=1)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[dt.date | None]
    deadline_note: Mapped[str | None] = mapped_column(Text)
    # What the deadline is counted from, so it can be counted again when the calendar changes.
    deadline_start: Mapped[dt.date | None]
    deadline_days: Mapped[int | None]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(
        Text
    )  # reasons of a refusal, question for more information
    approved_from: Mapped[dt.date | None]
    approved_until: Mapped[dt.date | None]
    # How the approved data is delivered (chosen at approval, carried to the grant): "file" or
    # "sandbox" (licenses/sandbox.py).
    delivery: Mapped[str] = mapped_column(String(10), default="file", server_default="file")

    applicant: Mapped[User] = relationship(foreign_keys=[applicant_id])
    department: Mapped[Department] = relationship()
    items: Mapped[list[ApplicationItem]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="ApplicationItem.id"
    )
    events: Mapped[list[ApplicationEvent]] = relationship(
        back_populates="application", order_by="ApplicationEvent.id"
    )
    agreement: Mapped[Agreement | None] = relationship(back_populates="application", uselist=False)
    grant: Mapped[Grant | None] = relationship(back_populates="application", uselist=False)

    @property
    def status_label(self) -> Message | str:
        return label("application_status", self.status)

    @property
    def deadline_words(self) -> object:
        """How the deadline was counted, in the reader's language."""
        from portal.messages import from_stored

        return from_stored(self.deadline_note)

    @property
    def purpose_label(self) -> Message | str:
        return label("purpose", self.purpose)


class ApplicationItem(Base):
    """One dataset of an application: the fields asked for, and what the provider approved
    (fields, and a row filter where only part is given)."""

    __tablename__ = "application_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    fields_requested: Mapped[list | None]  # None: all fields
    fields_approved: Mapped[list | None]
    row_filter: Mapped[dict | None]  # {"column": ["value", ...]}: only those rows

    application: Mapped[Application] = relationship(back_populates="items")
    dataset: Mapped[Dataset] = relationship()


class ApplicationEvent(Base):
    """The application's history (append-only)."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)

    application: Mapped[Application] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class Agreement(Base):
    """The agreement as accepted: text, template version, who, when, from where. Unchangeable."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    template_version: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    accepted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_ip: Mapped[str | None] = mapped_column(String(45))

    application: Mapped[Application] = relationship(back_populates="agreement")


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_number: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    purpose: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date]
    report_every_months: Mapped[int] = mapped_column(default=6)
    # "file": the granted fields and rows are downloaded (licensed ZIP, data API, previews);
    # "sandbox": the data never leaves — only checked aggregates of sandbox queries do.
    delivery: Mapped[str] = mapped_column(String(10), default="file", server_default="file")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    application: Mapped[Application] = relationship(back_populates="grant")
    agreement: Mapped[Agreement] = relationship()
    reports: Mapped[list[UsageReport]] = relationship(back_populates="grant", order_by="UsageReport.id")

    def state(self, today: dt.date | None = None) -> str:
        """valid | suspended (a dataset it covers is not public now: withdrawn, held, awaiting
        a restriction; it resumes when the dataset returns) | revoked (by a person, or ended
        because a dataset became not open: licenses/follow.py) | expired | not_yet_valid."""
        today = today or clock.today()
        if self.revoked_at is not None:
            return "revoked"
        if today > self.valid_until:
            return "expired"
        if today < self.valid_from:
            return "not_yet_valid"
        if any(not item.dataset.is_public for item in self.application.items):
            return "suspended"
        return "valid"


class LicensedDownload(Base):
    __tablename__ = "licensed_downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    bytes: Mapped[int]
    seconds: Mapped[float]
    rows: Mapped[int]


class UsageReport(Base):
    __tablename__ = "usage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    what_built: Mapped[str] = mapped_column(Text)
    where_used: Mapped[str] = mapped_column(Text)

    grant: Mapped[Grant] = relationship(back_populates="reports")


@event.listens_for(ApplicationEvent, "before_update")
@event.listens_for(ApplicationEvent, "before_delete")
@event.listens_for(Agreement, "before_update")
@event.listens_for(Agreement, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _conn: Connection, target: Base) -> None:
    raise AppendOnlyError(f"{type(target).__tablename__} rows are unchangeable")


class CalendarDay(Base):
    """The State Council's holiday schedule as the bureau enters it when published: a holiday
    (workday False) or a make-up working day (workday True). A year with any row is known;
    deadlines falling in it are recounted when it is entered (licenses/workdays.py)."""

    __tablename__ = "calendar_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(unique=True)
    workday: Mapped[bool]
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)


class LicensedFileMark(Base):
    """The fingerprint a grant's licensed files carry for one shape of table (the granted
    columns of one table of the dataset): the order its columns are written in, chosen when
    the grant's file is first built and never changed, and the key of its row order
    (licenses/fingerprint.py). No two grants of the same dataset and columns get the same
    column order while unused orders remain (`reuse` counts how often an order was given
    again once every order had been given)."""

    __tablename__ = "licensed_file_marks"
    __table_args__ = (
        UniqueConstraint(
            "grant_id", "item_id", "columns_key", name="uq_licensed_file_marks_grant_item_columns"
        ),
        UniqueConstraint(
            "dataset_id", "columns_key", "order_key", "reuse", name="uq_licensed_file_marks_order"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("application_items.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    columns_key: Mapped[str] = mapped_column(String(64))  # sha256 of the sorted column names
    column_order: Mapped[list] = mapped_column()  # the granted columns, in this grant's order
    order_key: Mapped[str] = mapped_column(String(64))  # sha256 of column_order
    reuse: Mapped[int] = mapped_column(default=0)
    row_seed: Mapped[str] = mapped_column(String(32))  # the key of the row order (random)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    grant: Mapped[Grant] = relationship()
    item: Mapped[ApplicationItem] = relationship()


class LicensedFileHash(Base):
    """The sha256 of a data file (CSV, Parquet, XLSX) or ZIP as it was served to a grant
    holder: a forwarded, untouched file names its grant with certainty."""

    __tablename__ = "licensed_file_hashes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("application_items.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(10))  # csv | parquet | xlsx | zip
    name: Mapped[str] = mapped_column(Text)  # its name in the ZIP (or the ZIP's)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    grant: Mapped[Grant] = relationship()
