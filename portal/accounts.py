"""Accounts as plain functions over a session: registration, verification, passwords, roles,
API tokens. Views call these; so do the CLI and the tests. Nothing here reads a request.

Passwords: Werkzeug's scrypt. Links: itsdangerous, signed with the instance secret, salted
per purpose, expiring; a reset link also carries a fingerprint of the current password hash,
so it works once. Tokens: 'dcf_' + 32 random bytes, shown once, stored as SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.cn import uscc
from werkzeug.security import check_password_hash, generate_password_hash

from portal.authz import Action, require
from portal.errors import DomainError
from portal.messages import _

from .audit import record
from .models import ApiToken, Department, User, UserKind, as_utc, utcnow

PASSWORD_METHOD = "scrypt"  # Werkzeug's scrypt (n=2**15, r=8, p=1)
VERIFY_MAX_AGE = 3 * 24 * 3600
RESET_MAX_AGE = 2 * 3600
TOKEN_DAYS = (30, 90, 365)
MIN_PASSWORD = 10
COMMON_PASSWORDS = {
    "password123",
    "1234567890",
    "qwertyuiop",
    "a123456789",
    "123456789a",
    "iloveyou123",
    "password1234",
    "abcdefghij",
    "1q2w3e4r5t",
    "qwerty123456",
    "woaini1314",
    "88888888888",
}


class AccountError(DomainError):
    """A message for the person at the form."""


# ---------------------------------------------------------------------- validation


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) or len(email) > 254:
        raise AccountError(_("邮箱地址格式不正确"))
    return email


def check_password(password: str, email: str = "") -> None:
    """Long enough, not one kind of character, not common, not the email's name."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(_("密码至少 %(min_password)s 位", min_password=MIN_PASSWORD))
    if password.isdigit() or password.isalpha() or len(set(password)) < 5:
        raise AccountError(_("密码太简单：请混合字母、数字或符号"))
    local = email.split("@")[0].lower()
    if password.lower() in COMMON_PASSWORDS or (len(local) >= 4 and local in password.lower()):
        raise AccountError(_("密码太常见或包含邮箱名"))


def check_credit_code(code: str) -> str:
    """统一社会信用代码: 18 characters with a valid check digit (python-stdnum)."""
    code = (code or "").strip().upper()
    if not uscc.is_valid(code):
        raise AccountError(_("统一社会信用代码不正确（请核对 18 位代码及校验位）"))
    return uscc.compact(code)


# ---------------------------------------------------------------------- registration


@dataclass
class Registration:
    email: str
    password: str
    name: str
    kind: str = UserKind.CITIZEN.value
    company_name: str | None = None
    credit_code: str | None = None
    institution: str | None = None


def registration_problems(session: Session, form: Registration) -> dict[str, object]:
    """Every problem of a registration at once, by the form field it belongs to, so the person
    fixes them in one round instead of one per submission."""
    problems: dict[str, object] = {}

    def check(field: str, step: Callable[[], object]) -> None:
        try:
            step()
        except AccountError as exc:
            problems.setdefault(field, exc.message)

    check("email", lambda: normalize_email(form.email))
    check("password", lambda: check_password(form.password, (form.email or "").strip().lower()))
    if form.kind not in {k.value for k in UserKind}:
        problems["kind"] = _("请选择用户类型")
    if not (form.name or "").strip():
        problems["name"] = _("请填写姓名或称呼")
    if form.kind == UserKind.COMPANY.value:
        if not (form.company_name or "").strip():
            problems["company_name"] = _("请填写企业名称")
        check("credit_code", lambda: check_credit_code(form.credit_code or ""))
    if form.kind == UserKind.RESEARCHER.value and not (form.institution or "").strip():
        problems["institution"] = _("请填写所在高校或科研机构")
    # An address already registered is not among the problems: the form must not tell anyone
    # who has an account. The view answers as for a new account and mails the holder instead
    # (mail_someone_registered_your_address); register() itself still refuses it.
    return problems


