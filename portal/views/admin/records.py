"""What happened: the outbox and the audit trail (search and CSV)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, or_, select

from ... import clock, exports
from ...labels import LABELS, label
from ...messages import _
from ...models import AuditEvent, Dataset, OutboxMessage, User
from ...web import db
from . import bp


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    messages = db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)).all()
    return render_template("admin/outbox.html", messages=messages)


def _audit_query() -> Select[AuditEvent]:
    """The audit trail filtered by action, actor (name or email), target and dates. A target
    may be typed as it is stored ("dataset:371502-scj-0001", "user:12") or by a dataset's
    title or a person's name."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    args = request.args
    if action := args.get("action"):
        query = query.where(AuditEvent.action == action)
    if actor := args.get("actor", "").strip():
        query = query.join(User, User.id == AuditEvent.actor_id).where(
            or_(User.email.ilike(f"%{actor}%"), User.name.ilike(f"%{actor}%"))
        )
    if target := args.get("target", "").strip():
        named = [
            f"dataset:{n}"
            for n in db().scalars(select(Dataset.name).where(Dataset.title.ilike(f"%{target}%")).limit(200))
        ]
        named += [
            f"user:{i}"
            for i in db().scalars(
                select(User.id)
                .where(or_(User.name.ilike(f"%{target}%"), User.email.ilike(f"%{target}%")))
                .limit(200)
            )
        ]
        query = query.where(or_(AuditEvent.target.ilike(f"%{target}%"), AuditEvent.target.in_(named)))
    for name, op in (("from", "__ge__"), ("until", "__lt__")):
        if value := args.get(name):
            try:
                day = dt.date.fromisoformat(value) + (
                    dt.timedelta(days=1) if name == "until" else dt.timedelta()
                )
            except ValueError:
                continue
            query = query.where(getattr(AuditEvent.at, op)(clock.start_of_day(day)))
    return query


