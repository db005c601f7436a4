"""Conditional data: apply, follow, review, accept, download under licence, report, revoke,
check a licence. Thin: the rules are in licenses/."""
from __future__ import annotations

import datetime as dt
import hashlib
import shutil

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from licenses import applications as apps
from licenses import grants, notify
from licenses.applications import LicenceError
from portal import catalog, clock

from ..authz import Action, public, requires
from ..forms import ActionForm
from ..models import Application, Grant, LicensedDownload, OpenClass, Purpose
from ..web import db, portal

bp = Blueprint("licensing", __name__)


def _site() -> str:
    return request.host_url.rstrip("/")


def _notify(app: Application, step: str) -> None:
    notify.application_step(db(), app, step, _site(), portal().settings.smtp_url)


def _csrf_ok() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _application(app_id: int) -> Application:
    app = db().get(Application, app_id) or abort(404)
    if not apps.may_view(current_user, app):
        abort(404)  # another user's application does not exist for them
    return app


def _date(name: str, default: dt.date | None = None) -> dt.date:
    try:
        return dt.date.fromisoformat(request.form.get(name, ""))
    except ValueError:
        if default is None:
            raise LicenceError("日期格式不正确 / invalid date") from None
        return default


@bp.route("/apply", methods=["GET", "POST"])
@requires(Action.ACCOUNT)
def apply():
    s = db()
    names = list(dict.fromkeys(request.values.getlist("dataset")))  # in the query and the form: once each
    datasets = [d for d in (catalog.get_public_dataset(s, n) for n in names) if d is not None]
    datasets = [d for d in datasets if d.open_class == OpenClass.CONDITIONAL.value]
    if not datasets:
        abort(404)
    error = None
    if request.method == "POST":
        _csrf_ok()
        chosen = []
        for ds in datasets:
            if request.form.get(f"all_fields_{ds.name}"):
                chosen.append((ds, None))
            else:
                chosen.append((ds, request.form.getlist(f"fields_{ds.name}")))
        try:
            made = apps.apply(s, current_user, apps.Request(
                datasets=chosen, purpose=request.form.get("purpose", ""), scenario=request.form.get("scenario", ""),
                security_measures=request.form.get("security", ""),
                period_from=_date("period_from", dt.date.min), period_until=_date("period_until", dt.date.min)),
                working_days=portal().settings.consent_working_days, ip=request.remote_addr)
        except LicenceError as exc:
            s.rollback()
            error = str(exc)
        else:
            for app in made:
                _notify(app, "interest" if app.route == "tender" else "submitted")
            s.commit()
            flash(f"已提交 {len(made)} 份申请。/ Submitted.")
            return redirect(url_for("licensing.mine"))
    return render_template("licensing/apply.html", datasets=datasets, purposes=list(Purpose), error=error,
                           action=ActionForm(), today=clock.today(),
                           until=clock.today() + dt.timedelta(days=365)), (400 if error else 200)


@bp.get("/applications")
@requires(Action.ACCOUNT)
def mine():
    rows = db().scalars(select(Application).where(Application.applicant_id == current_user.id)
                        .order_by(Application.id.desc())).all()
    return render_template("licensing/mine.html", applications=rows, action=ActionForm())


@bp.get("/applications/<int:app_id>")
@requires(Action.ACCOUNT)
def show(app_id: int):
    app = _application(app_id)
    text = sha = None
    if app.status == "approved" and current_user.id == app.applicant_id:
        text = grants.agreement_for(app, _site())
        sha = hashlib.sha256(text.encode()).hexdigest()
    return render_template("licensing/show.html", app=app, agreement_text=text, agreement_sha=sha,
                           may_review=apps.may_review(current_user, app), action=ActionForm(),
                           today=clock.today())


@bp.get("/applications/<int:app_id>/decision")
@requires(Action.ACCOUNT)
def decision(app_id: int):
    """A refusal as a written decision (不予提供决定书): printable, for the applicant, the
    provider and the bureau (Art. 25: reasons; Jiangsu Art. 18: in writing)."""
    app = _application(app_id)
    if app.status != "refused":
        abort(404)
    decided = clock.local(app.decided_at) if app.decided_at else None
    return render_template("licensing/decision.html", app=app, decided=decided)


