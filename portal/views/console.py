"""The department console (/console): a curator's own department only. Thin: the rules are
in portal/catalog/curation.py. Every change syncs the search index at once, so a restricted
dataset leaves search results immediately."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harvest import holds
from licenses import applications as apps
from licenses.sandbox import set_sandbox

from .. import clock
from .. import feedback as feedback_service
from ..authz import Action, require, requires
from ..catalog import curation, department_catalog, schedules
from ..catalog import dictionary as catalog_dictionary
from ..catalog import duplicates as duplicate_service
from ..catalog import uploads as upload_service
from ..forms import (
    AnswerForm,
    EditForm,
    Form,
    ReclassifyForm,
    SensitiveForm,
    WithdrawForm,
    checked,
    masking_form,
    masking_methods,
)
from ..messages import _
from ..models import (
    DataRequest,
    Dataset,
    DuplicateCase,
    ErrorReport,
    RestrictionRequest,
    Upload,
)
from ..search.sync import sync
from ..web import back, db, done, portal

bp = Blueprint("console", __name__, url_prefix="/console")


def hold_words(ds: Dataset) -> tuple[str, str]:
    """Why a dataset is held and what fixes it, in the reader's language (harvest/holds.py);
    a hold recorded before holds had codes shows its stored words."""
    if not ds.hold_details:
        return ds.hold_reason or "", ""
    fixes = dict.fromkeys(str(fix) for _what, fix in map(holds.explain, ds.hold_details) if fix)
    return holds.summary_words(ds.hold_details), "；".join(fixes)


def _department_id() -> int:
    return current_user.curator_department_id


def _dataset(name: str) -> Dataset:
    """One of the curator's own department's datasets (another's does not exist for them)."""
    ds = db().scalar(select(Dataset).where(Dataset.name == name)) or abort(404)
    require(current_user, Action.CURATE, ds)
    back(url_for("console.dataset", name=ds.name))
    return ds


def _changed(ds: Dataset, message: object) -> ResponseReturnValue:
    response = done(message)
    sync(portal().sessions, portal().search)
    return response


@bp.get("")
@requires(Action.CURATE)
def home() -> ResponseReturnValue:
    department_id = _department_id()
    s = db()
    datasets = s.scalars(
        select(Dataset)
        .where(Dataset.department_id == department_id)
        .options(
            selectinload(Dataset.distributions),  # their dates: is an entry out of date
            selectinload(Dataset.classification_events),  # since when a held entry is held
        )
        .order_by(Dataset.status, Dataset.resource_code)
    ).all()
    counts = Counter((d.open_class or "unknown", d.status) for d in datasets)
    held = [d for d in datasets if d.status == "held"]
    stale = [(d, reason) for d in datasets if d.status == "published" and (reason := curation.stale(d))]
    pending = s.scalars(
        select(RestrictionRequest)
        .join(Dataset)
        .where(Dataset.department_id == department_id, RestrictionRequest.decision.is_(None))
    ).all()
    queue = apps.queue(s, department_id, statuses=("submitted", "info_requested"))
    overdue = {d.id: due for d in held if (due := curation.overdue_fix(d))}
    return render_template(
        "console/home.html",
        datasets=datasets,
        counts=counts,
        held=held,
        stale=stale,
        overdue=overdue,
        pending=pending,
        queue=queue,
        hold_words=hold_words,
        department=current_user.curator_department,
    )


@bp.get("/datasets/<name>")
@requires(Action.CURATE)
def dataset(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    details = [holds.explain(d) for d in ds.hold_details or []]
    masking = curation.masking_choices(ds)
    edits = ds.edits or {}
    forms = {
        "masking": masking_form(masking, formdata=None),
        "withdraw": WithdrawForm(formdata=None),
        "reclassify": ReclassifyForm(
            formdata=None,
            open_class=ds.open_class,
            legal_basis=ds.override_basis or ds.legal_basis or "",
            open_conditions=ds.effective_conditions or "",
        ),
        "sensitive": SensitiveForm(formdata=None, sensitive=ds.sensitive),
        "edit": EditForm(
            formdata=None,
            **{k: edits.get(k, "") for k in ("title", "summary", "domain", "title_en", "summary_en")},
            tags=", ".join(edits.get("tags", [])),
        ),
    }
    return render_template(
        "console/dataset.html",
        ds=ds,
        forms=forms,
        fix=None,
        details=details,
        masking=masking,
        pending=curation.pending_restriction(db(), ds),
        catalog=(ds.source_fields or {}).get("catalog", {}),
        stale=curation.stale(ds),
    )


@bp.post("/datasets/<name>/masking")
@requires(Action.CURATE)
def masking(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    form = checked(masking_form(curation.masking_choices(ds)))
    methods = masking_methods(form)
    methods.update(
        {
            k.removeprefix("mask:"): v
            for k, v in request.form.items()  # a column not offered: refused by name
            if k.startswith("mask:") and k.removeprefix("mask:") not in methods
        }
    )
    status = curation.set_masking(db(), portal().storage, current_user, ds, methods, ip=request.remote_addr)
    return _changed(
        ds,
        _("已按脱敏方式生成新版本并重新检查。")
        if status != "held"
        else _("已生成脱敏版本，但仍有待处理的问题。"),
    )


@bp.post("/datasets/<name>/reclassify")
@requires(Action.CURATE)
def reclassify(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    form = checked(ReclassifyForm())
    result = curation.reclassify(
        db(),
        portal().storage,
        current_user,
        ds,
        form.open_class.data,
        form.legal_basis.data or "",
        form.reason.data or "",
        ip=request.remote_addr,
        conditions=form.open_conditions.data or "",
    )
    return _changed(ds, _("已生效。") if result == "applied" else _("限制开放需大数据局批准，期间暂停公开。"))


@bp.post("/datasets/<name>/sensitive")
@requires(Action.CURATE)
def sensitive(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    curation.set_sensitive(
        db(), current_user, ds, checked(SensitiveForm()).sensitive.data, ip=request.remote_addr
    )
    return _changed(ds, _("已保存。"))


@bp.post("/datasets/<name>/sandbox")
@requires(Action.CURATE)
def sandbox_settings(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    checked(Form())
    set_sandbox(
        db(),
        current_user,
        ds,
        only=request.form.get("sandbox_only") == "1",
        k=request.form.get("sandbox_k", type=int),
        ip=request.remote_addr,
    )
    return _changed(ds, _("已保存。"))


@bp.post("/datasets/<name>/edit")
@requires(Action.CURATE)
def edit(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    curation.edit_metadata(db(), current_user, ds, checked(EditForm()).changes(), ip=request.remote_addr)
    return _changed(ds, _("已保存部门修改。"))


@bp.post("/datasets/<name>/dictionary")
@requires(Action.CURATE)
def dictionary(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    posted = {}
    for key, column in request.form.items():
        if key.startswith("name-"):
            n = key.removeprefix("name-")
            posted[column] = {
                part: request.form.get(f"{part}-{n}", "")
                for part in ("title", "description", "unit", "codes")
            }
    changed = catalog_dictionary.edit(db(), current_user, ds, posted, ip=request.remote_addr)
    return _changed(ds, _("已保存 %(n)s 个数据项的说明。", n=changed))


@bp.get("/datasets/<name>/upload")
@requires(Action.CURATE)
def upload_page(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    return render_template(
        "console/upload.html",
        ds=ds,
        uploads=upload_service.open_uploads(db(), ds),
        chunk=upload_service.CHUNK_BYTES,
        max_mb=portal().settings.upload_max_mb,
    )


@bp.post("/datasets/<name>/uploads")
@requires(Action.CURATE)
def start_upload(name: str) -> ResponseReturnValue:
    """JSON from the page's uploader ({filename, size, replace}); or, without script, the whole
    file in one multipart form (Werkzeug spools it to disk, then it is copied in blocks)."""
    ds = _dataset(name)
    s, folder = db(), portal().uploads_folder
    limit = portal().settings.upload_max_mb * 1024 * 1024
    file = request.files.get("file")
    data = (request.get_json(silent=True) or {}) if file is None else {}
    filename = file.filename if file is not None else str(data.get("filename") or "")
    if file is not None:
        file.stream.seek(0, 2)
        size = file.stream.tell()
        file.stream.seek(0)
    else:
        try:
            size = int(data.get("size") or 0) if isinstance(data, dict) else 0
        except (TypeError, ValueError):
            size = 0
        data = data if isinstance(data, dict) else {}
    replace = request.form.get("replace", type=int) if file is not None else data.get("replace")
    if file is None:  # the page's uploader reads answers as JSON, errors included
        try:
            upload = upload_service.start(
                s, folder, current_user, ds, filename or "", size, limit, replace or None
            )
        except curation.CurationError as exc:
            s.rollback()
            return jsonify(error=str(exc.message)), 400
        s.commit()
        return jsonify(
            id=upload.id,
            chunk=upload_service.CHUNK_BYTES,
            url=url_for("console.upload_chunk", upload_id=upload.id),
            finish=url_for("console.finish_upload", upload_id=upload.id),
            report=url_for("console.upload_report", upload_id=upload.id),
        )
    upload = upload_service.start(s, folder, current_user, ds, filename or "", size, limit, replace or None)
    while upload.received < size:  # the form's file, in chunks, as the uploader would send it
        upload_service.append(
            s,
            folder,
            upload,
            upload.received,
            file.stream,
            min(upload_service.CHUNK_BYTES, size - upload.received),
        )
    upload_service.finish(s, current_user, upload)
    return done(_("文件已上传，正在检查。"), to=url_for("console.upload_report", upload_id=upload.id))


def _upload(upload_id: str) -> Upload:
    upload = db().get(Upload, upload_id) or abort(404)
    if upload.dataset.department_id != _department_id():
        abort(404)
    require(current_user, Action.CURATE, upload.dataset)
    back(url_for("console.upload_report", upload_id=upload.id))
    return upload


@bp.route("/uploads/<upload_id>/chunk", methods=["PUT"])
@requires(Action.CURATE)
def upload_chunk(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    offset = request.args.get("offset", type=int)
    try:
        received = upload_service.append(
            db(),
            portal().uploads_folder,
            upload,
            -1 if offset is None else offset,
            # The server's own input, read exactly Content-Length bytes in 1 MiB blocks (checked
            # against the chunk size first): werkzeug's wrapper copies every block twice more,
            # 15 % of the upload's time (benchmarks/upload.py).
            request.environ["wsgi.input"],
            request.content_length or 0,
        )
    except upload_service.WrongOffset as wrong:
        db().commit()
        return jsonify(received=wrong.received, error=str(_("请从已收到的位置继续上传"))), 409
    except curation.CurationError as exc:
        db().rollback()
        return jsonify(received=upload.received, error=str(exc.message)), 400
    db().commit()
    return jsonify(received=received, size=upload.size)


@bp.get("/uploads/<upload_id>/state")
@requires(Action.CURATE)
def upload_state(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    return jsonify(received=upload.received, size=upload.size, status=upload.status)


@bp.post("/uploads/<upload_id>/finish")
@requires(Action.CURATE)
def finish_upload(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    upload_service.finish(db(), current_user, upload)
    db().commit()
    return jsonify(report=url_for("console.upload_report", upload_id=upload.id))


@bp.get("/uploads/<upload_id>")
@requires(Action.CURATE)
def upload_report(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    methods = {
        c["column"]: (upload.masking or {}).get(c["column"], {}).get("method", "")
        for c in (upload.report or {}).get("masking", [])
    }
    choices = [
        {**c, "method": methods.get(c["column"], "")} for c in (upload.report or {}).get("masking", [])
    ]
    return render_template(
        "console/upload_report.html",
        upload=upload,
        ds=upload.dataset,
        choices=choices,
        masking_form=masking_form(choices, formdata=None),
        explain=holds.explain,
    )


@bp.post("/uploads/<upload_id>/masking")
@requires(Action.CURATE)
def upload_masking(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    choices = (upload.report or {}).get("masking", [])
    methods = masking_methods(checked(masking_form(choices)))
    upload_service.choose_masking(db(), current_user, upload, methods)
    return done(_("已按所选脱敏方式重新检查。"))


@bp.post("/uploads/<upload_id>/publish")
@requires(Action.CURATE)
def publish_upload(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    upload_service.confirm(db(), current_user, upload)
    return done(_("已确认发布新版本。"), to=url_for("console.upload_report", upload_id=upload.id))


@bp.post("/uploads/<upload_id>/discard")
@requires(Action.CURATE)
def discard_upload(upload_id: str) -> ResponseReturnValue:
    upload = _upload(upload_id)
    upload_service.discard(db(), portal().uploads_folder, current_user, upload)
    return done(_("已放弃这次上传。"), to=url_for("console.dataset", name=upload.dataset.name))


@bp.route("/catalog", methods=["GET", "POST"])
@requires(Action.CURATE)
def catalog_upload() -> ResponseReturnValue:
    """The department's catalog: upload (alone or in a ZIP with its data files), dry run, confirm."""
    s = db()
    department = current_user.curator_department
    if request.method == "POST":
        back(url_for("console.catalog_upload"))
        upload = request.files.get("catalog")
        if upload is None or not upload.filename:
            raise curation.CurationError(_("请选择目录表文件"))
        settings = portal().settings
        catalog = department_catalog.stage(
            settings.instance_path,
            department,
            upload.filename,
            upload.stream,
            settings.upload_max_mb * 1024 * 1024,
        )
        department_catalog.queue_dry_run(s, current_user, department, catalog)
        return done(_("目录表已上传，正在试采集；完成后在下方查看将发生的变化。"))
    source = department_catalog.find_source(s, department) if department else None
    runs = schedules.runs_of(s, source) if source else []
    latest = department_catalog.latest_dry_run(s, department)
    return render_template(
        "console/catalog.html",
        department=department,
        runs=runs,
        shown=next((r for r in runs if r.result and r.result.get("dry_run")), None),
        can_confirm=latest is not None
        and latest.state == "done"
        and Path(latest.payload.get("staged", "")).is_file(),
        explain=holds.explain,
    )


@bp.post("/catalog/confirm")
@requires(Action.CURATE)
def confirm_catalog() -> ResponseReturnValue:
    back(url_for("console.catalog_upload"))
    department_catalog.confirm(
        db(), current_user, current_user.curator_department, portal().settings.instance_path
    )
    return done(_("已确认：正在按这份目录表采集。"))


@bp.get("/duplicates")
@requires(Action.CURATE)
def duplicates() -> ResponseReturnValue:
    cases = duplicate_service.cases_of_department(db(), _department_id())
    return render_template("console/duplicates.html", cases=cases, department_id=_department_id())


def _case(case_id: int) -> DuplicateCase:
    case = db().get(DuplicateCase, case_id) or abort(404)
    if _department_id() not in (case.dataset_a.department_id, case.dataset_b.department_id):
        abort(404)  # another departments' case does not exist for this curator
    back(url_for("console.duplicates"))
    return case


@bp.post("/duplicates/<int:case_id>/propose")
@requires(Action.CURATE)
def propose_merge(case_id: int) -> ResponseReturnValue:
    case = _case(case_id)
    keep = next((d for d in case.datasets if d.id == request.form.get("keep", type=int)), None)
    if keep is None:
        raise duplicate_service.DuplicateError(_("请选择这两个条目之一"))
    duplicate_service.propose_merge(db(), current_user, case, keep, site_url=request.host_url)
    return done(_("已提出合并建议，等待另一部门确认。"))


@bp.post("/duplicates/<int:case_id>/confirm")
@requires(Action.CURATE)
def confirm_merge(case_id: int) -> ResponseReturnValue:
    case = _case(case_id)
    dropped = duplicate_service.confirm_merge(db(), current_user, case, site_url=request.host_url)
    return _changed(dropped, _("已合并：「%(title)s」已撤回，其页面转到保留的条目。", title=dropped.title))


@bp.post("/duplicates/<int:case_id>/dismiss")
@requires(Action.CURATE)
def dismiss_duplicate(case_id: int) -> ResponseReturnValue:
    case = _case(case_id)
    duplicate_service.dismiss(
        db(), current_user, case, request.form.get("reason", ""), site_url=request.host_url
    )
    return done(_("已说明不是重复目录。"))


@bp.post("/datasets/<name>/withdraw")
@requires(Action.CURATE)
def withdraw(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    curation.withdraw(
        db(), current_user, ds, checked(WithdrawForm()).reason.data or "", ip=request.remote_addr
    )
    return _changed(ds, _("已撤回。"))


@bp.post("/datasets/<name>/publish")
@requires(Action.CURATE)
def publish(name: str) -> ResponseReturnValue:
    ds = _dataset(name)
    curation.publish(db(), current_user, ds, ip=request.remote_addr)
    return _changed(ds, _("已发布。"))


# ---------------------------------------------------------------------- the department's queues


@bp.get("/applications")
@requires(Action.REVIEW_APPLICATIONS)
def applications() -> ResponseReturnValue:
    department_id = None if current_user.is_bureau else current_user.curator_department_id
    return render_template(
        "console/applications.html",
        applications=apps.queue(db(), department_id),
        overdue={a.id for a in apps.overdue(db())},
        today=clock.today(),
    )


@bp.post("/errors/<int:report_id>")
@requires(Action.ANSWER_ERROR_REPORT)
def answer_error(report_id: int) -> ResponseReturnValue:
    report = db().get(ErrorReport, report_id) or abort(404)
    back(url_for("console.feedback"))
    feedback_service.answer_error(db(), current_user, report, checked(AnswerForm()).answer.data or "")
    return done(_("已公开答复。"))


@bp.get("/feedback")
@requires(Action.CURATE)
def feedback() -> ResponseReturnValue:
    s = db()
    department_id = current_user.curator_department_id
    reports = s.scalars(
        select(ErrorReport)
        .join(ErrorReport.dataset)
        .where(ErrorReport.dataset.has(department_id=department_id))
        .order_by(ErrorReport.answer.is_not(None), ErrorReport.deadline)
    ).all()
    requests = s.scalars(
        select(DataRequest)
        .where(DataRequest.department_id == department_id)
        .order_by(DataRequest.answer.is_not(None), DataRequest.deadline)
    ).all()
    return render_template("console/feedback.html", reports=reports, requests=requests)