def _readable(events: Sequence[AuditEvent]) -> list[dict]:
    """Each event as a person reads it: who (name and email), what (words), on what (a
    dataset's title, a person's name), and its details as name: value."""
    s = db()
    targets = [(e.target or "").partition(":") for e in events]
    user_ids = {e.actor_id for e in events if e.actor_id} | {
        int(key) for kind, _sep, key in targets if kind == "user" and key.isdigit()
    }
    users = {u.id: u for u in s.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    names = {key for kind, _sep, key in targets if kind == "dataset"}
    titles = (
        dict(s.execute(select(Dataset.name, Dataset.title).where(Dataset.name.in_(names))).all())
        if names
        else {}
    )
    numbers = _numbers_of(targets)

    def target_words(target: str | None) -> str:
        kind, _sep, key = (target or "").partition(":")
        if kind == "dataset" and key in titles:
            return f"{titles[key]}（{key}）"
        if kind == "user" and key.isdigit() and int(key) in users:
            return f"{users[int(key)].name}（{users[int(key)].email}）"
        if (kind, key) in numbers:  # the number people quote (ZB2026-…, SQ2026…, DCFL-…), not a row id
            return f"{TARGET_KINDS[kind]} {numbers[(kind, key)]}"
        if kind in TARGET_KINDS:
            return f"{TARGET_KINDS[kind]} {key}"
        return target or ""

    return [
        {
            "event": e,
            "actor": users.get(e.actor_id) if e.actor_id else None,
            "target": target_words(e.target),
            "what": label("audit_action", e.action),
            "details": [
                (DETAIL_NAMES.get(str(k), str(k)), _detail_value(str(k), v))
                for k, v in (e.detail or {}).items()
            ],
        }
        for e in events
    ]


def _numbers_of(targets: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """The public numbers of the tenders, applications and grants audit targets name by id."""
    from ...models import Application, Grant, Tender

    found: dict[tuple[str, str], str] = {}
    for kind, model, column in (
        ("tender", Tender, Tender.number),
        ("application", Application, Application.number),
        ("grant", Grant, Grant.licence_number),
    ):
        ids = {int(key) for k, _sep, key in targets if k == kind and key.isdigit()}
        if ids:
            found |= {
                (kind, str(i)): n for i, n in db().execute(select(model.id, column).where(model.id.in_(ids)))
            }
    return found


# What kind of thing an audit target names ("application:12" → 申请 12).
TARGET_KINDS = {
    "application": _("申请"),
    "tender": _("招标"),
    "token": _("令牌"),
    "grant": _("授权"),
    "bid": _("投标"),
    "data_request": _("数据需求"),
    "calendar": _("节假日安排"),
    "user": _("用户"),
}

# An audit detail's name, and the label table its values come from where they are codes.
DETAIL_NAMES = {
    "from_status": _("原状态"),
    "to_status": _("新状态"),
    "route": _("途径"),
    "to": _("改为"),
    "from": _("原为"),
    "decision": _("决定"),
    "kind": _("用户类型"),
    "purpose": _("用途"),
    "status": _("状态"),
    "datasets": _("数据集"),
    "fields": _("字段"),
    "masking": _("脱敏方式"),
    "reason": _("理由"),
    "email": _("邮箱"),
    "name": _("名称"),
    "department": _("部门"),
    "year": _("年份"),
    "days": _("天数"),
    "licence": _("授权编号"),
    "application": _("申请"),
    "bid": _("投标"),
    "credit_code": _("统一社会信用代码"),
    "dataset": _("数据集"),
    "sensitive": _("涉及秘密或隐私"),
    "via": _("方式"),
    "winner": _("中标人"),
    "rows": _("行数"),
    "bytes": _("字节数"),
    "receipt": _("投标回执"),
    "agreement_sha256": _("协议摘要（SHA-256）"),
    "bids": _("有效投标数"),
    "bids_resealed": _("重新加密的投标数"),
    "round": _("轮次"),
}
# Values that are codes of their own.
DETAIL_VALUES = {"via": {"cli": _("命令行"), "web": _("网页")}}
DETAIL_KINDS = {
    "from_status": "application_status",
    "to_status": "application_status",
    "route": "route",
    "to": "open_class",
    "from": "open_class",
    "decision": "restriction_decision",
    "kind": "user_kind",
    "purpose": "purpose",
    "status": "application_status",
}


def _detail_value(key: str, value: object) -> str:
    if isinstance(value, list):
        return "、".join(_detail_value(key, v) for v in value)
    if isinstance(value, dict):
        return "；".join(
            f"{DETAIL_NAMES.get(str(k), k)}: {_detail_value(str(k), v)}" for k, v in value.items()
        )
    if key in DETAIL_KINDS and isinstance(value, str) and value in LABELS[DETAIL_KINDS[key]]:
        return str(LABELS[DETAIL_KINDS[key]][value])
    if key == "status" and isinstance(value, str) and value in LABELS["tender_status"]:  # a tender's
        return str(LABELS["tender_status"][value])
    if isinstance(value, str) and value in DETAIL_VALUES.get(key, {}):
        return str(DETAIL_VALUES[key][value])
    return "" if value is None else str(value)


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    actions = db().scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    events = db().scalars(_audit_query().limit(500)).all()
    return render_template(
        "admin/audit.html",
        events=_readable(events),
        actions=[(a, label("audit_action", a)) for a in actions],
        args=request.args,
    )


@bp.get("/audit.csv")
def audit_csv() -> ResponseReturnValue:
    # Read by people (in a spreadsheet) and by programs: the words of the page beside the codes,
    # times in Beijing time with their offset.
    events = _readable(db().scalars(_audit_query()).all())
    rows = (
        [
            r["event"].id,
            clock.local(r["event"].at).isoformat(timespec="seconds"),
            str(r["what"]),
            r["event"].action,
            r["actor"].name if r["actor"] else "",
            r["actor"].email if r["actor"] else "",
            r["target"],
            r["event"].target or "",
            r["event"].ip or "",
            "；".join(f"{k}: {v}" for k, v in r["details"]),
            json.dumps(r["event"].detail, ensure_ascii=False),
        ]
        for r in events
    )
    header = [
        _("编号"),
        _("时间（北京时间）"),
        _("操作"),
        "action",
        _("操作人"),
        _("邮箱"),
        _("对象"),
        "target",
        "IP",
        _("详情"),
        "detail",
    ]
    return Response(
        exports.csv_bytes([str(h) for h in header], rows),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit.csv"},
    )
