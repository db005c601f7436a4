"""The public's voice: error reports and ratings on dataset pages, data requests, the showcase;
the department's and the bureau's answers. Thin: the rules are in harvest/feedback.py."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from harvest import feedback as svc
from harvest.feedback import FeedbackError
from portal import catalog

from ..authz import Action, public, requires
from ..forms import ActionForm
from ..models import DataRequest, Department, ErrorReport, ShowcaseItem
from ..web import db

bp = Blueprint("feedback", __name__)


def _csrf() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _run(fn, *args, back: str, message: str):  # noqa: ANN001, ANN202
    try:
        fn(*args)
    except PermissionError:
        abort(403)
    except FeedbackError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(back)
    db().commit()
    flash(message)
    return redirect(back)


@bp.post("/dataset/<name>/errors")
@requires(Action.ACCOUNT)
def report_error(name: str):
    _csrf()
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    return _run(svc.report_error, db(), current_user, ds, request.form.get("text", ""),
                back=url_for("catalog.dataset", name=name) + "#feedback",
                message="已提交，提供部门核实后公开答复。/ Sent: the provider will check and answer publicly.")


@bp.post("/dataset/<name>/rating")
@requires(Action.ACCOUNT)
def rate(name: str):
    _csrf()
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    stars = request.form.get("stars", type=int) or 0
    return _run(svc.rate, db(), current_user, ds, stars, request.form.get("comment", ""),
                back=url_for("catalog.dataset", name=name) + "#feedback", message="感谢评价。/ Thank you.")


@bp.post("/console/errors/<int:report_id>")
@requires(Action.ACCOUNT)
def answer_error(report_id: int):
    _csrf()
    report = db().get(ErrorReport, report_id) or abort(404)
    if current_user.curator_department_id != report.dataset.department_id:
        abort(404)
    return _run(svc.answer_error, db(), current_user, report, request.form.get("answer", ""),
                back=url_for("feedback.queues"), message="已公开答复。/ Answered publicly.")


@bp.get("/console/feedback")
@requires(Action.ACCOUNT)
def queues():
    if not current_user.is_curator:
        abort(403)
    s = db()
    department_id = current_user.curator_department_id
    reports = s.scalars(select(ErrorReport).join(ErrorReport.dataset).where(
        ErrorReport.dataset.has(department_id=department_id)).order_by(ErrorReport.answer.is_not(None),
                                                                      ErrorReport.deadline)).all()
    requests = s.scalars(select(DataRequest).where(DataRequest.department_id == department_id)
                         .order_by(DataRequest.answer.is_not(None), DataRequest.deadline)).all()
    return render_template("feedback/queues.html", reports=reports, requests=requests, action=ActionForm())


@bp.route("/requests", methods=["GET", "POST"])
@public
def requests_page():
    s = db()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=url_for("feedback.requests_page")))
        _csrf()
        return _run(svc.ask_for_data, s, current_user, request.form.get("title", ""), request.form.get("description", ""),
                    back=url_for("feedback.requests_page"), message="需求已提交，大数据局将转交相关部门。/ Request sent.")
    rows = s.scalars(select(DataRequest).order_by(DataRequest.id.desc()).limit(200)).all()
    departments = s.scalars(select(Department).order_by(Department.name)).all() if \
        current_user.is_authenticated and current_user.is_bureau else []
    return render_template("feedback/requests.html", requests=rows, departments=departments, action=ActionForm())


@bp.post("/requests/<int:request_id>/route")
@requires(Action.ACCOUNT)
def route(request_id: int):
    _csrf()
    s = db()
    row = s.get(DataRequest, request_id) or abort(404)
    department = s.scalar(select(Department).where(Department.code == request.form.get("department"))) or abort(400)
    return _run(svc.route_request, s, current_user, row, department, back=url_for("feedback.requests_page"),
                message="已转交。/ Routed.")


@bp.post("/requests/<int:request_id>/answer")
@requires(Action.ACCOUNT)
def answer_request(request_id: int):
    _csrf()
    row = db().get(DataRequest, request_id) or abort(404)
    return _run(svc.answer_request, db(), current_user, row, request.form.get("answer", ""),
                back=url_for("feedback.queues"), message="已公开答复。/ Answered publicly.")


@bp.route("/showcase", methods=["GET", "POST"])
@public
def showcase():
    s = db()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=url_for("feedback.showcase")))
        _csrf()
        names = [n.strip() for n in request.form.get("datasets", "").replace("，", ",").split(",")]
        return _run(svc.add_showcase, s, current_user, request.form.get("title", ""), request.form.get("description", ""),
                    request.form.get("url", ""), request.form.get("attribution", ""), names,
                    request.form.get("licence_number", ""), back=url_for("feedback.showcase"),
                    message="已发布到成果展示。/ Added to the showcase.")
    items = s.scalars(select(ShowcaseItem).where(ShowcaseItem.hidden.is_(False)).order_by(ShowcaseItem.id.desc())).all()
    checks = {i.id: svc.licence_check(s, i) for i in items}
    return render_template("feedback/showcase.html", items=items, checks=checks, action=ActionForm())
