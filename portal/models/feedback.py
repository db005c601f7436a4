"""The public's voice: error reports (纠错), ratings and comments, data requests (需求征集),
and the showcase of applications built on the data (成果展示)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .accounts import User
from .base import Base, utcnow
from .catalog import Dataset, Department


class ErrorReport(Base):
    """A doubt or an error in a dataset; the provider checks and answers, and the answer is
    public (Zhoucun Art. 16, Changsha Art. 13)."""

    __tablename__ = "error_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[dt.date]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None]

    dataset: Mapped[Dataset] = relationship()
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    stars: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class DataRequest(Base):
    """Anyone asks for data not yet open; the bureau routes it to a department, which answers
    publicly."""

    __tablename__ = "data_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    routed_at: Mapped[datetime | None]
    deadline: Mapped[dt.date | None]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]

    department: Mapped[Department | None] = relationship()
    requester: Mapped[User] = relationship()


class ShowcaseItem(Base):
    """An application built on the data, with its attribution and, for licensed data, the
    licence number, checked against the licence page. Shown only once the bureau approved it
    (status "approved"); its image is stored re-encoded, without the file's metadata."""

    __tablename__ = "showcase"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    attribution: Mapped[str] = mapped_column(Text)
    licence_number: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    hidden: Mapped[bool] = mapped_column(default=False)
    author: Mapped[str | None] = mapped_column(String(100))  # the name shown, besides the account
    image_path: Mapped[str | None] = mapped_column(String(300))  # in storage, a re-encoded image
    status: Mapped[str] = mapped_column(
        String(20), default="pending", index=True
    )  # pending|approved|rejected
    # No foreign key: SQLite adds a constrained column only by rebuilding the table (see 0012).
    reviewed_by_id: Mapped[int | None]
    reviewed_at: Mapped[datetime | None]
    review_reason: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    links: Mapped[list[ShowcaseDataset]] = relationship(cascade="all, delete-orphan")

    @property
    def datasets(self) -> list[Dataset]:
        return [link.dataset for link in self.links]

    @property
    def public_datasets(self) -> list[Dataset]:
        """The linked datasets that are public now: one withdrawn later stops being listed."""
        return [d for d in self.datasets if d.is_public]


class ShowcaseDataset(Base):
    """A dataset a showcase entry uses (picked from the public catalog)."""

    __tablename__ = "showcase_datasets"

    showcase_id: Mapped[int] = mapped_column(ForeignKey("showcase.id"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True, index=True)

    dataset: Mapped[Dataset] = relationship()
