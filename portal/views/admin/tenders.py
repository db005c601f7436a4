"""Announcing a tender for a commercial licence."""
from __future__ import annotations

from flask import flash, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from licenses import tenders as svc
from licenses.errors import LicenceError

from ... import catalog, clock
from ...forms import ActionForm
from ...models import Application
from ...web import db, done
from . import bp


@bp.route("/tenders/new", methods=["GET", "POST"])
def new_tender():
    s = db()
    interests = s.scalars(select(Application).where(Application.status == "interest")).all()
    if request.method == "POST":
        names = [n.strip() for n in request.form.get("datasets", "").replace("，", ",").split(",") if n.strip()]
        datasets = [d for d in (catalog.get_public_dataset(s, n) for n in names) if d is not None]
        try:
            start = clock.entered(request.form["opens_at"])
            end = clock.entered(request.form["closes_at"])
            tender = svc.open_tender(s, current_user, svc.TenderDraft(
                title=request.form.get("title", "").strip() or "有条件开放数据商业开发授权",
                datasets=[(d, None) for d in datasets], licence_months=int(request.form.get("licence_months", 12)),
                territory=request.form.get("territory", "东昌府区"), qualifications=request.form.get("qualifications", ""),
                opens_at=start, closes_at=end, min_bids=int(request.form.get("min_bids", 2))), ip=request.remote_addr)
        except (KeyError, ValueError, LicenceError) as exc:
            s.rollback()
            flash(str(exc) if isinstance(exc, LicenceError) else "请完整填写招标信息 / fill in every field", "error")
            return render_template("admin/new_tender.html", interests=interests, action=ActionForm()), 400
        for application in interests:
            if {i.dataset_id for i in application.items} & {d.id for d in datasets}:
                svc.link_interest(s, tender, application, site_url=request.host_url)
        return done("招标公告已发布。/ Tender announced.", to=url_for("tenders.show", number=tender.number))
    return render_template("admin/new_tender.html", interests=interests, action=ActionForm())
