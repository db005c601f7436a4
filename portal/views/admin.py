"""The bureau's pages for accounts: users, researcher verification, roles, outbox, audit.
(The dashboard and the rest of /admin come with the console issue.)"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from .. import accounts
from ..accounts import AccountError
from ..auth import bureau_required
from ..forms import ActionForm, CuratorForm
from ..models import AuditEvent, Department, OutboxMessage, User
from ..web import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _user(user_id: int) -> User:
    return db().get(User, user_id) or abort(404)


@bp.get("/users")
@bureau_required
def users():
    s = db()
    query = select(User).order_by(User.id.desc())
    if q := request.args.get("q", "").strip():
        like = f"%{q}%"
        query = query.where(or_(User.email.ilike(like), User.name.ilike(like), User.company_name.ilike(like),
                                User.institution.ilike(like)))
    if request.args.get("pending") == "researchers":
        query = query.where(User.kind == "researcher", User.researcher_verified_at.is_(None))
    departments = s.scalars(select(Department).order_by(Department.name)).all()
    form = CuratorForm()
    form.department.choices = [("", "（无）")] + [(d.code, d.name) for d in departments]
    return render_template("admin/users.html", users=s.scalars(query.limit(200)).all(), form=form,
                           action=ActionForm(), q=q)


@bp.post("/users/<int:user_id>/verify-researcher")
@bureau_required
def verify_researcher(user_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    s = db()
    try:
        accounts.verify_researcher(s, current_user, _user(user_id), ip=request.remote_addr)
    except AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"))
    s.commit()
    flash("已认证科研人员所在机构。/ Researcher verified.")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/curator")
@bureau_required
def appoint_curator(user_id: int):
    form = CuratorForm()
    if not form.validate_on_submit():
        abort(400)
    s = db()
    department = None
    if form.department.data:
        department = s.scalar(select(Department).where(Department.code == form.department.data)) or abort(400)
    accounts.appoint_curator(s, current_user, _user(user_id), department, ip=request.remote_addr)
    s.commit()
    flash("已更新管理员任命。/ Curator appointment saved.")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/bureau/<state>")
@bureau_required
def set_bureau(user_id: int, state: str):
    if not ActionForm().validate_on_submit() or state not in ("grant", "revoke"):
        abort(400)
    s = db()
    try:
        accounts.set_bureau(s, current_user, _user(user_id), state == "grant", ip=request.remote_addr)
    except AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"))
    s.commit()
    return redirect(url_for("admin.users"))


@bp.get("/outbox")
@bureau_required
def outbox():
    messages = db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)).all()
    return render_template("admin/outbox.html", messages=messages)


@bp.get("/audit")
@bureau_required
def audit():
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if action := request.args.get("action"):
        query = query.where(AuditEvent.action == action)
    return render_template("admin/audit.html", events=db().scalars(query.limit(500)).all(), action=action)
