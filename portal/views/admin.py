"""The bureau's pages for accounts: users, researcher verification, roles, outbox, audit.
(The dashboard and the rest of /admin come with the console issue.)"""
from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from licenses import applications as apps
from licenses import grants

from .. import accounts, charts, exports, stats
from ..accounts import AccountError
from ..authz import Action, requires
from ..forms import ActionForm, CuratorForm
from ..models import AuditEvent, Department, HarvestJob, OutboxMessage, User
from ..web import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _user(user_id: int) -> User:
    return db().get(User, user_id) or abort(404)


@bp.get("/users")
@requires(Action.BUREAU)
def users():
    s = db()
    query = select(User).order_by(User.id.desc())
    if q := request.args.get("q", "").strip():
        like = f"%{q}%"
        query = query.where(or_(User.email.ilike(like), User.name.ilike(like), User.company_name.ilike(like),
                                User.institution.ilike(like)))
    if request.args.get("pending") == "researchers":
        query = query.where(User.kind == "researcher", User.researcher_verified_at.is_(None))
    if request.args.get("pending") == "companies":
        query = query.where(User.kind == "company", User.company_verified_at.is_(None))
    departments = s.scalars(select(Department).order_by(Department.name)).all()
    form = CuratorForm()
    form.department.choices = [("", "（无）")] + [(d.code, d.name) for d in departments]
    return render_template("admin/users.html", users=s.scalars(query.limit(200)).all(), form=form,
                           action=ActionForm(), q=q)


def _verify(user_id: int, service, done: str):  # noqa: ANN001, ANN202
    """The bureau verifies an account (a researcher's institution, a company): one idiom."""
    if not ActionForm().validate_on_submit():
        abort(400)
    s = db()
    try:
        service(s, current_user, _user(user_id), ip=request.remote_addr)
    except AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"))
    s.commit()
    flash(done)
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/verify-researcher")
@requires(Action.BUREAU)
def verify_researcher(user_id: int):
    return _verify(user_id, accounts.verify_researcher, "已认证科研人员所在机构。/ Researcher verified.")


@bp.post("/users/<int:user_id>/verify-company")
@requires(Action.BUREAU)
def verify_company(user_id: int):
    return _verify(user_id, accounts.verify_company, "已认证企业。/ Company verified.")


@bp.post("/users/<int:user_id>/curator")
@requires(Action.BUREAU)
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
@requires(Action.BUREAU)
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
@requires(Action.BUREAU)
def outbox():
    messages = db().scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)).all()
    return render_template("admin/outbox.html", messages=messages)


def _audit_query():  # noqa: ANN202
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
@requires(Action.BUREAU)
def audit():
    actions = db().scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    return render_template("admin/audit.html", events=db().scalars(_audit_query().limit(500)).all(),
                           actions=actions, args=request.args)


@bp.get("/audit.csv")
@requires(Action.BUREAU)
def audit_csv():
    rows = ([e.id, e.at.isoformat(), e.action, e.actor_id or "", e.target or "", e.ip or "",
             json.dumps(e.detail, ensure_ascii=False)] for e in db().scalars(_audit_query()))
    return Response(exports.csv_bytes(["id", "at", "action", "actor_id", "target", "ip", "detail"], rows),
                    mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})


@bp.get("/")
@requires(Action.BUREAU)
def dashboard():
    s = db()
    period = stats.period_of(request.args.get("period"))
    labels, series = stats.class_by_department(s)
    total = sum(sum(v) for v in series.values()) or 1
    opened = sum(series["无条件开放"]) + sum(series["有条件开放"])
    days = stats.decision_days(s)
    downloads = stats.downloads_per_day(s)
    return render_template(
        "admin/dashboard.html", class_chart=charts.stacked_bars("各部门数据条目（按开放类型）", labels, series),
        labels=labels, series=series, opening_rate=opened / total, downloads=downloads,
        downloads_chart=charts.line("近 30 天下载量（含授权下载）", downloads), routes=stats.applications_by_route(s),
        median=stats.percentile(days, 50), p90=stats.percentile(days, 90), decided=len(days),
        overdue=apps.overdue(s), tenders=stats.tenders_by_status(s),
        evaluation=stats.evaluation(s, period=period[:2]), period=period, period_arg=request.args.get("period", ""),
        missing_reports=grants.missing_reports(s))


