"""Announcing a tender for a commercial licence."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licenses import tenders as svc
from licenses.errors import LicenceError

from ... import catalog, clock
from ...forms import TenderForm
from ...messages import _
from ...models import Application, Dataset, OpenClass
from ...web import db, done
from . import bp


@bp.route("/tenders/new", methods=["GET", "POST"])
def new_tender() -> ResponseReturnValue:
    s = db()
    interests = s.scalars(select(Application).where(Application.status == "interest")).all()
    form = TenderForm()
    conditional = s.scalars(
        catalog.public_datasets()
        .where(Dataset.open_class == OpenClass.CONDITIONAL.value)
        .order_by(Dataset.department_id, Dataset.title)
    ).all()
    form.datasets.choices = [(d.name, f"{d.title}（{d.department.name}）") for d in conditional]
    if form.validate_on_submit():
        datasets = [
            d for d in (catalog.get_public_dataset(s, n) for n in form.dataset_names()) if d is not None
        ]
        # DataRequired passed: these are set (WTForms types every field's data as optional)
        assert form.licence_months.data and form.opens_at.data and form.closes_at.data and form.min_bids.data
        try:
            tender = svc.open_tender(
                s,
                current_user,
                svc.TenderDraft(
                    title=(form.title.data or "").strip() or "有条件开放数据商业开发授权",
                    datasets=[(d, None) for d in datasets],
                    licence_months=form.licence_months.data,
                    territory=form.territory.data or "",
                    qualifications=form.qualifications.data or "",
                    opens_at=clock.entered(form.opens_at.data),
                    closes_at=clock.entered(form.closes_at.data),
                    min_bids=form.min_bids.data,
                ),
                ip=request.remote_addr,
            )
        except LicenceError as exc:
            s.rollback()
            form.form_errors.append(str(exc))
        else:
            for application in interests:
                if {i.dataset_id for i in application.items} & {d.id for d in datasets}:
                    svc.link_interest(s, tender, application, site_url=request.host_url)
            return done(_("招标公告已发布。"), to=url_for("tenders.show", number=tender.number))
    status = 400 if request.method == "POST" else 200  # the form again, every field in error named at once
    return render_template("admin/new_tender.html", interests=interests, form=form), status
