"""Mail: every message is written to the outbox table first; with PORTAL_SMTP_URL set it is
also sent, and the outcome recorded. Without SMTP the bureau reads the outbox, so no
verification or reset link is lost."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from sqlalchemy.orm import Session

from .models import OutboxMessage, utcnow


def send(session: Session, to: str, subject: str, body: str, smtp_url: str = "",
         sender: str = "noreply@dongchangfu.gov.cn") -> OutboxMessage:
    message = OutboxMessage(to=to, subject=subject, body=body)
    session.add(message)
    session.flush()
    if smtp_url:
        try:
            _smtp(smtp_url, sender, to, subject, body)
            message.sent_at = utcnow()
        except (OSError, smtplib.SMTPException) as exc:
            message.error = f"{type(exc).__name__}: {exc}"[:500]  # kept in the outbox, not lost
    return message


def _smtp(url: str, sender: str, to: str, subject: str, body: str) -> None:
    """smtp://user:password@host:port, or smtps:// for TLS from the start."""
    parsed = urlparse(url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
    with cls(parsed.hostname, parsed.port or (465 if parsed.scheme == "smtps" else 25), timeout=20) as smtp:
        if parsed.scheme == "smtp" and parsed.query == "starttls":
            smtp.starttls()
        if parsed.username:
            smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        smtp.send_message(msg)
