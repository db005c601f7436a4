"""Register, verify, log in and out, reset the password, the account page and its API tokens.
Thin: forms in, portal.accounts out."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from .. import accounts
from ..accounts import AccountError, Registration
from ..authz import Action, public, requires
from ..forms import EmailForm, LoginForm, NewPasswordForm, RegisterForm, TokenForm
from ..limits import limiter
from ..messages import _
from ..models import User
from ..web import db, tell

bp = Blueprint("accounts", __name__)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _ip() -> str | None:
    return request.remote_addr


def _send_verification(user: User) -> None:
    link = url_for("accounts.verify", token=accounts.make_verify_token(_secret(), user), _external=True)
    accounts.mail_verification_link(db(), user, link)


@bp.route("/register", methods=["GET", "POST"])
@public
@limiter.limit("20 per hour", methods=["POST"])
def register() -> ResponseReturnValue:
    form = RegisterForm()
    if form.is_submitted():
        valid = form.validate()
        s = db()
        registration = Registration(
            email=form.email.data or "",
            password=form.password.data or "",
            name=form.name.data or "",
            kind=form.kind.data or "",
            company_name=form.company_name.data,
            credit_code=form.credit_code.data,
            institution=form.institution.data,
        )
        # Every problem at once, each next to its field: the form's own checks and the rules'.
        problems = accounts.registration_problems(s, registration)
        for name, message in problems.items():
            if not form[name].errors:
                form[name].errors = [*form[name].errors, message]
        if valid and not problems and (holder := accounts.find_user(s, registration.email)) is not None:
            # The same answer as for a new account; the holder is told by mail.
            link = url_for(
                "accounts.reset", token=accounts.make_reset_token(_secret(), holder), _external=True
            )
            accounts.mail_someone_registered_your_address(s, holder, link)
            s.commit()
            form.consume()
            tell(_("注册成功。验证邮件已发送，请打开邮件中的链接完成验证。"))
            return redirect(url_for("accounts.login"))
        if valid and not problems:
            try:
                user = accounts.register(s, registration, ip=_ip())
            except AccountError as exc:  # a second registration of the same address at the same moment
                s.rollback()
                form.form_errors.append(exc.message)
            else:
                _send_verification(user)
                s.commit()
                form.consume()
                tell(_("注册成功。验证邮件已发送，请打开邮件中的链接完成验证。"))
                return redirect(url_for("accounts.login"))
    return render_template("accounts/register.html", form=form)


@bp.get("/verify/<token>")
@public
def verify(token: str) -> ResponseReturnValue:
    s = db()
    try:
        accounts.verify_email(s, _secret(), token, ip=_ip())
    except AccountError as exc:
        s.rollback()
        flash(str(exc), "error")
        return redirect(url_for("accounts.resend"))
    s.commit()
    tell(_("邮箱已验证，请登录。"))
    return redirect(url_for("accounts.login"))


@bp.route("/verify", methods=["GET", "POST"])
@public
@limiter.limit("5 per hour", methods=["POST"])
def resend() -> ResponseReturnValue:
    form = EmailForm()
    if form.validate_on_submit():
        s = db()
        user = accounts.find_user(s, form.email.data or "")
        if user is not None and user.email_verified_at is None:
            _send_verification(user)
            s.commit()
        form.consume()
        tell(_("如该邮箱已注册且未验证，验证邮件已重新发送。"))
        return redirect(url_for("accounts.login"))
    return render_template("accounts/email_form.html", form=form, title="重新发送验证邮件")


@bp.route("/login", methods=["GET", "POST"])
@public
# Failed attempts count, successful ones do not: an office behind one address signs in all day.
@limiter.limit("10 per minute", methods=["POST"], deduct_when=lambda response: response.status_code != 302)
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        s = db()
        try:
            user = accounts.authenticate(s, form.email.data or "", form.password.data or "", ip=_ip())
        except AccountError as exc:
            s.commit()  # the failed attempt stays in the audit trail
            form.form_errors.append(str(exc))
        else:
            s.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("accounts.account"))
    return render_template("accounts/login.html", form=form)


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc and target.startswith("/") else None


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    logout_user()
    tell(_("已退出登录。"))
    return redirect(url_for("catalog.home"))


@bp.route("/reset", methods=["GET", "POST"])
@public
@limiter.limit("5 per hour", methods=["POST"])
def reset_request() -> ResponseReturnValue:
    form = EmailForm()
    if form.validate_on_submit():
        s = db()
        user = accounts.find_user(s, form.email.data or "")
        if user is not None:
            link = url_for("accounts.reset", token=accounts.make_reset_token(_secret(), user), _external=True)
            accounts.mail_reset_link(s, user, link)
            s.commit()
        form.consume()
        # The same answer whether or not the address is registered: no one learns who has an account.
        tell(_("如该邮箱已注册，重设密码的链接已发送。"))
        return redirect(url_for("accounts.login"))
    return render_template("accounts/email_form.html", form=form, title="找回密码")


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
@limiter.limit("10 per hour", methods=["POST"])
def reset(token: str) -> ResponseReturnValue:
    form = NewPasswordForm()
    if request.method == "GET":
        try:
            accounts.user_of_reset_link(db(), _secret(), token)
        except AccountError as exc:  # expired, used or altered: say so, and offer a new link
            flash(str(exc), "error")
            return redirect(url_for("accounts.reset_request"))
    if form.validate_on_submit():
        s = db()
        try:
            accounts.reset_password(s, _secret(), token, form.password.data or "", ip=_ip())
        except AccountError as exc:
            s.rollback()
            form.form_errors.append(str(exc))
        else:
            s.commit()
            form.consume()
            logout_user()
            tell(_("密码已重设，请用新密码登录。"))
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)


def _notifications() -> Sequence:
    """The latest messages sent to this user (the same as the mails): shown on the account page."""
    from sqlalchemy import select

    from ..models import OutboxMessage

    return (
        db()
        .scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to == current_user.email)
            .order_by(OutboxMessage.id.desc())
            .limit(10)
        )
        .all()
    )


@bp.get("/account/notices")
@requires(Action.ACCOUNT)
def notices() -> ResponseReturnValue:
    """Every message the portal sent this person (reminders, decisions, notices), newest first;
    the unread ones are marked and, once shown here, count as read."""
    from sqlalchemy import select

    from ..models import OutboxMessage, utcnow

    s = db()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows = s.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to == current_user.email, OutboxMessage.channel != "mail")
        .order_by(OutboxMessage.id.desc())
        .limit(51)
        .offset((page - 1) * 50)
    ).all()
    unread = {m.id for m in rows if m.read_at is None}
    response = render_template(
        "accounts/notices.html", notices=rows[:50], unread=unread, page=page, more=len(rows) > 50
    )
    for m in rows[:50]:
        if m.read_at is None:
            m.read_at = utcnow()
    s.commit()
    return response


@bp.get("/account")
@requires(Action.ACCOUNT)
def account() -> ResponseReturnValue:
    return render_template(
        "accounts/account.html", form=TokenForm(), new_token=None, notifications=_notifications()
    )


@bp.post("/account/tokens")
@requires(Action.ACCOUNT)
def create_token() -> ResponseReturnValue:
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        s = db()
        try:
            _row, new_token = accounts.create_token(
                s, current_user, form.name.data or "", int(form.days.data), ip=_ip()
            )
        except AccountError as exc:
            s.rollback()
            form.form_errors.append(str(exc))
        else:
            s.commit()
            form.consume()
            form = TokenForm(formdata=None)
    status = 200 if new_token or not form.errors else 400
    return render_template(
        "accounts/account.html", form=form, new_token=new_token, notifications=_notifications()
    ), status


@bp.post("/account/tokens/<int:token_id>/revoke")
@requires(Action.ACCOUNT)
def revoke_token(token_id: int) -> ResponseReturnValue:
    s = db()
    try:
        accounts.revoke_token(s, current_user, token_id, ip=_ip())
    except LookupError:
        abort(404)
    s.commit()
    tell(_("令牌已撤销，立即失效。"))
    return redirect(url_for("accounts.account"))


@bp.get("/api/me")
@public
def me() -> ResponseReturnValue:
    """Who the token (or session) belongs to: lets scripts check their token."""
    if not current_user.is_authenticated:
        return {"success": False, "error": {"message": _("需要登录或 API 令牌")}}, 401
    u = current_user
    return {
        "success": True,
        "result": {
            "id": u.id,
            "email": u.email,
            "name": u.name,
            "kind": u.kind,
            "bureau": u.is_bureau,
            "curator_of": u.curator_department.code if u.curator_department else None,
            "verified_researcher": u.is_verified_researcher,
        },
    }