@bp.get("/evaluation.csv")
@requires(Action.BUREAU)
def evaluation_csv():
    period = stats.period_of(request.args.get("period"))
    header = ["部门", "代码", "目录条目", "已开放", "开放率", "暂缓", "未按周期更新", "数据申请", "按期办结率",
              "办理天数中位数", "下载次数", "逾期未办结申请", "逾期纠错", "逾期需求", "缺少利用报告", "期间"]
    rows = ([r.department, r.code, r.entries, r.published, f"{r.opening_rate:.1%}", r.held, r.stale, r.applications,
             "" if r.on_time is None else f"{r.on_time:.0%}", "" if r.median_days is None else f"{r.median_days:.1f}",
             r.downloads, r.undecided_late, r.late_error_reports, r.late_requests, r.missing_usage_reports, period[2]]
            for r in stats.evaluation(db(), period=period[:2]))
    return Response(exports.csv_bytes(header, rows), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=evaluation.csv"})


def calendar_dates(text: str) -> list[dt.date]:
    """Dates as the State Council's notice writes them: 2027-1-1, 2027年1月1日, 2027.10.01, and
    ranges 2027-10-01至2027-10-07 (至, ~, 到, –). A malformed date is an error, never dropped."""
    import re

    one = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    found: list[dt.date] = []
    rest = text
    for m in re.finditer(rf"{one}(?:\s*(?:至|到|~|～|–|—|-{{2}})\s*{one})?", text):
        start = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        end = dt.date(int(m.group(4)), int(m.group(5)), int(m.group(6))) if m.group(4) else start
        if end < start or (end - start).days > 31:
            raise ValueError("range")
        found += [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        rest = rest.replace(m.group(0), " ", 1)
    if re.search(r"\d", rest):  # digits left over: a date written in a way not understood
        raise ValueError("unread date")
    return found


@bp.route("/calendar", methods=["GET", "POST"])
@requires(Action.BUREAU)
def calendar():
    """The State Council's holiday schedule, entered when published: open deadlines are
    recounted on it (licenses.applications.enter_schedule)."""

    from licenses.applications import LicenceError, enter_schedule

    from ..models import CalendarDay

    s = db()
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            year = int(request.form.get("year", ""))
            if not 2000 <= year <= 2100:
                raise ValueError
            found = {kind: calendar_dates(request.form.get(kind, "")) for kind in ("holidays", "workdays")}
            moved = enter_schedule(s, current_user, year, found["holidays"], found["workdays"], ip=request.remote_addr)
        except LicenceError as exc:  # before ValueError: LicenceError is one
            s.rollback()
            flash(str(exc), "error")
        except ValueError:
            s.rollback()
            flash("请填写年份（2000–2100）和日期（如 2027-01-01 或 2027-10-01至2027-10-07） / enter the year and the "
                  "dates", "error")
        else:
            s.commit()
            flash(f"已录入 {year} 年节假日安排，重新核定办理期限 {len(moved)} 件。/ Schedule entered; "
                  f"{len(moved)} deadlines recounted.")
            return redirect(url_for("admin.calendar"))
    days = s.scalars(select(CalendarDay).order_by(CalendarDay.day)).all()
    years: dict[int, dict[str, list]] = {}
    for d in days:
        years.setdefault(d.day.year, {"holidays": [], "workdays": []})["workdays" if d.workday else "holidays"].append(d.day)
    return render_template("admin/calendar.html", years=years, action=form)


@bp.get("/harvest")
@requires(Action.BUREAU)
def harvest_jobs():
    s = db()
    jobs = s.scalars(select(HarvestJob).order_by(HarvestJob.id.desc()).limit(100)).all()
    job = s.get(HarvestJob, request.args.get("job", type=int)) if request.args.get("job") else None
    from harvest.gate import explain

    from ..i18n import select_locale

    lang = select_locale()
    return render_template("admin/harvest.html", jobs=jobs, job=job, explain=lambda d: explain(d, lang))


@bp.get("/duplicates")
@requires(Action.BUREAU)
def duplicates():
    from harvest.duplicates import likely_duplicates

    return render_template("admin/duplicates.html", pairs=likely_duplicates(db()))