@bp.get("/applications/<int:app_id>/decision.pdf")
@requires(Action.ACCOUNT)
def decision_pdf(app_id: int):
    from flask import Response

    from licenses.decision_pdf import decision_pdf as make

    app = _application(app_id)
    if app.status != "refused":
        abort(404)
    from ..storage import attachment_header

    return Response(make(app), mimetype="application/pdf",
                    headers={"Content-Disposition": attachment_header(f"不予提供决定书-{app.number}.pdf")})


def _act(app_id: int, step: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    _csrf_ok()
    s = db()
    app = _application(app_id)
    try:
        result = fn(s, current_user, app, int(request.form.get("version", 0)), *args, ip=request.remote_addr, **kwargs)
    except PermissionError:
        abort(403)
    except LicenceError as exc:
        s.rollback()
        flash(str(exc), "error")
        return redirect(url_for("licensing.show", app_id=app_id)), None
    _notify(app, step)
    s.commit()
    return redirect(url_for("licensing.show", app_id=app_id)), result


@bp.post("/applications/<int:app_id>/withdraw")
@requires(Action.ACCOUNT)
def withdraw(app_id: int):
    return _act(app_id, "withdraw", apps.withdraw)[0]


@bp.post("/applications/<int:app_id>/answer")
@requires(Action.ACCOUNT)
def answer(app_id: int):
    return _act(app_id, "answer", apps.answer, request.form.get("text", ""),
                working_days=portal().settings.consent_working_days)[0]


@bp.post("/applications/<int:app_id>/decide")
@requires(Action.ACCOUNT)
def decide(app_id: int):
    decision = request.form.get("decision")
    if decision == "refuse":
        return _act(app_id, "refuse", apps.refuse, request.form.get("note", ""))[0]
    if decision == "request_info":
        return _act(app_id, "request_info", apps.request_info, request.form.get("note", ""))[0]
    if decision == "to_tender":
        return _act(app_id, "to_tender", apps.to_tender, request.form.get("note", ""))[0]
    if decision != "approve":
        abort(400)
    app = _application(app_id)
    fields, filters = {}, {}
    for item in app.items:
        if not request.form.get(f"all_{item.id}"):
            fields[item.id] = request.form.getlist(f"fields_{item.id}")
        column, values = request.form.get(f"filter_column_{item.id}", ""), request.form.get(f"filter_values_{item.id}", "")
        if column.strip() and values.strip():
            filters[item.id] = {column.strip(): [v.strip() for v in values.replace("，", ",").split(",") if v.strip()]}
    try:
        start, end = _date("valid_from"), _date("valid_until")
    except LicenceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("licensing.show", app_id=app_id))
    return _act(app_id, "approve", apps.approve, fields=fields, row_filters=filters, valid_from=start,
                valid_until=end, note=request.form.get("note") or None)[0]


@bp.post("/applications/<int:app_id>/accept")
@requires(Action.ACCOUNT)
def accept(app_id: int):
    if not request.form.get("agree"):
        flash("请勾选“我已阅读并同意协议全部条款” / tick the box to accept", "error")
        return redirect(url_for("licensing.show", app_id=app_id))
    response, grant = _act(app_id, "accept", grants.accept, request.form.get("agreement_sha256", ""), _site())
    if grant is not None:
        return redirect(url_for("licensing.my_grants"))
    return response


@bp.get("/console/applications")
@requires(Action.ACCOUNT)
def review_queue():
    if not (current_user.is_curator or current_user.is_bureau):
        abort(403)
    department_id = None if current_user.is_bureau else current_user.curator_department_id
    return render_template("licensing/queue.html", applications=apps.queue(db(), department_id),
                           overdue={a.id for a in apps.overdue(db())}, today=clock.today())


@bp.get("/grants")
@requires(Action.ACCOUNT)
def my_grants():
    rows = db().scalars(select(Grant).where(Grant.user_id == current_user.id).order_by(Grant.id.desc())).all()
    secret = current_app.config["SECRET_KEY"]
    links = {(g.id, item.id): url_for("licensing.licensed_download", grant_id=g.id,
                                      token=grants.download_link_token(secret, current_user, g, item))
             for g in rows if g.state() == "valid" for item in g.application.items}
    return render_template("licensing/grants.html", grants=rows, links=links, action=ActionForm(),
                           next_due={g.id: grants.next_report_due(g) for g in rows})


