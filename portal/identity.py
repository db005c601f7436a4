"""Unified sign-in: the identities an account holds at the province's identity platform (爱山东 /
山东省统一身份认证, OpenID Connect) and the real-name level they carry. Plain functions over a
session, as portal/accounts.py; the web layer (portal/views/identity.py) verifies the provider's
ID token and hands over only its verified claims (`Verified`).

The rules:
- a known identity (issuer + subject) signs its own account in, and its level is refreshed;
- an unknown one makes a new account from its verified claims (the e-mail only when the
  provider verified it) — never linked to an existing account because the e-mail matches: that
  would hand the account to whoever controls the identity. The holder of that address signs in
  with the password and links the identity from the account page;
- one identity links one account, and an account one identity per provider;
- an identity is unlinked only while the account has a password, or no one could sign in to it;
- the bureau may require a real-name level for some purposes (research, commercial):
  `level_of` is what licenses/applications.py checks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from .audit import record
from .errors import DomainError
from .messages import _
from .models import LinkedIdentity, User, UserKind, utcnow

if TYPE_CHECKING:
    from .config import Settings

NO_PASSWORD = ""  # an account made by unified sign-in has no password until it sets one (reset)
PLACEHOLDER_DOMAIN = "unified-id.invalid"  # the address of an account whose provider gave none


class IdentityError(DomainError):
    """A message for the person, about unified sign-in."""


@dataclass(frozen=True)
class Verified:
    """What the identity provider said about the person, from an ID token whose signature,
    issuer, audience, expiry and nonce were checked."""

    issuer: str
    subject: str
    name: str = ""
    email: str | None = None  # only an address the provider says it verified
    level: int | None = None
    claims: dict = field(default_factory=dict)  # kept on the row: what the account page shows


@dataclass(frozen=True)
class RealNameRule:
    """The bureau's requirement (settings): purposes that need an identity of this provider with
    at least this real-name level."""

    issuer: str
    level: int
    purposes: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> RealNameRule | None:
        """PORTAL_OIDC_REQUIRED_LEVEL for PORTAL_OIDC_LEVEL_PURPOSES; None when nothing is required."""
        if not settings.oidc_issuer or not settings.oidc_required_level:
            return None
        purposes = frozenset(p.strip() for p in settings.oidc_level_purposes.split(",") if p.strip())
        return cls(settings.oidc_issuer, settings.oidc_required_level, purposes)


def parse_level(value: object) -> int | None:
    """A real-name level as providers send it: 3, "3", "L3", "urn:…:loa:3" → 3; none → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    digits = re.findall(r"\d+", str(value))
    return int(digits[-1]) if digits else None


def verified_from(issuer: str, claims: Mapping[str, object], level_claim: str) -> Verified:
    """The claims of a verified ID token (and userinfo) as the portal keeps them."""
    subject = str(claims.get("sub") or "")
    if not subject or len(subject) > 255:
        raise IdentityError(_("统一身份认证返回的身份信息不完整，请重试"))
    raw_level = claims.get(level_claim)
    if raw_level is None:
        raw_level = claims.get("acr")
    email = str(claims.get("email") or "").strip().lower() or None
    if claims.get("email_verified") is not True or (
        email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)
    ):
        email = None
    name = str(claims.get("name") or claims.get("preferred_username") or "").strip()[:100]
    return Verified(
        issuer=issuer,
        subject=subject,
        name=name,
        email=email if email and len(email) <= 254 else None,
        level=parse_level(raw_level),
        claims={"name": name, "email": email, "level": None if raw_level is None else str(raw_level)[:50]},
    )


# ---------------------------------------------------------------------- reading


def identity_of(session: Session, issuer: str, subject: str) -> LinkedIdentity | None:
    return session.scalar(
        select(LinkedIdentity).where(LinkedIdentity.issuer == issuer, LinkedIdentity.subject == subject)
    )


def identities_of(session: Session, user: User) -> list[LinkedIdentity]:
    return list(
        session.scalars(
            select(LinkedIdentity).where(LinkedIdentity.user_id == user.id).order_by(LinkedIdentity.id)
        )
    )


def level_of(session: Session, user: User, issuer: str) -> int | None:
    """The real-name level of the account's identity at this provider: None when it has none
    linked, 0 when the provider gave no level."""
    row = session.scalar(
        select(LinkedIdentity).where(LinkedIdentity.user_id == user.id, LinkedIdentity.issuer == issuer)
    )
    return (row.real_name_level or 0) if row is not None else None


