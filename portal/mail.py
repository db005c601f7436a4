"""Mail: every message is a row of the outbox, written in the transaction of what it tells, and
sent over SMTP only once that transaction has committed — a step that is rolled back sends
nothing, and a slow mail server never holds a transaction open. Without PORTAL_SMTP_URL the
bureau reads the outbox (/admin/outbox), so no verification or reset link is lost; a failed
send stays in the outbox with its error.

`deliver_after_commit(sessions, smtp_url)` is installed by PortalContext on every process's
sessionmaker (web workers, the CLI, tests)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from .models import OutboxMessage, utcnow

SENDER = "noreply@dongchangfu.gov.cn"
PENDING = "portal.mail.pending"  # Session.info key: ids of the messages this transaction wrote
log = logging.getLogger(__name__)


def send(session: Session, to: str, subject: str, body: str) -> OutboxMessage:
    """Queue a message in this transaction; it goes out after the commit."""
    message = OutboxMessage(to=to, subject=subject, body=body)
    session.add(message)
    return message


def deliver_after_commit(sessions: sessionmaker, smtp_url: str, sender: str = SENDER) -> None:
    if not smtp_url:
        return

    @event.listens_for(sessions, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        ids = [obj.id for obj in session.new if isinstance(obj, OutboxMessage)]
        if ids:
            session.info.setdefault(PENDING, []).extend(ids)

    @event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(PENDING, None)

    @event.listens_for(sessions, "after_commit")
    def _deliver(session: Session) -> None:
        ids = session.info.pop(PENDING, None)
        if ids:
            deliver(sessions, ids, smtp_url, sender)


def deliver(sessions: sessionmaker, ids: list[int], smtp_url: str, sender: str = SENDER) -> None:
    """Send the given outbox messages over SMTP, recording the outcome of each (own transaction)."""
    with sessions() as s:
        for message in s.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.sent_at.is_(None))
        ):
            try:
                _smtp(smtp_url, sender, message.to, message.subject, message.body)
                message.sent_at, message.error = utcnow(), None
            except (OSError, smtplib.SMTPException) as exc:
                message.error = f"{type(exc).__name__}: {exc}"[:500]  # kept in the outbox, not lost
                log.warning("mail to %s not sent: %s", message.to, message.error)
        s.info[PENDING] = []  # this bookkeeping commit has nothing to deliver
        s.commit()


def _smtp(url: str, sender: str, to: str, subject: str, body: str) -> None:
    """smtp://user:password@host:port, or smtps:// for TLS from the start."""
    parsed = urlparse(url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
    with cls(
        parsed.hostname or "", parsed.port or (465 if parsed.scheme == "smtps" else 25), timeout=20
    ) as smtp:
        if parsed.scheme == "smtp" and parsed.query == "starttls":
            smtp.starttls()
        if parsed.username:
            smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        smtp.send_message(msg)
