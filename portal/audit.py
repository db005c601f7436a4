"""The audit trail: one append-only row per security-relevant event (models.AuditEvent)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from .models import AuditEvent, User


def record(
    session: Session,
    action: str,
    *,
    actor: User | None = None,
    target: str | None = None,
    ip: str | None = None,
    **detail: object,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target=target,
        ip=ip,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    session.add(event)
    return event
