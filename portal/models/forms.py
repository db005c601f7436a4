"""Forms whose work was done: one row per posted rendering (the form's nonce)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult


class FormSubmission(Base):
    """Written in the same transaction as the form's work (portal/web.py, done()): a second post
    of the same rendering — a reload, the back button, a double click whose two requests are in
    flight together, on one node or two — meets the primary key and is refused, and its work is
    rolled back. Rows older than 30 days are removed by `portal remind` (a page left open in a
    browser that long is reloaded, with a new nonce, before it is posted)."""

    __tablename__ = "form_submissions"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


def forget_done_forms(s: Session, before: datetime) -> int:
    """Remove the record of forms done before `before`. Returns how many."""
    result = s.execute(delete(FormSubmission).where(FormSubmission.done_at < before))
    return cast("CursorResult[Any]", result).rowcount