def register(session: Session, form: Registration, ip: str | None = None) -> User:
    if problems := registration_problems(session, form):
        raise AccountError(next(iter(problems.values())), fields=problems)
    if find_user(session, form.email) is not None:
        raise AccountError(
            _("该邮箱已注册，请直接登录或找回密码"), fields={"email": _("该邮箱已注册，请直接登录或找回密码")}
        )
    email = normalize_email(form.email)
    user = User(
        email=email,
        password_hash=generate_password_hash(form.password, method=PASSWORD_METHOD),
        name=form.name.strip(),
        kind=form.kind,
    )
    if form.kind == UserKind.COMPANY.value:
        user.company_name, user.credit_code = (
            (form.company_name or "").strip(),
            check_credit_code(form.credit_code or ""),
        )
    if form.kind == UserKind.RESEARCHER.value:
        user.institution = (form.institution or "").strip()
    session.add(user)
    session.flush()
    record(session, "register", actor=user, target=f"user:{user.id}", ip=ip, kind=user.kind)
    return user


def find_user(session: Session, email: str) -> User | None:
    try:
        return session.scalar(select(User).where(User.email == normalize_email(email)))
    except AccountError:
        return None


def authenticate(session: Session, email: str, password: str, ip: str | None = None) -> User:
    """The user, or AccountError with one message for every failure (no hint which part)."""
    user = find_user(session, email)
    if user is None or not check_password_hash(user.password_hash, password):
        record(
            session,
            "login_failed",
            actor=user,
            target=f"user:{user.id}" if user else None,
            ip=ip,
            email=(email or "")[:254],
        )
        raise AccountError(_("邮箱或密码不正确"))
    if user.email_verified_at is None:
        raise AccountError(_("请先点击验证邮件中的链接完成邮箱验证"))
    user.last_login_at = utcnow()
    record(session, "login", actor=user, target=f"user:{user.id}", ip=ip)
    return user


# ---------------------------------------------------------------------- signed links


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"dongchangfu-portal:{purpose}")


def _password_fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_verify_token(secret: str, user: User) -> str:
    return _serializer(secret, "verify-email").dumps({"u": user.id, "e": user.email})


def make_reset_token(secret: str, user: User) -> str:
    return _serializer(secret, "reset-password").dumps({"u": user.id, "p": _password_fingerprint(user)})


def _load(secret: str, purpose: str, token: str, max_age: int) -> dict:
    try:
        data = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError(_("链接已过期，请重新申请")) from exc
    except BadSignature as exc:
        raise AccountError(_("链接无效或已被修改")) from exc
    if not isinstance(data, dict):
        raise AccountError(_("链接无效或已被修改"))
    return data


def verify_email(session: Session, secret: str, token: str, ip: str | None = None) -> User:
    data = _load(secret, "verify-email", token, VERIFY_MAX_AGE)
    user = session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        raise AccountError(_("链接无效或已被修改"))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        record(session, "email_verified", actor=user, target=f"user:{user.id}", ip=ip)
    return user


def user_of_reset_link(session: Session, secret: str, token: str) -> User:
    """Whose password the link may reset; AccountError says why not (checked before the form is
    shown, so no one types a new password into a link that cannot work)."""
    data = _load(secret, "reset-password", token, RESET_MAX_AGE)
    user = session.get(User, data.get("u"))
    if user is None:
        raise AccountError(_("链接无效或已被修改"))
    if data.get("p") != _password_fingerprint(user):
        raise AccountError(_("此链接已使用过，请重新申请"))
    return user


def reset_password(
    session: Session, secret: str, token: str, new_password: str, ip: str | None = None
) -> User:
    user = user_of_reset_link(session, secret, token)
    check_password(new_password, user.email)
    user.password_hash = generate_password_hash(new_password, method=PASSWORD_METHOD)
    user.session_version += 1  # every other session ends
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # the reset link proves the address too
    record(session, "password_reset", actor=user, target=f"user:{user.id}", ip=ip)
    return user


# ---------------------------------------------------------------------- roles


