"""Accounts: users, roles, verification of researchers and companies."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import or_, select

from ... import accounts
from ...forms import CuratorForm, TokenQuotaForm
from ...messages import _
from ...models import ApiToken, Department, User
from ...web import back, db, done
from . import bp


@bp.get("/users")
def users() -> ResponseReturnValue:
    s = db()
    query = select(User).order_by(User.id.desc())
    if q := request.args.get("q", "").strip():
        like = f"%{q}%"
        query = query.where(
            or_(
                User.email.ilike(like),
                User.name.ilike(like),
                User.company_name.ilike(like),
                User.institution.ilike(like),
            )
        )
    if request.args.get("pending") == "researchers":
        query = query.where(User.kind == "researcher", User.researcher_verified_at.is_(None))
    if request.args.get("pending") == "companies":
        query = query.where(User.kind == "company", User.company_verified_at.is_(None))
    departments = s.scalars(select(Department).order_by(Department.name)).all()
    form = CuratorForm()
    form.department.choices = [("", _("（无）"))] + [(d.code, d.name) for d in departments]  # type: ignore[assignment]  # a lazy Message label
    return render_template("admin/users.html", users=s.scalars(query.limit(200)).all(), form=form, q=q)


def _target(user_id: int) -> User:
    back(url_for("admin.users"))
    return db().get(User, user_id) or abort(404)


@bp.post("/users/<int:user_id>/verify-researcher")
def verify_researcher(user_id: int) -> ResponseReturnValue:
    accounts.verify_researcher(db(), current_user, _target(user_id), ip=request.remote_addr)
    return done(_("已认证科研人员所在机构。"))


@bp.post("/users/<int:user_id>/verify-company")
def verify_company(user_id: int) -> ResponseReturnValue:
    accounts.verify_company(db(), current_user, _target(user_id), ip=request.remote_addr)
    return done(_("已认证企业。"))


@bp.post("/users/<int:user_id>/curator")
def appoint_curator(user_id: int) -> ResponseReturnValue:
    form = CuratorForm()
    if not form.validate_on_submit():
        abort(400)
    s = db()
    department = None
    if form.department.data:
        department = s.scalar(select(Department).where(Department.code == form.department.data)) or abort(400)
    accounts.appoint_curator(s, current_user, _target(user_id), department, ip=request.remote_addr)
    return done(_("已更新管理员任命。"))


@bp.post("/users/<int:user_id>/bureau/<any(grant, revoke):state>")
def set_bureau(user_id: int, state: str) -> ResponseReturnValue:
    accounts.set_bureau(db(), current_user, _target(user_id), state == "grant", ip=request.remote_addr)
    return done()


@bp.post("/tokens/<int:token_id>/quota")
def token_quota(token_id: int) -> ResponseReturnValue:
    """One API token's daily quota (portal/views/api_usage.py counts it)."""
    back(url_for("admin.users", q=request.args.get("q") or None))
    token = db().get(ApiToken, token_id) or abort(404)
    form = TokenQuotaForm()
    if not form.validate():
        abort(400)
    accounts.set_token_quota(db(), current_user, token, form.quota.data, ip=request.remote_addr)
    return done(_("已更新该令牌的每日限额。"))
