"""Operations: the job queue (what runs, what waits, what failed and why) and the harvest
sources with their schedules, "run now" and "dry run" (portal/catalog/schedules.py)."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select

from harvest.holds import explain

from ... import jobs
from ...audit import record
from ...catalog import schedules
from ...forms import HarvestScheduleForm, HarvestSourceForm, checked
from ...messages import _
from ...models import HarvestSource, Job, as_utc, utcnow
from ...web import back, db, done, portal
from . import bp

STATES = ("queued", "running", "failed", "done")


@bp.get("/jobs")
def job_list() -> ResponseReturnValue:
    s = db()
    state = request.args.get("state", "")
    query = select(Job).order_by(Job.id.desc()).limit(200)
    if state in STATES:
        query = query.where(Job.state == state)
    counts = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    oldest = s.scalar(select(func.min(Job.run_after)).where(Job.state == "queued", Job.run_after <= utcnow()))
    return render_template(
        "admin/jobs.html",
        jobs=s.scalars(query).all(),
        counts=counts,
        state=state,
        states=STATES,
        waiting_long=oldest is not None and (utcnow() - as_utc(oldest)).total_seconds() > 600,
        mode=portal().queue.mode,
    )


@bp.post("/jobs/<int:job_id>/retry")
def retry_job(job_id: int) -> ResponseReturnValue:
    s = db()
    job = s.get(Job, job_id) or abort(404)
    back(url_for("admin.job_list"))
    if job.state != "failed":
        abort(409)
    if not jobs.retry_now(s, job):
        return done(_("同样的任务已在排队或运行，无需重试。"))
    record(
        s, "job_retried", actor=current_user, target=f"job:{job.id}", ip=request.remote_addr, kind=job.kind
    )
    return done(_("已重新排队：任务 %(id)s。", id=job.id))


@bp.route("/sources", methods=["GET", "POST"])
def source_list() -> ResponseReturnValue:
    s = db()
    if request.method == "POST":
        back(url_for("admin.source_list"))
        form = checked(HarvestSourceForm())
        location = form.location.data or ""
        if form.kind.data == "spreadsheet":
            upload = request.files.get("catalog")
            if upload is None or not upload.filename:
                raise schedules.SourceSetupError(_("请选择目录表文件"), {"catalog": _("未选择文件")})
            location = str(
                schedules.save_spreadsheet(
                    portal().settings.instance_path / "sources", upload.filename, upload.stream
                )
            )
        src = schedules.register(
            s,
            current_user,
            kind=form.kind.data,
            title=form.title.data,
            location=location,
            token=form.token.data or "",
            secret_key=portal().settings.load_secret_key(),
            ip=request.remote_addr,
        )
        _schedule(src, form)
        return done(_("已登记采集来源：%(title)s。", title=src.title or src.location), to=_page(src))
    sources = s.scalars(select(HarvestSource).order_by(HarvestSource.id)).all()
    now = utcnow()
    return render_template(
        "admin/sources.html",
        sources=sources,
        next_runs={src.id: schedules.next_run(s, src, now) for src in sources},
        form=HarvestSourceForm(formdata=None),
    )


def _page(src: HarvestSource) -> str:
    return url_for("admin.source", source_id=src.id)


def _schedule(src: HarvestSource, form: HarvestScheduleForm) -> None:
    schedules.set_schedule(
        db(),
        current_user,
        src,
        schedule=form.schedule.data,
        hour=int(form.hour.data),
        weekday=int(form.weekday.data),
        enabled=bool(form.enabled.data),
        token=form.token.data or "",
        secret_key=portal().settings.load_secret_key(),
        ip=request.remote_addr,
    )


@bp.route("/sources/<int:source_id>", methods=["GET", "POST"])
def source(source_id: int) -> ResponseReturnValue:
    s = db()
    src = s.get(HarvestSource, source_id) or abort(404)
    if request.method == "POST":
        back(_page(src))
        _schedule(src, checked(HarvestScheduleForm()))
        return done(_("采集计划已保存。"))
    form = HarvestScheduleForm(
        formdata=None,
        schedule=src.schedule,
        hour=str(src.schedule_hour),
        weekday=str(src.schedule_weekday),
        enabled=src.enabled,
    )
    runs = schedules.runs_of(s, src)
    run_id = request.args.get("run", type=int)
    shown = s.get(Job, run_id) if run_id else None
    if shown is not None and shown not in runs:
        shown = None
    return render_template(
        "admin/source.html",
        src=src,
        form=form,
        runs=runs,
        shown=shown or next((r for r in runs if r.result), None),
        next_run=schedules.next_run(s, src, utcnow()),
        explain=explain,
    )


@bp.post("/sources/<int:source_id>/run")
def run_source(source_id: int) -> ResponseReturnValue:
    s = db()
    src = s.get(HarvestSource, source_id) or abort(404)
    back(_page(src))
    dry_run = request.form.get("dry_run") == "1"
    schedules.run_by_hand(s, current_user, src, dry_run=dry_run, ip=request.remote_addr)
    return done(
        _("试采集已排队：完成后在下方查看将发生的变化（不发布任何内容）。")
        if dry_run
        else _("采集已排队，进度见下方。")
    )
