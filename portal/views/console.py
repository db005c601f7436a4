"""The department console (/console): a curator's own department only. Thin: the rules are
in harvest/curation.py. Every change syncs the search index at once, so a restricted dataset
leaves search results immediately."""
from __future__ import annotations

from collections import Counter

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harvest import curation, gate
from harvest.curation import CurationError
from licenses import applications as apps

from ..authz import Action, requires
from ..forms import ActionForm
from ..i18n import select_locale
from ..models import Dataset, Distribution, RestrictionRequest
from ..search.sync import sync
from ..web import db, portal

bp = Blueprint("console", __name__)

FIXES = [("法律", "在控制台重新分类并写明法律依据，或在目录中补充法律依据后重新导出"),
         ("开放类型", "在控制台选择开放类型，或在目录中填写「无条件开放 / 有条件开放 / 不予开放」"),
         ("个人信息", "删除或脱敏个人信息后更新数据文件，或改为有条件开放"),
         ("数据文件", "检查目录中的数据文件路径或链接，并确认文件可以打开"),
         ("无法", "检查数据文件（编码、格式、是否损坏）后更新"),
         ("损坏", "重新导出电子表格后更新"),
         ("审批", "等待大数据局审批"),
         ("采集", "下次采集时自动获取")]


def fix_for(reason: str | None) -> str:
    return next((fix for key, fix in FIXES if reason and key in reason), "")


def _department_id() -> int:
    if not current_user.is_authenticated or not current_user.is_curator:
        abort(403)
    return current_user.curator_department_id


def _dataset(name: str) -> Dataset:
    ds = db().scalar(select(Dataset).where(Dataset.name == name))
    if ds is None or ds.department_id != _department_id():
        abort(404)  # another department's dataset does not exist for this curator
    return ds


def _after_change(message: str, ds: Dataset):  # noqa: ANN202
    db().commit()
    sync(portal().sessions, portal().search)
    flash(message)
    return redirect(url_for("console.dataset", name=ds.name))


@bp.get("/console")
@requires(Action.CURATE)
def home():
    department_id = _department_id()
    s = db()
    datasets = s.scalars(select(Dataset).where(Dataset.department_id == department_id)
                         .options(selectinload(Dataset.distributions).selectinload(Distribution.tables),
                                  selectinload(Dataset.classification_events))
                         .order_by(Dataset.status, Dataset.resource_code)).all()
    counts = Counter((d.open_class or "unknown", d.status) for d in datasets)
    held = [d for d in datasets if d.status == "held"]
    stale = [(d, reason) for d in datasets if d.status == "published" and (reason := curation.stale(d))]
    pending = s.scalars(select(RestrictionRequest).join(Dataset).where(
        Dataset.department_id == department_id, RestrictionRequest.decision.is_(None))).all()
    queue = [a for a in apps.queue(s, department_id) if a.status in ("submitted", "info_requested")]
    overdue = {d.id: due for d in held if (due := curation.overdue_fix(d))}
    return render_template("console/home.html", datasets=datasets, counts=counts, held=held, stale=stale, overdue=overdue,
                           pending=pending, queue=queue, fix_for=fix_for, department=current_user.curator_department)


@bp.get("/console/datasets/<name>")
@requires(Action.CURATE)
def dataset(name: str):
    ds = _dataset(name)
    details = [gate.explain(d, select_locale()) for d in ds.hold_details or []]
    return render_template("console/dataset.html", ds=ds, action=ActionForm(),
                           fix=None if details else fix_for(ds.hold_reason), details=details,
                           masking=curation.masking_choices(ds), pending=curation.pending_restriction(db(), ds),
                           catalog=(ds.source_fields or {}).get("catalog", {}), stale=curation.stale(ds))


@bp.post("/console/datasets/<name>/masking")
@requires(Action.CURATE)
def masking(name: str):
    ds = _dataset(name)
    methods = {k.removeprefix("mask:"): v for k, v in request.form.items() if k.startswith("mask:")}
    return _guarded(curation.set_masking, ds, db(), portal().storage, current_user, ds, methods,
                    ip=request.remote_addr, message=lambda status: "已按脱敏方式生成新版本并重新检查。/ Masked version made and checked."
                    if status != "held" else "已生成脱敏版本，但仍有待处理的问题。/ Masked, but problems remain.")


def _guarded(fn, ds: Dataset, *args, message: str, **kwargs):  # noqa: ANN001, ANN202
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        result = fn(*args, **kwargs)
    except PermissionError:
        abort(404)
    except CurationError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.dataset", name=ds.name))
    return _after_change(message if not callable(message) else message(result), ds)


@bp.post("/console/datasets/<name>/reclassify")
@requires(Action.CURATE)
def reclassify(name: str):
    ds = _dataset(name)
    return _guarded(curation.reclassify, ds, db(), portal().storage, current_user, ds, request.form.get("open_class"),
                    request.form.get("legal_basis", ""), request.form.get("reason", ""), ip=request.remote_addr,
                    conditions=request.form.get("open_conditions", ""),
                    message=lambda r: "已生效。/ Applied." if r == "applied" else
                    "限制开放需大数据局批准，期间暂停公开。/ Restriction sent to the bureau; hidden meanwhile.")


@bp.post("/console/datasets/<name>/sensitive")
@requires(Action.CURATE)
def sensitive(name: str):
    ds = _dataset(name)
    return _guarded(curation.set_sensitive, ds, db(), current_user, ds, request.form.get("sensitive") == "1",
                    ip=request.remote_addr, message="已保存。/ Saved.")


@bp.post("/console/datasets/<name>/edit")
@requires(Action.CURATE)
def edit(name: str):
    ds = _dataset(name)
    changes = {k: request.form.get(k, "") for k in ("title", "summary", "domain", "title_en")}
    changes["tags"] = [t.strip() for t in request.form.get("tags", "").replace("，", ",").split(",") if t.strip()]
    return _guarded(curation.edit_metadata, ds, db(), current_user, ds, changes, ip=request.remote_addr,
                    message="已保存部门修改。/ Edits saved.")


@bp.post("/console/datasets/<name>/withdraw")
@requires(Action.CURATE)
def withdraw(name: str):
    ds = _dataset(name)
    return _guarded(curation.withdraw, ds, db(), current_user, ds, request.form.get("reason", ""),
                    ip=request.remote_addr, message="已撤回。/ Withdrawn.")


@bp.post("/console/datasets/<name>/publish")
@requires(Action.CURATE)
def publish(name: str):
    ds = _dataset(name)
    return _guarded(curation.publish, ds, db(), current_user, ds, ip=request.remote_addr, message="已发布。/ Published.")


@bp.get("/admin/restrictions")
@requires(Action.BUREAU)
def restrictions():
    rows = db().scalars(select(RestrictionRequest).order_by(RestrictionRequest.decision.is_not(None),
                                                            RestrictionRequest.id.desc())).all()
    return render_template("console/restrictions.html", requests=rows, action=ActionForm())


@bp.post("/admin/restrictions/<int:request_id>")
@requires(Action.BUREAU)
def decide(request_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    s = db()
    row = s.get(RestrictionRequest, request_id) or abort(404)
    try:
        curation.decide_restriction(s, portal().storage, current_user, row, request.form.get("decision") == "approve",
                                    request.form.get("note", ""), ip=request.remote_addr)
    except CurationError as exc:
        s.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.restrictions"))
    s.commit()
    sync(portal().sessions, portal().search)
    flash("已处理。/ Decided.")
    return redirect(url_for("console.restrictions"))
