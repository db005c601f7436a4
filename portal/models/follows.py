"""Following: a person follows a dataset, a department, a domain or a saved search and is told
what changes (portal/follows.py); favourites are datasets kept at hand, without notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

FOLLOW_KINDS = ("dataset", "department", "domain", "search")


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("user_id", "kind", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # FOLLOW_KINDS
    # A dataset's name, a department's code, a domain's name, or a saved search's query string.
    target: Mapped[str] = mapped_column(String(500), index=True)
    label: Mapped[str] = mapped_column(String(500))  # what the person saw when following
    # The public datasets this department, domain or search already had (ids): one not among
    # them is new to the follower.
    known: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Favourite(Base):
    __tablename__ = "favourites"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowedState(Base):
    """What followers of a dataset were last told about it: the next change is measured from
    here, whichever path made it (a harvest, the console, the bureau)."""

    __tablename__ = "followed_states"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    public: Mapped[bool]
    open_class: Mapped[str | None] = mapped_column(String(20))
    files_fingerprint: Mapped[str | None] = mapped_column(String(64))
    columns: Mapped[list] = mapped_column(default=list)  # [[table, column, type], …] served now
    answered_reports: Mapped[int] = mapped_column(default=0)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
