"""Accounts end to end through the web forms: register, verify, log in and out, reset,
tokens, roles; bad input and its messages; the audit trail."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from portal import accounts
from portal.models import ApiToken, AppendOnlyError, AuditEvent, OutboxMessage, User
from tests.helpers import hidden_fields, login, post_form

PASSWORD = "Shuicheng-2026!"


def outbox(ctx, to: str) -> list[OutboxMessage]:
    with ctx.sessions() as s:
        return s.scalars(select(OutboxMessage).where(OutboxMessage.to == to).order_by(OutboxMessage.id)).all()


def link_in(message: OutboxMessage) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def audit(ctx, action: str) -> list[AuditEvent]:
    with ctx.sessions() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def register(client, **fields):
    data = {
        "email": "wang@example.cn",
        "name": "王芳",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "kind": "citizen",
        **fields,
    }
    return post_form(client, "/register", data)


def page(response) -> str:
    return response.get_data(as_text=True)


def test_register_verify_from_outbox_then_log_in(client, auth, app):
    ctx = app.extensions["portal"]
    assert register(client).status_code == 302
    refused = auth.login("wang@example.cn", PASSWORD)
    assert "请先点击验证邮件中的链接" in page(refused)
    [mail] = outbox(ctx, "wang@example.cn")
    assert "验证" in mail.subject and mail.sent_at is None  # kept in the outbox: no SMTP configured
    verified = client.get(link_in(mail))
    assert verified.status_code == 302 and verified.headers["Location"].endswith("/login")
    logged_in = auth.login("Wang@Example.cn ", PASSWORD)  # case and spaces do not matter
    assert logged_in.status_code == 302
    account = page(client.get("/account"))
    assert "wang@example.cn" in account and "个人" in account
    assert [e.action for e in audit(ctx, "login")] == ["login"]


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"password": "short1!", "confirm": "short1!"}, "密码至少 10 位"),
        ({"password": "12345678901234", "confirm": "12345678901234"}, "密码太简单"),
        ({"password": "wang-2026-password", "confirm": "wang-2026-password"}, "包含邮箱名"),
        ({"confirm": "Different-2026!"}, "两次输入的密码不一致"),
        ({"email": "not-an-email"}, "邮箱地址格式不正确"),
        (
            {
                "kind": "company",
                "company_name": "聊城市鲁西化工有限公司",
                "credit_code": "91371500MA3C56L393",
            },
            "统一社会信用代码不正确",
        ),
        ({"kind": "company", "company_name": "", "credit_code": "91371500MA3C56L392"}, "请填写企业名称"),
        ({"kind": "researcher", "institution": ""}, "请填写所在高校或科研机构"),
    ],
)
def test_bad_registrations_have_clear_messages(client, app, fields, message):
    response = register(client, **fields)
    assert response.status_code == 200 and message in page(response)
    with app.extensions["portal"].sessions() as s:
        assert s.scalar(select(User.id)) is None


def test_company_with_a_valid_credit_code(client, app):
    register(client, kind="company", company_name="聊城市鲁西化工有限公司", credit_code="91371500ma3c56l392")
    with app.extensions["portal"].sessions() as s:
        user = s.scalar(select(User))
        assert (user.kind, user.credit_code) == ("company", "91371500MA3C56L392")


def test_an_email_already_used_is_not_revealed_and_its_holder_is_told(client, app, make_user):
    """Nobody learns from the form whether an address has an account (as /reset already does)."""
    make_user(email="wang@example.cn")
    fresh = register(client, email="new-person@example.cn")
    taken = register(client)
    assert taken.status_code == fresh.status_code == 302 and taken.location == fresh.location
    ctx = app.extensions["portal"]
    told = outbox(ctx, "wang@example.cn")
    assert len(told) == 1 and "有人使用您的邮箱注册" in told[0].subject and "/reset/" in told[0].body
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.email == "wang@example.cn")) == 1


def test_a_form_posted_twice_is_done_once(client, app):
    html = page(client.get("/register"))
    data = {
        **hidden_fields(html),
        "email": "li@example.cn",
        "name": "李",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "kind": "citizen",
    }
    assert client.post("/register", data=data).status_code == 302
    again = client.post("/register", data=data)
    assert "此表单已提交过" in page(again)
    assert len(outbox(app.extensions["portal"], "li@example.cn")) == 1


def test_posts_without_a_csrf_token_are_refused(client, make_user):
    _, email, password = make_user()
    assert client.post("/login", data={"email": email, "password": password}).status_code == 400
    assert client.post("/register", data={"email": "x@example.cn"}).status_code == 400


@pytest.mark.parametrize(
    "tamper", [lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), lambda t: "garbage"]
)
def test_a_tampered_verification_link(client, app, tamper):
    register(client)
    [mail] = outbox(app.extensions["portal"], "wang@example.cn")
    token = link_in(mail).rsplit("/", 1)[1]
    response = client.get(f"/verify/{tamper(token)}", follow_redirects=True)
    assert "链接无效或已被修改" in page(response)


def test_an_expired_verification_link(client, app, monkeypatch):
    register(client)
    [mail] = outbox(app.extensions["portal"], "wang@example.cn")
    monkeypatch.setattr(accounts, "VERIFY_MAX_AGE", -1)
    assert "链接已过期" in page(client.get(link_in(mail), follow_redirects=True))


def test_password_reset_works_once_and_ends_other_sessions(client, auth, app, make_user):
    ctx = app.extensions["portal"]
    _, email, old = make_user(email="zhao@example.cn")
    other = app.test_client()
    login(other, email, old)
    assert other.get("/account").status_code == 200
    post_form(client, "/reset", {"email": email})
    post_form(client, "/reset", {"email": "nobody@example.cn"})  # same answer, no mail
    [mail] = outbox(ctx, email)
    assert outbox(ctx, "nobody@example.cn") == []
    url = link_in(mail)
    new = "Fenghuang-Lake-77"
    assert post_form(client, url, {"password": new, "confirm": new}).status_code == 302
    assert "已使用过" in page(
        post_form(client, url, {"password": "Another-one-2026", "confirm": "Another-one-2026"})
    )
    assert "邮箱或密码不正确" in page(auth.login(email, old))
    assert auth.login(email, new).status_code == 302
    assert other.get("/account").status_code == 302  # the other session ended with the reset


def test_login_is_rate_limited_and_failures_are_audited(client, auth, app, make_user):
    _, email, password = make_user()
    for _ in range(12):  # colleagues behind one office address signing in: successes do not count
        assert auth.login(email, password).status_code == 302
        auth.logout()
    statuses = [auth.login(email, "Wrong-password-1").status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    assert len(audit(app.extensions["portal"], "login_failed")) == 10


def test_tokens_created_shown_once_used_and_revoked(client, auth, app, make_user):
    ctx = app.extensions["portal"]
    _, email, password = make_user()
    auth.login(email, password)
    created = page(
        post_form(client, "/account/tokens", {"name": "数据同步脚本", "days": "90"}, page="/account")
    )
    token = re.search(r'<code id="new-token">(dcf_[^<]+)</code>', created).group(1)
    with ctx.sessions() as s:
        row = s.scalar(select(ApiToken))
        assert row.name == "数据同步脚本" and token not in (row.token_hash, row.prefix)  # stored hashed
    anonymous = app.test_client()
    me = anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["result"]["email"] == email
    assert "从未使用" not in page(client.get("/account"))  # last use shown
    assert len(audit(ctx, "token_used")) == 1
    revoke = post_form(client, f"/account/tokens/{row.id}/revoke", {}, page="/account")
    assert revoke.status_code == 302
    assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {token[:-1]}x"}).status_code == 401
    assert anonymous.get("/api/me").status_code == 401


def test_an_expired_token_stops_working(app, make_user):
    ctx = app.extensions["portal"]
    user_id, _, _ = make_user()
    with ctx.sessions() as s:
        _, token = accounts.create_token(s, s.get(User, user_id), "old", 30)
        s.execute(text("UPDATE api_tokens SET expires_at = :past"), {"past": "2020-01-01 00:00:00"})
        s.commit()
    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_form_posted_twice_makes_one_token(client, auth, app, make_user):
    _, email, password = make_user()
    auth.login(email, password)
    html = page(client.get("/account"))
    data = {**hidden_fields(html), "name": "一次", "days": "30"}
    client.post("/account/tokens", data=data)
    assert "此表单已提交过" in page(client.post("/account/tokens", data=data))
    with app.extensions["portal"].sessions() as s:
        assert len(s.scalars(select(ApiToken)).all()) == 1


def test_another_users_token_cannot_be_revoked(client, auth, app, make_user):
    owner_id, _, _ = make_user()
    with app.extensions["portal"].sessions() as s:
        row, _ = accounts.create_token(s, s.get(User, owner_id), "mine", 30)
        s.commit()
    _, email, password = make_user()
    auth.login(email, password)
    assert post_form(client, f"/account/tokens/{row.id}/revoke", {}, page="/account").status_code == 404


def test_bureau_appoints_curator_and_verifies_researcher_with_audit(client, auth, app, make_user):
    ctx = app.extensions["portal"]
    _, email, password = make_user(bureau=True)
    researcher_id, _, _ = make_user("researcher")
    curator_id, _, _ = make_user(curator_of="dcf-jtysj")  # makes the department
    auth.login(email, password)
    post_form(client, f"/admin/users/{researcher_id}/verify-researcher", {}, page="/admin/users")
    post_form(
        client, f"/admin/users/{researcher_id}/curator", {"department": "dcf-jtysj"}, page="/admin/users"
    )
    post_form(client, f"/admin/users/{curator_id}/curator", {"department": ""}, page="/admin/users")
    with ctx.sessions() as s:
        researcher, curator = s.get(User, researcher_id), s.get(User, curator_id)
        assert researcher.is_verified_researcher and researcher.curator_department.code == "dcf-jtysj"
        assert curator.curator_department is None
    changes = [(e.target, e.detail) for e in audit(ctx, "role_curator_changed")]
    assert changes == [
        (f"user:{researcher_id}", {"after": "dcf-jtysj"}),
        (f"user:{curator_id}", {"before": "dcf-jtysj"}),
    ]
    assert len(audit(ctx, "researcher_verified")) == 1
    company_id, _, _ = make_user("company", company_verified=False)
    post_form(client, f"/admin/users/{company_id}/verify-company", {}, page="/admin/users?pending=companies")
    with ctx.sessions() as s:
        assert s.get(User, company_id).is_verified_company
    assert len(audit(ctx, "company_verified")) == 1


def test_the_last_bureau_account_stays(client, auth, app, make_user):
    admin_id, email, password = make_user(bureau=True)
    auth.login(email, password)
    response = post_form(
        client, f"/admin/users/{admin_id}/bureau/revoke", {}, page="/admin/users", follow_redirects=True
    )
    assert "不能撤销自己的大数据局角色" in page(response)


def test_outbox_is_shown_to_the_bureau(client, auth, app, make_user):
    register(client)
    _, email, password = make_user(bureau=True)
    auth.login(email, password)
    assert "wang@example.cn" in page(client.get("/admin/outbox"))


def test_audit_trail_is_append_only(app, make_user):
    ctx = app.extensions["portal"]
    make_user()
    with ctx.sessions() as s:
        event = s.scalar(select(AuditEvent))
        event.action = "rewritten"
        with pytest.raises(AppendOnlyError):
            s.commit()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with ctx.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text(statement))
            conn.commit()


def test_session_cookie_flags(client, auth, make_user, tmp_path):
    _, email, password = make_user()
    cookie = auth.login(email, password).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    from portal.app import create_app

    secure = create_app({"instance": tmp_path / "https", "https": True})
    assert secure.config["SESSION_COOKIE_SECURE"] is True


def test_create_admin_from_the_command_line(settings):
    from click.testing import CliRunner

    from portal.cli import main

    runner = CliRunner()
    args = [
        "--instance",
        str(settings.instance_path),
        "users",
        "create-admin",
        "--email",
        "boss@dcf.gov.cn",
        "--password",
        "Bureau-Admin-2026",
    ]
    result = runner.invoke(main, args, env={"PORTAL_DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    assert "boss@dcf.gov.cn" in result.output
    again = runner.invoke(main, args, env={"PORTAL_DATABASE_URL": settings.database_url})
    assert again.exit_code == 1 and "已注册" in again.output


def test_passwords_are_stored_with_scrypt(app, monkeypatch, make_user):
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "scrypt")
    user_id, _, password = make_user()
    with app.extensions["portal"].sessions() as s:
        stored = s.get(User, user_id).password_hash
    assert stored.startswith("scrypt:") and password not in stored
