"""Accounts: users and their kinds and roles, API tokens, the mail outbox, the audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ForeignKey, String, Text, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from ..labels import label
from ..messages import Message
from .base import Base, utcnow
from .catalog import AppendOnlyError, Department


class UserKind(enum.StrEnum):
    CITIZEN = "citizen"
    COMPANY = "company"  # name and 统一社会信用代码
    RESEARCHER = "researcher"  # institution; the bureau verifies it
    DEVELOPER = "developer"

    @property
    def label(self) -> Message | str:
        return label("user_kind", self.value)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default=UserKind.CITIZEN.value)
    company_name: Mapped[str | None] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    institution: Mapped[str | None] = mapped_column(String(200))
    researcher_verified_at: Mapped[datetime | None]
    researcher_verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A company account verified by the bureau (its licence seen) may bid; one verified
    # account per 统一社会信用代码.
    company_verified_at: Mapped[datetime | None]
    company_verified_by_id: Mapped[int | None]  # no foreign key: migration 0012 adds it in place
    email_verified_at: Mapped[datetime | None]
    # Roles: the big-data bureau; or curator of exactly one department.
    is_bureau: Mapped[bool] = mapped_column(default=False)
    curator_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    # Bumped on password change and logout-everywhere: older sessions stop working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # How notices of what this person follows reach them besides the account page: a mail at
    # once ("instant"), one weekly digest ("weekly") or none ("off").
    notice_mail: Mapped[str] = mapped_column(String(10), default="instant", server_default="instant")

    curator_department: Mapped[Department | None] = relationship()
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", order_by="ApiToken.id")

    @property
    def is_curator(self) -> bool:
        return self.curator_department_id is not None

    @property
    def is_verified_company(self) -> bool:
        return (
            self.kind == UserKind.COMPANY.value
            and bool(self.credit_code)
            and self.company_verified_at is not None
        )

    @property
    def is_verified_researcher(self) -> bool:
        return self.kind == UserKind.RESEARCHER.value and self.researcher_verified_at is not None

    # Flask-Login
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class ApiToken(Base):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists so users can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Calls a day (Beijing); None: the portal's default (PORTAL_API_DAILY_QUOTA).
    daily_quota: Mapped[int | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class OutboxMessage(Base):
    """Every mail the portal sends. Without SMTP it stays here (shown to the bureau), so no
    verification or reset link is ever lost."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    read_at: Mapped[datetime | None]  # read on the account page (the header counts the unread)
    # "both": a notice and a mail; "notice": on the account page only (a follower who reads by
    # weekly digest or not by mail); "mail": a mail only (the digest itself).
    channel: Mapped[str] = mapped_column(String(10), default="both", server_default="both")
    digested_at: Mapped[datetime | None]  # a "notice" sent on in a weekly digest


class AuditEvent(Base):
    """Append-only: logins, failed logins, role changes, token use, decisions."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str | None] = mapped_column(String(100))  # "user:12", "token:3", "dataset:name"
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict] = mapped_column(default=dict)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _conn: Connection, target: Base) -> None:
    raise AppendOnlyError("the audit trail is append-only")
