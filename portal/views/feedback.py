"""The public's voice: error reports and ratings on dataset pages, data requests, the showcase;
the bureau's routing and the department's answers. Thin: the rules are in portal/feedback.py
(a department answers its error reports in the console, portal/views/console.py)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import catalog, content, images
from portal import feedback as svc
from portal.messages import _

from ..authz import Action, public, requires
from ..forms import AnswerForm, DataRequestForm, ErrorReportForm, RatingForm, RouteForm, ShowcaseForm, checked
from ..limits import limiter
from ..models import DataRequest, Dataset, Department, ShowcaseItem
from ..web import back, db, done, portal, send_stored_file

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
# Each entry may carry an image to decode and re-encode: a few an hour from one address.
@limiter.limit("20 per hour", methods=["POST"])
def showcase() -> ResponseReturnValue:
    s = db()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=url_for("feedback.showcase")))
        back(url_for("feedback.showcase") + "#submit")
        if "find" not in request.form:
            return _submit_showcase()
    form = ShowcaseForm() if request.method == "POST" else ShowcaseForm(formdata=None)
    q = request.form.get("q", "").strip()[:100] if request.method == "POST" else ""
    items = svc.approved_showcase(s)
    return render_template(
        "feedback/showcase.html",
        items=items,
        checks={i.id: svc.licence_check(s, i) for i in items},
        form=form,
        q=q,
        picked=content.datasets_named(s, request.form.getlist("datasets"))
        if request.method == "POST"
        else [],
        results=content.find_public(s, q),
        mine=svc.my_showcase(s, current_user) if current_user.is_authenticated else [],
    )


def _submit_showcase() -> ResponseReturnValue:
    form = checked(ShowcaseForm())
    upload = request.files.get("image")
    image = upload.read(images.MAX_BYTES + 1) if upload and upload.filename else None
    svc.add_showcase(
        db(),
        current_user,
        form.title.data or "",
        form.description.data or "",
        form.url.data or "",
        form.attribution.data or "",
        request.form.getlist("datasets"),
        form.licence_number.data or "",
        author=form.author.data or "",
        image=image,
        storage=portal().storage,
    )
    return done(_("已提交，大数据局审核通过后在成果展示中公开。"))


@bp.get("/showcase/<int:item_id>/image")
@public
def showcase_image(item_id: int) -> ResponseReturnValue:
    """An entry's image: public once approved, before that only to its submitter and the
    bureau. Served as an image and nothing else (nosniff, a CSP that runs no script)."""
    item = db().get(ShowcaseItem, item_id)
    if item is None or not item.image_path or not svc.can_see_showcase_image(current_user, item):
        abort(404)
    try:
        response = send_stored_file(
            portal().storage.local_path(item.image_path), mimetype=images.content_type(item.image_path)
        )
    except FileNotFoundError:
        abort(404)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = "inline"
    if item.status != "approved":
        response.headers["Cache-Control"] = "private, no-store"
    return response
