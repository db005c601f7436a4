"""The catalog across departments: harvest jobs, likely duplicates (Art. 15), restriction
approvals."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from harvest.holds import explain

from ...catalog import curation
from ...catalog.duplicates import likely_duplicates, send_to_departments
from ...forms import RestrictionDecisionForm, checked
from ...messages import _
from ...models import Dataset, DuplicateCase, HarvestJob, RestrictionRequest
from ...search.sync import sync
from ...web import back, db, done, portal
from . import bp


@bp.get("/harvest")
def harvest_jobs() -> ResponseReturnValue:
    s = db()
    jobs = s.scalars(select(HarvestJob).order_by(HarvestJob.id.desc()).limit(100)).all()
    job = s.get(HarvestJob, request.args.get("job", type=int)) if request.args.get("job") else None
    return render_template("admin/harvest.html", jobs=jobs, job=job, explain=explain)


@bp.get("/duplicates")
def duplicates() -> ResponseReturnValue:
    s = db()
    cases = s.scalars(select(DuplicateCase).order_by(DuplicateCase.id.desc()).limit(200)).all()
    return render_template("admin/duplicates.html", pairs=likely_duplicates(s), cases=cases)


@bp.post("/duplicates/send")
def send_duplicate() -> ResponseReturnValue:
    s = db()
    back(url_for("admin.duplicates"))
    a = s.get(Dataset, request.form.get("a", type=int) or 0) or abort(404)
    b = s.get(Dataset, request.form.get("b", type=int) or 0) or abort(404)
    send_to_departments(s, current_user, a, b, site_url=request.host_url)
    return done(_("已发给两个部门核对：%(a)s / %(b)s。", a=a.title, b=b.title))


@bp.get("/restrictions")
def restrictions() -> ResponseReturnValue:
    rows = (
        db()
        .scalars(
            select(RestrictionRequest).order_by(
                RestrictionRequest.decision.is_not(None), RestrictionRequest.id.desc()
            )
        )
        .all()
    )
    return render_template("admin/restrictions.html", requests=rows)


@bp.post("/restrictions/<int:request_id>")
def decide_restriction(request_id: int) -> ResponseReturnValue:
    s = db()
    row = s.get(RestrictionRequest, request_id) or abort(404)
    back(url_for("admin.restrictions"))
    form = checked(RestrictionDecisionForm())
    curation.decide_restriction(
        s,
        portal().storage,
        current_user,
        row,
        form.decision.data == "approve",
        form.note.data or "",
        ip=request.remote_addr,
    )
    response = done(_("已处理。"))
    sync(portal().sessions, portal().search)
    return response
