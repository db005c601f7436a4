"""Unified sign-in (OpenID Connect): an account's identities at the province's identity
platform (爱山东 / 山东省统一身份认证), each with the real-name level the platform last said."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .accounts import User
from .base import Base, utcnow


class LinkedIdentity(Base):
    """One person at one identity provider (issuer + subject), linked to one account; an account
    has at most one identity per provider. `claims` keeps only what the account page shows (name,
    e-mail and whether the provider verified it, the level claim as sent): nothing else is stored."""

    __tablename__ = "linked_identities"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_linked_identities_issuer_subject"),
        UniqueConstraint("user_id", "issuer", name="uq_linked_identities_user_issuer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The real-name level (实名等级) from the provider's ID token, refreshed at every sign-in
    # through it; None when the provider said none.
    real_name_level: Mapped[int | None]
    claims: Mapped[dict] = mapped_column(default=dict)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
