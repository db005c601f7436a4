"""The public's voice: error reports and ratings on dataset pages, data requests, the showcase;
the bureau's routing and the department's answers. Thin: the rules are in portal/feedback.py
(a department answers its error reports in the console, portal/views/console.py)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import catalog
from portal import feedback as svc
from portal.messages import _

from ..authz import Action, public, requires
from ..forms import AnswerForm, DataRequestForm, ErrorReportForm, RatingForm, RouteForm, ShowcaseForm, checked
from ..models import DataRequest, Dataset, Department, ShowcaseItem
from ..web import back, db, done

bp = Blueprint("feedback", __name__)


def _public_dataset(name: str) -> Dataset:
    ds = catalog.get_public_dataset(db(), name) or abort(404)
    back(url_for("catalog.dataset", name=name) + "#feedback")
    return ds


@bp.post("/dataset/<name>/errors")
@requires(Action.ACCOUNT)
def report_error(name: str) -> ResponseReturnValue:
    ds = _public_dataset(name)
    svc.report_error(db(), current_user, ds, checked(ErrorReportForm()).text.data or "")
    return done(_("已提交，提供部门核实后公开答复。"))


@bp.post("/dataset/<name>/rating")
@requires(Action.ACCOUNT)
def rate(name: str) -> ResponseReturnValue:
    ds = _public_dataset(name)
    form = checked(RatingForm())
    svc.rate(db(), current_user, ds, form.stars.data or 0, form.comment.data or "")
    return done(_("感谢评价。"))


@bp.route("/requests", methods=["GET", "POST"])
@public
def requests_page() -> ResponseReturnValue:
    s = db()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=url_for("feedback.requests_page")))
        back(url_for("feedback.requests_page"))
        form = checked(DataRequestForm())
        svc.ask_for_data(s, current_user, form.title.data or "", form.description.data or "")
        return done(_("需求已提交，大数据局将转交相关部门。"))
    rows = s.scalars(select(DataRequest).order_by(DataRequest.id.desc()).limit(200)).all()
    departments = (
        s.scalars(select(Department).order_by(Department.name)).all()
        if current_user.is_authenticated and current_user.is_bureau
        else []
    )
    return render_template(
        "feedback/requests.html", requests=rows, departments=departments, form=DataRequestForm(formdata=None)
    )


@bp.post("/requests/<int:request_id>/route")
@requires(Action.ROUTE_DATA_REQUEST)
def route(request_id: int) -> ResponseReturnValue:
    s = db()
    row = s.get(DataRequest, request_id) or abort(404)
    code = checked(RouteForm()).department.data
    department = s.scalar(select(Department).where(Department.code == code)) or abort(400)
    back(url_for("feedback.requests_page"))
    svc.route_request(s, current_user, row, department)
    return done(_("已转交。"))


@bp.post("/requests/<int:request_id>/answer")
@requires(Action.ANSWER_DATA_REQUEST)
def answer_request(request_id: int) -> ResponseReturnValue:
    row = db().get(DataRequest, request_id) or abort(404)
    back(url_for("console.feedback"))
    svc.answer_request(db(), current_user, row, checked(AnswerForm()).answer.data or "")
    return done(_("已公开答复。"))


@bp.route("/showcase", methods=["GET", "POST"])
@public
def showcase() -> ResponseReturnValue:
    s = db()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=url_for("feedback.showcase")))
        back(url_for("feedback.showcase"))
        form = checked(ShowcaseForm())
        svc.add_showcase(
            s,
            current_user,
            form.title.data or "",
            form.description.data or "",
            form.url.data or "",
            form.attribution.data or "",
            form.dataset_names(),
            form.licence_number.data or "",
        )
        return done(_("已发布到成果展示。"))
    items = s.scalars(
        select(ShowcaseItem).where(ShowcaseItem.hidden.is_(False)).order_by(ShowcaseItem.id.desc())
    ).all()
    checks = {i.id: svc.licence_check(s, i) for i in items}
    return render_template(
        "feedback/showcase.html", items=items, checks=checks, form=ShowcaseForm(formdata=None)
    )
