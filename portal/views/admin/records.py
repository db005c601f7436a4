"""What happened: the outbox and the audit trail (search and CSV)."""
from __future__ import annotations

import datetime as dt
import json

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select

from ... import exports
from ...models import AuditEvent, OutboxMessage, User
from ...web import db
from . import bp


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    messages = db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)).all()
    return render_template("admin/outbox.html", messages=messages)


def _audit_query() -> Select[AuditEvent]:
    """The audit trail filtered by action, actor (email), target and dates."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    args = request.args
    if action := args.get("action"):
        query = query.where(AuditEvent.action == action)
    if actor := args.get("actor", "").strip():
        query = query.join(User, User.id == AuditEvent.actor_id).where(User.email.ilike(f"%{actor}%"))
    if target := args.get("target", "").strip():
        query = query.where(AuditEvent.target.ilike(f"%{target}%"))
    for name, op in (("from", "__ge__"), ("until", "__lt__")):
        if value := args.get(name):
            try:
                day = dt.date.fromisoformat(value) + (dt.timedelta(days=1) if name == "until" else dt.timedelta())
            except ValueError:
                continue
            query = query.where(getattr(AuditEvent.at, op)(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)))
    return query


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    actions = db().scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    return render_template("admin/audit.html", events=db().scalars(_audit_query().limit(500)).all(),
                           actions=actions, args=request.args)


@bp.get("/audit.csv")
def audit_csv() -> ResponseReturnValue:
    rows = ([e.id, e.at.isoformat(), e.action, e.actor_id or "", e.target or "", e.ip or "",
             json.dumps(e.detail, ensure_ascii=False)] for e in db().scalars(_audit_query()))
    return Response(exports.csv_bytes(["id", "at", "action", "actor_id", "target", "ip", "detail"], rows),
                    mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})
