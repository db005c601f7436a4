"""Mail: every message is a row of the outbox, written in the transaction of what it tells, and
sent over SMTP only once that transaction has committed — a step that is rolled back sends
nothing, and a slow mail server never holds a transaction open. Without PORTAL_SMTP_URL the
bureau reads the outbox (/admin/outbox), so no verification or reset link is lost; a failed
send stays in the outbox with its error.

Sending is a job (portal/worker.py): retried with back-off while the server refuses, and never
inside a web request."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import jobs
from .models import OutboxMessage, utcnow

SENDER = "noreply@dongchangfu.gov.cn"
log = logging.getLogger(__name__)


def send(session: Session, to: str, subject: str, body: str, channel: str = "both") -> OutboxMessage:
    """Queue a message in this transaction; a `mail` job sends it once the transaction has
    committed, and tries again later when the mail server refuses. `channel` "mail": a mail
    that is not also a notice on the account page (a weekly digest of notices already there)."""
    message = OutboxMessage(to=to, subject=subject, body=body, channel=channel)
    if channel == "mail":
        message.read_at = utcnow()
    session.add(message)
    session.flush()
    jobs.submit(session, "mail", {"message": message.id}, key=f"mail:{message.id}", max_attempts=6)
    return message


def notice(session: Session, to: str, subject: str, body: str) -> OutboxMessage:
    """A notice on the person's account page only: no mail (they chose a weekly digest, or none)."""
    message = OutboxMessage(to=to, subject=subject, body=body, channel="notice")
    session.add(message)
    return message


def send_once(session: Session, to: str, subject: str, body: str) -> bool:
    """A reminder: queued unless this person was already sent one with this subject (a subject
    names the thing and its date, so each falls due once). Returns whether it was queued."""
    if session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.to == to, OutboxMessage.subject == subject)
    ):
        return False
    send(session, to, subject, body)
    return True


def queue_unsent(session: Session, now: dt.datetime) -> int:
    """A job for every message still waiting without one (written where no job could be queued
    with it: inside another flush), a minute after it was written."""
    waiting = session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.error.is_(None),
            OutboxMessage.channel != "notice",
            OutboxMessage.created_at < now - dt.timedelta(minutes=1),
        )
    ).all()
    for message_id in waiting:
        jobs.submit(session, "mail", {"message": message_id}, key=f"mail:{message_id}", max_attempts=6)
    return len(waiting)


def deliver_one(sessions: sessionmaker, message_id: int, smtp_url: str, sender: str = SENDER) -> str | None:
    """Send one outbox message over SMTP (its own transaction). Returns the error in words when
    the server could not be reached or refused it (the job retries), None when it went or had
    already gone — a job run again after its worker died does not send it twice."""
    with sessions() as s:
        message = s.get(OutboxMessage, message_id)
        if message is None or message.sent_at is not None or message.channel == "notice":
            return None
        to, subject, body = message.to, message.subject, message.body
    error = None
    try:  # outside any transaction: a slow server holds no database connection
        _smtp(smtp_url, sender, to, subject, body)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("mail to %s not sent: %s", to, error)
    with sessions.begin() as s:
        message = s.get_one(OutboxMessage, message_id)
        if error:
            message.error = error  # kept in the outbox, not lost
        else:
            message.sent_at, message.error = utcnow(), None
    return error


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