def create_admin(session: Session, email: str, password: str, name: str = "大数据局管理员") -> User:
    """The first bureau account (CLI); verified, since whoever runs the CLI owns the address."""
    user = register(session, Registration(email=email, password=password, name=name))
    user.is_bureau = True
    user.email_verified_at = utcnow()
    record(session, "role_bureau_granted", actor=None, target=f"user:{user.id}", via="cli")
    return user


def _require_bureau(actor: User) -> None:
    require(actor, Action.MANAGE_USERS)


def appoint_curator(
    session: Session, actor: User, user: User, department: Department | None, ip: str | None = None
) -> None:
    """The bureau makes a user curator of one department (or none)."""
    _require_bureau(actor)
    before = user.curator_department.code if user.curator_department else None
    user.curator_department = department
    record(
        session,
        "role_curator_changed",
        actor=actor,
        target=f"user:{user.id}",
        ip=ip,
        before=before,
        after=department.code if department else None,
    )


def set_bureau(session: Session, actor: User, user: User, grant: bool, ip: str | None = None) -> None:
    _require_bureau(actor)
    if not grant and user.id == actor.id:
        raise AccountError(_("不能撤销自己的大数据局角色"))
    if (
        not grant
        and session.execute(
            select(func.count()).select_from(User).where(User.is_bureau.is_(True))
        ).scalar_one()
        <= 1
    ):
        raise AccountError(_("至少保留一个大数据局账号"))
    user.is_bureau = grant
    record(
        session,
        "role_bureau_granted" if grant else "role_bureau_revoked",
        actor=actor,
        target=f"user:{user.id}",
        ip=ip,
    )


def verify_company(session: Session, actor: User, user: User, ip: str | None = None) -> None:
    """The bureau verifies a company account (as it does researchers): only verified companies
    bid, and a credit code belongs to one verified account."""
    from sqlalchemy import select

    _require_bureau(actor)
    if user.kind != UserKind.COMPANY.value or not user.credit_code:
        raise AccountError(_("该用户不是企业账户"))
    taken = session.scalar(
        select(User).where(
            User.credit_code == user.credit_code, User.id != user.id, User.company_verified_at.is_not(None)
        )
    )
    if taken is not None:
        raise AccountError(
            _(
                "统一社会信用代码 %(credit_code)s 已由另一已认证账户（%(email)s）使用",
                credit_code=user.credit_code,
                email=taken.email,
            )
        )
    user.company_verified_at, user.company_verified_by_id = utcnow(), actor.id
    record(
        session,
        "company_verified",
        actor=actor,
        target=f"user:{user.id}",
        ip=ip,
        credit_code=user.credit_code,
    )


def verify_researcher(session: Session, actor: User, user: User, ip: str | None = None) -> None:
    _require_bureau(actor)
    if user.kind != UserKind.RESEARCHER.value:
        raise AccountError(_("该用户不是科研人员"))
    user.researcher_verified_at, user.researcher_verified_by_id = utcnow(), actor.id
    record(
        session,
        "researcher_verified",
        actor=actor,
        target=f"user:{user.id}",
        ip=ip,
        institution=user.institution,
    )


# ---------------------------------------------------------------------- API tokens


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A daily quota is per token: an account holds a few tokens in force and makes a few a day, so
# new tokens cannot multiply its allowance (revoking one does not free a new day's worth).
MOST_TOKENS, MOST_NEW_TOKENS_A_DAY = 5, 5


def _enough_tokens(session: Session, user: User) -> None:
    now = utcnow()
    mine = select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id)
    in_force = session.scalar(mine.where(ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)) or 0
    if in_force >= MOST_TOKENS:
        raise AccountError(_("最多同时持有 %(n)s 个有效令牌，请先吊销不用的令牌", n=MOST_TOKENS))
    today = session.scalar(mine.where(ApiToken.created_at > now - dt.timedelta(days=1))) or 0
    if today >= MOST_NEW_TOKENS_A_DAY:
        raise AccountError(_("24 小时内最多新建 %(n)s 个令牌，请明天再试", n=MOST_NEW_TOKENS_A_DAY))