@bp.get("/grants/<int:grant_id>/download/<token>")
@requires(Action.ACCOUNT)
def licensed_download(grant_id: int, token: str):
    s = db()
    try:
        grant, item = grants.check_download(s, current_app.config["SECRET_KEY"], token, current_user, grant_id)
    except PermissionError as exc:
        return render_template("licensing/refused.html", reason=str(exc)), 403
    made = grants.build_licensed_zip(s, portal().storage, grant, item, current_user, _site(), ip=request.remote_addr)
    s.commit()
    # Licensed data is made for this one download and not kept: the folder goes at once, the
    # open file is still sent (POSIX keeps an unlinked file readable while it is open).
    handle = open(made.path, "rb")  # noqa: SIM115 (closed by the response)
    shutil.rmtree(made.path.parent, ignore_errors=True)
    return send_file(handle, mimetype="application/zip", as_attachment=True, download_name=made.name, max_age=0)


@bp.post("/grants/<int:grant_id>/report")
@requires(Action.ACCOUNT)
def report(grant_id: int):
    _csrf_ok()
    s = db()
    grant = s.get(Grant, grant_id)
    if grant is None or grant.user_id != current_user.id:
        abort(404)
    try:
        grants.report_usage(s, current_user, grant, request.form.get("what", ""), request.form.get("where", ""),
                            ip=request.remote_addr)
    except LicenceError as exc:
        s.rollback()
        flash(str(exc), "error")
    else:
        s.commit()
        flash("已提交开发利用情况报告。/ Usage report filed.")
    return redirect(url_for("licensing.my_grants"))


@bp.post("/grants/<int:grant_id>/revoke")
@requires(Action.ACCOUNT)
def revoke(grant_id: int):
    _csrf_ok()
    s = db()
    grant = s.get(Grant, grant_id) or abort(404)
    try:
        grants.revoke(s, current_user, grant, request.form.get("reason", ""), ip=request.remote_addr)
    except PermissionError:
        abort(403)
    except LicenceError as exc:
        s.rollback()
        flash(str(exc), "error")
        return redirect(request.referrer or url_for("licensing.licence", number=grant.licence_number))
    _notify(grant.application, "revoked")
    s.commit()
    flash("授权已撤销，立即失效。/ Grant revoked.")
    return redirect(url_for("licensing.licence", number=grant.licence_number))


@bp.get("/licences/<number>")
@public
def licence(number: str):
    """Public: is this licence valid, expired or revoked; for which datasets and purpose."""
    grant = grants.by_licence(db(), number)
    if grant is None:
        return render_template("licensing/licence.html", grant=None, number=number), 404
    return render_template("licensing/licence.html", grant=grant, number=grant.licence_number,
                           state=grant.state(), action=ActionForm(),
                           may_revoke=current_user.is_authenticated and grants.may_revoke(current_user, grant))


@bp.get("/admin/licensing")
@requires(Action.BUREAU)
def oversight():
    s = db()
    return render_template("licensing/oversight.html", overdue=apps.overdue(s), missing=grants.missing_reports(s),
                           grants=s.scalars(select(Grant).order_by(Grant.id.desc()).limit(200)).all(),
                           today=clock.today())



@bp.get("/admin/licensing/grants/<int:grant_id>")
@requires(Action.BUREAU)
def grant_use(grant_id: int):
    """One grant as the bureau follows its use (Art. 25): usage reports with what was built
    and where it is used, every licensed download and data API call, the next report due."""
    s = db()
    grant = s.get(Grant, grant_id) or abort(404)
    downloads = s.scalars(select(LicensedDownload).where(LicensedDownload.grant_id == grant.id)
                          .order_by(LicensedDownload.id.desc()).limit(500)).all()
    return render_template("licensing/grant_use.html", grant=grant, downloads=downloads,
                           next_due=grants.next_report_due(grant), today=clock.today())
