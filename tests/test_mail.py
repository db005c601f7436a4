"""Mail through a real SMTP conversation (a small server on loopback), and the outbox when
SMTP fails; rate limits kept in Redis when PORTAL_REDIS_URL is set."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from sqlalchemy import select

from portal import mail
from portal.models import OutboxMessage
from tests.helpers import smtp_server as serve_mail


@pytest.fixture
def smtp_server():
    with serve_mail() as server:
        yield server


def _context(settings, smtp_url: str):
    """A portal whose sessions deliver queued mail after each commit (PortalContext does it)."""
    import dataclasses

    from portal.context import PortalContext

    return PortalContext(dataclasses.replace(settings, smtp_url=smtp_url))


def test_mail_goes_through_smtp_after_the_commit_and_is_kept(settings, smtp_server):
    ctx = _context(settings, f"smtp://127.0.0.1:{smtp_server.server_address[1]}")
    with ctx.sessions() as s:
        mail.send(s, "li@example.cn", "验证邮箱", "链接：http://x/verify/abc")
        s.flush()
        assert smtp_server.messages == []  # nothing leaves before the transaction commits
        s.commit()
    with ctx.sessions() as s:
        message = s.scalar(select(OutboxMessage))
        assert message.sent_at is not None and message.error is None
    [sent] = smtp_server.messages
    received = email.message_from_string(sent, policy=email.policy.default)
    assert received["To"] == "li@example.cn" and received["Subject"] == "验证邮箱"
    assert "http://x/verify/abc" in received.get_content()
    ctx.engine.dispose()


def test_a_step_rolled_back_sends_nothing(settings, smtp_server):
    ctx = _context(settings, f"smtp://127.0.0.1:{smtp_server.server_address[1]}")
    with ctx.sessions() as s:
        mail.send(s, "li@example.cn", "申请已同意", "body")
        s.flush()
        s.rollback()
        s.commit()  # a later commit of the same session does not send what was rolled back
    with ctx.sessions() as s:
        assert s.scalar(select(OutboxMessage)) is None
    assert smtp_server.messages == []
    ctx.engine.dispose()


def test_a_failed_smtp_send_stays_in_the_outbox(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    ctx = _context(settings, f"smtp://127.0.0.1:{dead_port}")
    with ctx.sessions() as s:
        mail.send(s, "li@example.cn", "重设密码", "body")
        s.commit()
    with ctx.sessions() as s:
        kept = s.scalar(select(OutboxMessage))
        assert kept.sent_at is None and "Connection" in kept.error and kept.body == "body"
    ctx.engine.dispose()


def test_rate_limits_in_redis(tmp_path, database_url):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/7"
    try:
        client_redis = redis.Redis.from_url(url)
        client_redis.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    from portal.app import create_app
    from tests.helpers import login

    app = create_app({"instance": tmp_path / "i", "database_url": database_url, "redis_url": url})
    client = app.test_client()
    statuses = [login(client, "nobody@example.cn", "Wrong-password-1").status_code for _ in range(11)]
    assert statuses[-1] == 429
    assert any(b"LIMITS" in key or b"login" in key for key in client_redis.keys("*"))
    app.extensions["portal"].engine.dispose()
