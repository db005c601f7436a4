"""Commercial licences by competitive award (Art. 25: 公开招标等竞争性方式)."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ForeignKey, LargeBinary, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from ..labels import label
from ..messages import Message
from .accounts import User
from .base import Base, as_utc, utcnow
from .catalog import AppendOnlyError, Dataset, Department


class TenderStatus(enum.StrEnum):
    OPEN = "open"  # announced; bids accepted until closes_at
    EVALUATING = "evaluating"  # closed: bids opened, evaluators score
    FAILED = "failed"  # 流标: fewer valid bids than the minimum; may be re-opened
    AWARDED = "awarded"  # award notice published; standstill for objections
    CONCLUDED = "concluded"  # winner's application made: agreement and grant as in licensing
    CANCELLED = "cancelled"


class Tender(Base):
    __tablename__ = "tenders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))  # the providing department
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default=TenderStatus.OPEN.value, index=True)
    announcement: Mapped[str] = mapped_column(Text)
    licence_months: Mapped[int]
    territory: Mapped[str] = mapped_column(String(200))
    qualifications: Mapped[str] = mapped_column(Text)
    # [{"key": "plan", "name": "开发方案", "weight": 40}, ...]; weights add up to 100
    criteria: Mapped[list]
    tie_rule: Mapped[str] = mapped_column(Text)
    min_bids: Mapped[int] = mapped_column(default=2)
    standstill_working_days: Mapped[int] = mapped_column(default=5)
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    round: Mapped[int] = mapped_column(default=1)  # a failed tender re-opened starts a new round
    winner_bid_id: Mapped[int | None]  # a Bid id; no foreign key: tenders and bids would reference each other
    awarded_at: Mapped[datetime | None]
    standstill_until: Mapped[dt.date | None]
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))  # the winner's
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department] = relationship()
    datasets: Mapped[list[TenderDataset]] = relationship(
        back_populates="tender", cascade="all, delete-orphan"
    )
    bids: Mapped[list[Bid]] = relationship(
        back_populates="tender", foreign_keys="Bid.tender_id", order_by="Bid.id"
    )
    questions: Mapped[list[TenderQuestion]] = relationship(
        back_populates="tender", order_by="TenderQuestion.id"
    )
    events: Mapped[list[TenderEvent]] = relationship(back_populates="tender", order_by="TenderEvent.id")
    evaluators: Mapped[list[Evaluator]] = relationship(back_populates="tender")
    objections: Mapped[list[Objection]] = relationship(back_populates="tender", order_by="Objection.id")

    @property
    def status_label(self) -> Message | str:
        return label("tender_status", self.status)

    @property
    def window_closed(self) -> bool:
        """The bidding window has ended (the bureau may close and open the bids)."""
        return as_utc(self.closes_at) <= utcnow()


class TenderDataset(Base):
    __tablename__ = "tender_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    fields: Mapped[list | None]  # None: all fields

    tender: Mapped[Tender] = relationship(back_populates="datasets")
    dataset: Mapped[Dataset] = relationship()


class Bid(Base):
    """A sealed bid: its content is encrypted until the tender closes (licenses/tenders.py);
    the receipt is the SHA-256 of the exact content, given to the bidder at submission."""

    __tablename__ = "bids"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    round: Mapped[int] = mapped_column(default=1)
    bidder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(
        String(20), default="submitted"
    )  # submitted | replaced | withdrawn | void
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    receipt: Mapped[str] = mapped_column(String(64), unique=True)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)

    tender: Mapped[Tender] = relationship(back_populates="bids", foreign_keys=[tender_id])
    bidder: Mapped[User] = relationship()


class TenderQuestion(Base):
    """Questions and clarifications: public to all bidders."""

    __tablename__ = "tender_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]

    tender: Mapped[Tender] = relationship(back_populates="questions")


class Evaluator(Base):
    __tablename__ = "tender_evaluators"
    __table_args__ = (UniqueConstraint("tender_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    declared_no_conflict_at: Mapped[datetime]

    tender: Mapped[Tender] = relationship(back_populates="evaluators")
    user: Mapped[User] = relationship()


class Score(Base):
    __tablename__ = "tender_scores"
    __table_args__ = (UniqueConstraint("bid_id", "evaluator_id", "criterion"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(ForeignKey("bids.id"), index=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    criterion: Mapped[str] = mapped_column(String(30))
    score: Mapped[float]  # 0–100
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Objection(Base):
    __tablename__ = "tender_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    objector_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]

    tender: Mapped[Tender] = relationship(back_populates="objections")


class TenderEvent(Base):
    """The tender's public history (append-only)."""

    __tablename__ = "tender_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)

    tender: Mapped[Tender] = relationship(back_populates="events")


@event.listens_for(TenderEvent, "before_update")
@event.listens_for(TenderEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _conn: Connection, target: Base) -> None:
    raise AppendOnlyError("tender history is append-only")
