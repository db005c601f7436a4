"""Conditional data: apply, follow, review, accept, download under licence, report, revoke,
check a licence. Thin: the rules are in licenses/."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licenses import applications as apps
from licenses import grants, notify
from licenses.errors import LicenceError, LinkRefused
from portal import catalog, clock, jobs
from portal.messages import _

from ..authz import Action, can, public, require, requires
from ..forms import (
    AcceptForm,
    FormError,
    InfoAnswerForm,
    RevokeForm,
    UsageReportForm,
    VersionForm,
    apply_form,
    checked,
    decision_form,
    with_ids,
)
from ..identity import RealNameRule
from ..models import Application, Grant, Job, OpenClass, Purpose
from ..web import back, db, done, portal, tell

bp = Blueprint("licensing", __name__)


def _site() -> str:
    return request.host_url.rstrip("/")


def _notify(app: Application, step: str) -> None:
    notify.application_step(db(), app, step, _site())


def _application(app_id: int) -> Application:
    """An application the person may see (another user's does not exist for them); a refusal
    of what they do with it comes back to its page."""
    app = db().get(Application, app_id) or abort(404)
    require(current_user, Action.VIEW_APPLICATION, app)
    back(url_for("licensing.show", app_id=app.id))
    return app


@bp.route("/apply", methods=["GET", "POST"])
@requires(Action.ACCOUNT)
def apply() -> ResponseReturnValue:
    s = db()
    names = list(dict.fromkeys(request.values.getlist("dataset")))  # in the query and the form: once each
    datasets = [d for d in (catalog.get_public_dataset(s, n) for n in names) if d is not None]
    datasets = [d for d in datasets if d.open_class == OpenClass.CONDITIONAL.value]
    if not datasets:
        abort(404)
    error = None
    form = apply_form(datasets)
    if request.method == "POST":
        chosen = [
            (ds, None if form[f"all_fields_{ds.name}"].data else form[f"fields_{ds.name}"].data)
            for ds in datasets
        ]
        try:
            checked(form)
            made = apps.apply(
                s,
                current_user,
                apps.Request(
                    datasets=chosen,
                    purpose=form.purpose.data or "",
                    scenario=form.scenario.data or "",
                    security_measures=form.security.data or "",
                    period_from=form.period_from.data or dt.date.min,
                    period_until=form.period_until.data or dt.date.min,
                ),
                working_days=portal().settings.consent_working_days,
                ip=request.remote_addr,
                real_name=RealNameRule.of(portal().settings),
            )
        except (LicenceError, FormError) as exc:
            s.rollback()
            error = str(exc)
        else:
            for app in made:
                _notify(app, "interest" if app.route == "tender" else "submitted")
            s.commit()
            tell(_("已提交 %(len)s 份申请。", len=len(made)))
            return redirect(url_for("licensing.mine"))
    return render_template(
        "licensing/apply.html",
        datasets=datasets,
        purposes=list(Purpose),
        error=error,
        today=clock.today(),
        until=clock.today() + dt.timedelta(days=365),
    ), (400 if error else 200)


@bp.get("/applications")
@requires(Action.ACCOUNT)
def mine() -> ResponseReturnValue:
    rows = (
        db()
        .scalars(
            select(Application)
            .where(Application.applicant_id == current_user.id)
            .order_by(Application.id.desc())
        )
        .all()
    )
    return render_template("licensing/mine.html", applications=rows)


@bp.get("/applications/<int:app_id>")
@requires(Action.VIEW_APPLICATION)
def show(app_id: int) -> ResponseReturnValue:
    app = _application(app_id)
    text = sha = None
    if app.status == "approved" and current_user.id == app.applicant_id:
        text = grants.agreement_for(app, _site())
        sha = hashlib.sha256(text.encode()).hexdigest()
    return render_template(
        "licensing/show.html",
        app=app,
        agreement_text=text,
        agreement_sha=sha,
        may_review=can(current_user, Action.DECIDE_APPLICATION, app),
        today=clock.today(),
    )


@bp.get("/applications/<int:app_id>/decision")
@requires(Action.VIEW_APPLICATION)
def decision(app_id: int) -> ResponseReturnValue:
    """A refusal as a written decision (不予提供决定书): printable, for the applicant, the
    provider and the bureau (Art. 25: reasons; Jiangsu Art. 18: in writing)."""
    app = _application(app_id)
    if app.status != "refused":
        abort(404)
    decided = clock.local(app.decided_at) if app.decided_at else None
    return render_template("licensing/decision.html", app=app, decided=decided)


@bp.get("/applications/<int:app_id>/decision.pdf")
@requires(Action.VIEW_APPLICATION)
def decision_pdf(app_id: int) -> ResponseReturnValue:
    from licenses.decision_pdf import decision_pdf as make

    app = _application(app_id)
    if app.status != "refused":
        abort(404)
    from ..storage import attachment_header

    return Response(
        make(app),
        mimetype="application/pdf",
        headers={"Content-Disposition": attachment_header(f"不予提供决定书-{app.number}.pdf")},
    )


def _version(form: VersionForm | None = None) -> int:
    """The version of the application the person saw: a step on a changed one is refused."""
    return checked(form or VersionForm()).version.data or 0


def _stepped(app: Application, step: str) -> ResponseReturnValue:
    _notify(app, step)
    return done()


@bp.post("/applications/<int:app_id>/withdraw")
@requires(Action.ACT_AS_APPLICANT)
def withdraw(app_id: int) -> ResponseReturnValue:
    app = _application(app_id)
    apps.withdraw(db(), current_user, app, _version(), ip=request.remote_addr)
    return _stepped(app, "withdraw")


@bp.post("/applications/<int:app_id>/answer")
@requires(Action.ACT_AS_APPLICANT)
def answer(app_id: int) -> ResponseReturnValue:
    app = _application(app_id)
    form = InfoAnswerForm()
    apps.answer(
        db(),
        current_user,
        app,
        _version(form),
        form.text.data or "",
        ip=request.remote_addr,
        working_days=portal().settings.consent_working_days,
    )
    return _stepped(app, "answer")


DECISIONS = {"refuse": apps.refuse, "request_info": apps.request_info, "to_tender": apps.to_tender}


@bp.post("/applications/<int:app_id>/decide")
@requires(Action.DECIDE_APPLICATION)
def decide(app_id: int) -> ResponseReturnValue:
    app = _application(app_id)
    form = checked(decision_form(app.items))
    decision = form.decision.data
    if decision != "approve" and decision not in DECISIONS:
        abort(400)
    if decision in DECISIONS:
        DECISIONS[decision](
            db(), current_user, app, _version(form), form.note.data or "", ip=request.remote_addr
        )
        return _stepped(app, decision)
    fields: dict[int, list[str] | None] = {}
    filters: dict[int, dict | None] = {}
    for item in app.items:
        if not form[f"all_{item.id}"].data:
            fields[item.id] = form[f"fields_{item.id}"].data
        column, values = (
            (form[f"filter_column_{item.id}"].data or "").strip(),
            form[f"filter_values_{item.id}"].data or "",
        )
        if column and values.strip():
            filters[item.id] = {
                column: [v.strip() for v in values.replace("，", ",").split(",") if v.strip()]
            }
    if form.valid_from.data is None or form.valid_until.data is None:
        raise LicenceError(_("日期格式不正确"))
    apps.approve(
        db(),
        current_user,
        app,
        _version(form),
        fields=fields,
        row_filters=filters,
        valid_from=form.valid_from.data,
        valid_until=form.valid_until.data,
        note=form.note.data or None,
        ip=request.remote_addr,
        delivery=request.form.get("delivery", "file"),
    )
    return _stepped(app, "approve")


@bp.post("/applications/<int:app_id>/accept")
@requires(Action.ACT_AS_APPLICANT)
def accept(app_id: int) -> ResponseReturnValue:
    app = _application(app_id)
    form = checked(AcceptForm())
    if not form.agree.data:
        raise LicenceError(_("请勾选“我已阅读并同意协议全部条款”"))
    grants.accept(
        db(),
        current_user,
        app,
        _version(form),
        form.agreement_sha256.data or "",
        _site(),
        ip=request.remote_addr,
    )
    _notify(app, "accept")
    return done(to=url_for("licensing.my_grants"))


@bp.get("/grants")
@requires(Action.ACCOUNT)
def my_grants() -> ResponseReturnValue:
    rows = db().scalars(select(Grant).where(Grant.user_id == current_user.id).order_by(Grant.id.desc())).all()
    secret = current_app.config["SECRET_KEY"]
    links = {
        (g.id, item.id): url_for(
            "licensing.licensed_download",
            grant_id=g.id,
            token=grants.download_link_token(secret, current_user, g, item),
        )
        for g in rows
        if g.state() == "valid" and g.delivery == "file"
        for item in g.application.items
    }
    report_forms = {g.id: with_ids(UsageReportForm(formdata=None), g.id) for g in rows}
    return render_template(
        "licensing/grants.html",
        grants=rows,
        links=links,
        report_forms=report_forms,
        next_due={g.id: grants.next_report_due(g) for g in rows},
    )


@bp.get("/grants/<int:grant_id>/download/<token>")
@requires(Action.HOLD_GRANT)
def licensed_download(grant_id: int, token: str) -> ResponseReturnValue:
    s = db()
    try:
        grant, item = grants.check_download(
            s, current_app.config["SECRET_KEY"], token, current_user, grant_id
        )
    except LinkRefused as exc:
        return render_template("licensing/refused.html", reason=str(exc)), 403
    # Made by a `licensed_zip` job (at once where jobs run in the request); the link is checked
    # once, here, and the holder is sent on to the job's own address, which does not expire.
    job = jobs.submit(
        s,
        "licensed_zip",
        {
            "grant": grant.id,
            "item": item.id,
            "user": current_user.id,
            "site": _site(),
            "ip": request.remote_addr,
        },
        key=f"licensed:{grant.id}:{item.id}:{current_user.id}",
        max_attempts=2,
        requested_by=current_user.email,
    )
    s.commit()
    return redirect(url_for("licensing.prepared_download", grant_id=grant.id, job_id=job.id))


@bp.route("/grants/<int:grant_id>/prepared/<int:job_id>", methods=["GET", "HEAD"])
@requires(Action.HOLD_GRANT)
def prepared_download(grant_id: int, job_id: int) -> ResponseReturnValue:
    """The licensed ZIP a job made for this holder: 202 while it is made, the file once (it is
    made for one download and not kept)."""
    job = db().get(Job, job_id)
    if job is None or job.kind != "licensed_zip" or job.payload.get("user") != current_user.id:
        abort(404)
    if job.payload.get("grant") != grant_id:
        abort(404)
    if job.state in ("queued", "running"):
        page = render_template("preparing.html", what=_("授权数据包"), again=request.url)
        return page, 202, {"Retry-After": "5", "Cache-Control": "no-store"}
    made = Path((job.result or {}).get("path") or "/nonexistent")
    grant = db().get(Grant, grant_id)
    if grant is None or grant.state() != "valid":  # revoked or suspended since the file was made
        if made.is_file():
            shutil.rmtree(made.parent, ignore_errors=True)
        return render_template("licensing/refused.html", reason=_("授权当前无效，数据包已删除")), 410
    if job.state != "done" or not made.is_file():
        reason = (job.result or {}).get("refused") or _(
            "该数据包已下载或已失效，请回到“我的授权”重新获取下载链接"
        )
        return render_template("licensing/refused.html", reason=reason), 410
    if request.method == "HEAD":
        return "", 200
    # Licensed data is made for this one download and not kept: the folder goes at once, the
    # open file is still sent (POSIX keeps an unlinked file readable while it is open).
    handle = open(made, "rb")  # noqa: SIM115 (closed by the response)
    shutil.rmtree(made.parent, ignore_errors=True)
    return send_file(
        handle,
        mimetype="application/zip",
        as_attachment=True,
        download_name=(job.result or {}).get("name", "licensed.zip"),
        max_age=0,
    )


@bp.post("/grants/<int:grant_id>/report")
@requires(Action.HOLD_GRANT)
def report(grant_id: int) -> ResponseReturnValue:
    grant = db().get(Grant, grant_id) or abort(404)
    back(url_for("licensing.my_grants"))
    form = checked(UsageReportForm())
    grants.report_usage(
        db(), current_user, grant, form.what.data or "", form.where.data or "", ip=request.remote_addr
    )
    return done(_("已提交开发利用情况报告。"))


@bp.post("/grants/<int:grant_id>/revoke")
@requires(Action.REVOKE_GRANT)
def revoke(grant_id: int) -> ResponseReturnValue:
    grant = db().get(Grant, grant_id) or abort(404)
    grants.revoke(db(), current_user, grant, checked(RevokeForm()).reason.data or "", ip=request.remote_addr)
    _notify(grant.application, "revoked")
    return done(_("授权已撤销，立即失效。"), to=url_for("licensing.licence", number=grant.licence_number))


@bp.get("/licences/")
@public
def licence_lookup() -> ResponseReturnValue:
    """Anyone checks a licence by its number (a product's page states it, Art. 25)."""
    number = (request.args.get("number") or "").strip()
    if number:
        return redirect(url_for("licensing.licence", number=number[:64]))
    return render_template("licensing/lookup.html")


@bp.get("/licences/<number>")
@public
def licence(number: str) -> ResponseReturnValue:
    """Public: is this licence valid, expired or revoked; for which datasets and purpose."""
    grant = grants.by_licence(db(), number)
    if grant is None:
        return render_template("licensing/licence.html", grant=None, number=number), 404
    return render_template(
        "licensing/licence.html",
        grant=grant,
        number=grant.licence_number,
        state=grant.state(),
        revoke_form=RevokeForm(formdata=None),
        may_revoke=can(current_user, Action.REVOKE_GRANT, grant),
    )