def create_token(
    session: Session, user: User, name: str, days: int, ip: str | None = None
) -> tuple[ApiToken, str]:
    """Returns the row and the token itself, which is shown once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError(_("请为令牌命名（100 字以内）"))
    if days not in TOKEN_DAYS:
        raise AccountError(_("有效期只能是 30、90 或 365 天"))
    _enough_tokens(session, user)
    token = "dcf_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_hash_token(token),
        prefix=token[:10],
        expires_at=utcnow() + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    record(session, "token_created", actor=user, target=f"token:{row.id}", ip=ip, name=name, days=days)
    return row, token


def revoke_token(session: Session, user: User, token_id: int, ip: str | None = None) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:  # another user's token is "not found", not "forbidden"
        raise LookupError("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record(session, "token_revoked", actor=user, target=f"token:{row.id}", ip=ip)
    return row


def set_token_quota(
    session: Session, actor: User, token: ApiToken, quota: int | None, ip: str | None = None
) -> None:
    """The bureau gives one token its own daily quota of API calls (None: the portal's default)."""
    _require_bureau(actor)
    before = token.daily_quota
    token.daily_quota = quota
    record(
        session,
        "token_quota_changed",
        actor=actor,
        target=f"token:{token.id}",
        ip=ip,
        before=before,
        after=quota,
    )


TOKEN_AUDIT_EVERY = dt.timedelta(minutes=1)


def user_for_token(session: Session, token: str, ip: str | None = None) -> User | None:
    """The token's user if it is valid (not revoked, not expired); its use is recorded
    (last use always; an audit event at most once a minute per token)."""
    row = valid_token(session, token, ip)
    return row.user if row is not None else None


def valid_token(session: Session, token: str, ip: str | None = None) -> ApiToken | None:
    """The token's row if it is valid, its use recorded (user_for_token)."""
    if not token or not token.startswith("dcf_"):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
        record(
            session,
            "token_refused",
            actor=row.user if row else None,
            target=f"token:{row.id}" if row else None,
            ip=ip,
        )
        return None
    if row.last_used_at is None or now - as_utc(row.last_used_at) >= TOKEN_AUDIT_EVERY:
        record(session, "token_used", actor=row.user, target=f"token:{row.id}", ip=ip)
    row.last_used_at = now
    return row


# ---------------------------------------------------------------------- what accounts are told


def mail_verification_link(session: Session, user: User, link: str) -> None:
    from . import mail

    mail.send(
        session,
        user.email,
        "请验证您的邮箱 · 东昌府区公共数据开放平台",
        f"{user.name}，您好：\n\n请在 3 天内打开以下链接，完成邮箱验证：\n{link}\n\n"
        f"Please open this link within 3 days to verify your email address.\n",
    )


def mail_someone_registered_your_address(session: Session, user: User, reset_link: str) -> None:
    """Someone registered with an address that has an account: its holder is told, the person
    at the form sees what a new registration sees."""
    from . import mail

    mail.send(
        session,
        user.email,
        "有人使用您的邮箱注册 · 东昌府区公共数据开放平台",
        f"{user.name}，您好：\n\n刚才有人使用您的邮箱在东昌府区公共数据开放平台注册。您已有账户，无需再注册："
        f"请直接登录；如忘记密码，请在 2 小时内打开以下链接重设（仅可使用一次）：\n{reset_link}\n\n"
        "如果不是您本人操作，请忽略此邮件，您的账户没有任何变化。\n\n"
        "Someone just registered with your email address. You already have an account: sign in, or "
        "reset your password with the link above. If it was not you, ignore this mail.\n",
    )


def mail_reset_link(session: Session, user: User, link: str) -> None:
    from . import mail

    mail.send(
        session,
        user.email,
        "重设密码 · 东昌府区公共数据开放平台",
        f"{user.name}，您好：\n\n请在 2 小时内打开以下链接重设密码（仅可使用一次）：\n{link}\n\n"
        f"Open this link within 2 hours to set a new password (it works once).\n",
    )