def has_password(user: User) -> bool:
    return bool(user.password_hash)


# ---------------------------------------------------------------------- signing in


def _refresh(row: LinkedIdentity, who: Verified) -> None:
    """Every sign-in through the provider brings its latest word on the level."""
    row.real_name_level = who.level
    row.claims = dict(who.claims)
    row.last_login_at = utcnow()


def sign_in(session: Session, who: Verified, ip: str | None = None) -> tuple[User, bool]:
    """The account of this identity, or a new one made from its claims; (user, made now)."""
    row = identity_of(session, who.issuer, who.subject)
    if row is not None:
        _refresh(row, who)
        row.user.last_login_at = utcnow()
        record(session, "login", actor=row.user, target=f"user:{row.user_id}", ip=ip, via="oidc")
        return row.user, False
    if who.email and session.scalar(select(User).where(User.email == who.email)) is not None:
        # Never linked by a matching address: whoever holds the identity would own the account.
        raise IdentityError(
            _(
                "邮箱 %(email)s 已有账户。请先用该邮箱和密码登录，再在“我的账户”页关联统一身份认证；"
                "为保护账户安全，平台不会按邮箱自动关联。",
                email=who.email,
            )
        )
    user = User(
        email=who.email or _placeholder_email(who),
        password_hash=NO_PASSWORD,
        name=who.name or _("统一身份认证用户").source,
        kind=UserKind.CITIZEN.value,
        email_verified_at=utcnow() if who.email else None,
        last_login_at=utcnow(),
    )
    session.add(user)
    session.flush()
    row = LinkedIdentity(issuer=who.issuer, subject=who.subject, user_id=user.id)
    _refresh(row, who)
    session.add(row)
    session.flush()
    record(session, "register", actor=user, target=f"user:{user.id}", ip=ip, via="oidc", kind=user.kind)
    record(session, "identity_linked", actor=user, target=f"user:{user.id}", ip=ip, issuer=who.issuer)
    record(session, "login", actor=user, target=f"user:{user.id}", ip=ip, via="oidc")
    return user, True


def _placeholder_email(who: Verified) -> str:
    """A unique address that delivers nowhere (RFC 2606 .invalid), for a person whose provider
    verified none; they may replace it by signing up with a password later."""
    digest = hashlib.sha256(f"{who.issuer}\n{who.subject}".encode()).hexdigest()[:20]
    return f"id-{digest}@{PLACEHOLDER_DOMAIN}"


def has_placeholder_email(user: User) -> bool:
    return user.email.endswith("@" + PLACEHOLDER_DOMAIN)


# ---------------------------------------------------------------------- linking


def link(session: Session, user: User, who: Verified, ip: str | None = None) -> LinkedIdentity:
    """Links the identity to the signed-in account (its owner has just signed in at the provider)."""
    row = identity_of(session, who.issuer, who.subject)
    if row is not None and row.user_id != user.id:
        raise IdentityError(_("该统一身份认证身份已关联另一账户，不能再关联本账户。"))
    if row is None:
        other = session.scalar(
            select(LinkedIdentity).where(
                LinkedIdentity.user_id == user.id, LinkedIdentity.issuer == who.issuer
            )
        )
        if other is not None:
            raise IdentityError(_("本账户已关联另一统一身份认证身份，请先解除关联。"))
        row = LinkedIdentity(issuer=who.issuer, subject=who.subject, user_id=user.id)
        session.add(row)
        record(
            session,
            "identity_linked",
            actor=user,
            target=f"user:{user.id}",
            ip=ip,
            issuer=who.issuer,
            level=who.level,
        )
    _refresh(row, who)
    session.flush()
    return row


def unlink(session: Session, user: User, identity_id: int, ip: str | None = None) -> LinkedIdentity:
    """LookupError for another account's identity (it is "not found" to this one)."""
    row = session.get(LinkedIdentity, identity_id)
    if row is None or row.user_id != user.id:
        raise LookupError("no such identity")
    if not has_password(user):
        raise IdentityError(
            _("本账户还没有密码，解除关联后将无法登录。请先通过“忘记密码”设置密码，再解除关联。")
        )
    session.delete(row)
    record(session, "identity_unlinked", actor=user, target=f"user:{user.id}", ip=ip, issuer=row.issuer)
    session.flush()
    return row
