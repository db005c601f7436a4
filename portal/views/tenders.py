"""Tenders for commercial licences: public announcement and history, questions, sealed bids,
evaluation, award, objections, conclusion. Thin: the rules are in licenses/tenders.py."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from licenses import tenders as svc
from licenses.applications import LicenceError
from portal import catalog, clock, mail

from ..authz import Action, public, requires
from ..forms import ActionForm
from ..models import Application, Bid, Objection, Score, Tender, TenderQuestion, TenderStatus, as_utc, utcnow
from ..web import db, portal

bp = Blueprint("tenders", __name__)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _tender(number: str) -> Tender:
    return db().scalar(select(Tender).where(Tender.number == number)) or abort(404)


def _csrf() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _done(tender: Tender, message: str | None = None):  # noqa: ANN202
    db().commit()
    if message:
        flash(message)
    return redirect(url_for("tenders.show", number=tender.number))


def _guard(fn, tender: Tender, *args, **kwargs):  # noqa: ANN001, ANN202
    """Run a service call; its LicenceError becomes a message on the tender page."""
    try:
        return fn(*args, **kwargs), None
    except PermissionError:
        abort(403)
    except LicenceError as exc:
        db().rollback()
        flash(str(exc), "error")
        return None, redirect(url_for("tenders.show", number=tender.number))



def _entered(text: str) -> dt.datetime:
    """A time typed into a form is Beijing time (the portal's zone), stored as an instant."""
    from .. import clock

    return dt.datetime.fromisoformat(text).replace(tzinfo=clock.zone()).astimezone(dt.UTC)

@bp.get("/tenders")
@public
def index():
    rows = db().scalars(select(Tender).order_by(Tender.id.desc())).all()
    return render_template("tenders/index.html", tenders=rows)


@bp.get("/tenders/<number>")
@public
def show(number: str):
    s = db()
    tender = _tender(number)
    now = utcnow()
    sealed = tender.status == TenderStatus.OPEN.value
    receipts = [] if sealed else svc.receipts(_secret(), tender, now)
    ranked = svc.ranking(s, tender) if tender.status in ("awarded", "concluded") else []
    mine = own_scores = None
    if current_user.is_authenticated:
        mine = [b for b in tender.bids if b.bidder_id == current_user.id]
        own_scores = next((r for r in ranked if r.bid.bidder_id == current_user.id), None)
    return render_template("tenders/show.html", tender=tender, sealed=sealed, receipts=receipts, ranked=ranked,
                           mine=mine, own_scores=own_scores, action=ActionForm(), now=now,
                           qualified=current_user.is_authenticated and svc.qualified(current_user),
                           may_evaluate=current_user.is_authenticated and svc.may_evaluate(current_user, tender),
                           closed=now >= as_utc(tender.closes_at), today=clock.today())


@bp.post("/tenders/<number>/questions")
@requires(Action.ACCOUNT)
def ask(number: str):
    _csrf()
    tender = _tender(number)
    _, failed = _guard(svc.ask, tender, db(), current_user, tender, request.form.get("question", ""))
    return failed or _done(tender, "问题已提交，答复将对所有投标人公开。/ Question sent; the answer is public.")


@bp.post("/tenders/<number>/questions/<int:question_id>/answer")
@requires(Action.ACCOUNT)
def clarify(number: str, question_id: int):
    _csrf()
    tender = _tender(number)
    question = db().get(TenderQuestion, question_id)
    if question is None or question.tender_id != tender.id:
        abort(404)
    _, failed = _guard(svc.clarify, tender, db(), current_user, question, request.form.get("answer", ""))
    return failed or _done(tender)


@bp.post("/tenders/<number>/bid")
@requires(Action.ACCOUNT)
def bid(number: str):
    _csrf()
    tender = _tender(number)
    content = {k: request.form.get(k, "") for k in svc.BID_FIELDS}
    made, failed = _guard(svc.submit_bid, tender, db(), _secret(), current_user, tender, content, ip=request.remote_addr)
    if failed:
        return failed
    mail.send(db(), current_user.email, f"投标回执 · {tender.number}",
              f"您的投标已密封保存。回执（SHA-256）：{made.receipt}\n截止后将公布全部回执，可核对投标未被改动。\n",
              smtp_url=portal().settings.smtp_url)
    return _done(tender, f"投标已密封提交。回执：{made.receipt} / Bid sealed. Receipt: {made.receipt}")


@bp.post("/tenders/<number>/bid/withdraw")
@requires(Action.ACCOUNT)
def withdraw(number: str):
    _csrf()
    tender = _tender(number)
    _, failed = _guard(svc.withdraw_bid, tender, db(), current_user, tender, ip=request.remote_addr)
    return failed or _done(tender, "投标已撤回。/ Bid withdrawn.")


@bp.post("/tenders/<number>/close")
@requires(Action.ACCOUNT)
def close(number: str):
    _csrf()
    tender = _tender(number)
    _, failed = _guard(svc.close, tender, db(), current_user, tender, ip=request.remote_addr)
    return failed or _done(tender)


@bp.post("/tenders/<number>/reopen")
@requires(Action.ACCOUNT)
def reopen(number: str):
    _csrf()
    tender = _tender(number)
    try:
        start = _entered(request.form["opens_at"])
        end = _entered(request.form["closes_at"])
    except (KeyError, ValueError):
        flash("时间格式不正确 / invalid time", "error")
        return redirect(url_for("tenders.show", number=number))
    _, failed = _guard(svc.reopen, tender, db(), current_user, tender, start, end, ip=request.remote_addr)
    return failed or _done(tender)


@bp.get("/tenders/<number>/evaluate")
@requires(Action.ACCOUNT)
def evaluate(number: str):
    s = db()
    tender = _tender(number)
    if not svc.may_evaluate(current_user, tender):
        abort(403)
    try:
        opened = [(b, svc.open_bid(_secret(), tender, b)) for b in svc.valid_bids(tender)]
    except PermissionError as exc:
        return render_template("tenders/sealed.html", tender=tender, reason=str(exc)), 403
    declared = any(e.user_id == current_user.id for e in tender.evaluators)
    mine = {(sc.bid_id, sc.criterion): sc.score for sc in s.scalars(select(Score).where(Score.evaluator_id == current_user.id))}
    return render_template("tenders/evaluate.html", tender=tender, opened=opened if declared else [],
                           declared=declared, mine=mine, action=ActionForm())


@bp.post("/tenders/<number>/declare")
@requires(Action.ACCOUNT)
def declare(number: str):
    _csrf()
    tender = _tender(number)
    if not request.form.get("no_conflict"):
        flash("请确认与投标人无利害关系 / confirm you have no conflict of interest", "error")
        return redirect(url_for("tenders.evaluate", number=number))
    _, failed = _guard(svc.declare, tender, db(), current_user, tender, ip=request.remote_addr)
    if failed:
        return failed
    db().commit()
    return redirect(url_for("tenders.evaluate", number=number))


@bp.post("/tenders/<number>/score/<int:bid_id>")
@requires(Action.ACCOUNT)
def score(number: str, bid_id: int):
    _csrf()
    tender = _tender(number)
    bid_row = db().get(Bid, bid_id) or abort(404)
    try:
        scores = {c["key"]: float(request.form.get(c["key"], "")) for c in tender.criteria}
    except ValueError:
        flash("分数须为 0–100 的数字 / scores are numbers 0–100", "error")
        return redirect(url_for("tenders.evaluate", number=number))
    _, failed = _guard(svc.score, tender, db(), current_user, tender, bid_row, scores, ip=request.remote_addr)
    if failed:
        return failed
    db().commit()
    flash("评分已保存。/ Scores saved.")
    return redirect(url_for("tenders.evaluate", number=number))


@bp.post("/tenders/<number>/award")
@requires(Action.ACCOUNT)
def award(number: str):
    _csrf()
    s = db()
    tender = _tender(number)
    _, failed = _guard(svc.award, tender, s, current_user, tender, ip=request.remote_addr)
    if failed:
        return failed
    for r in svc.ranking(s, tender):  # every bidder is told the result and their own scores
        detail = "；".join(f"{c['name']} {r.by_criterion.get(c['key'], 0):.1f}" for c in tender.criteria)
        outcome = "中标" if r.bid.id == tender.winner_bid_id else "未中标"
        mail.send(s, r.bid.bidder.email, f"招标结果 · {tender.number}",
                  f"您的投标{outcome}。名次：第 {r.rank} 名，总分 {r.total:.2f}。\n各项得分：{detail}\n"
                  f"公示期至 {tender.standstill_until}，如有异议请在公示期内提出。\n",
                  smtp_url=portal().settings.smtp_url)
    return _done(tender)


@bp.post("/tenders/<number>/objections")
@requires(Action.ACCOUNT)
def object_to(number: str):
    _csrf()
    tender = _tender(number)
    _, failed = _guard(svc.object_to, tender, db(), current_user, tender, request.form.get("text", ""))
    return failed or _done(tender, "异议已提交，大数据局将答复。/ Objection filed.")


@bp.post("/tenders/<number>/objections/<int:objection_id>/answer")
@requires(Action.ACCOUNT)
def answer_objection(number: str, objection_id: int):
    _csrf()
    tender = _tender(number)
    objection = db().get(Objection, objection_id)
    if objection is None or objection.tender_id != tender.id:
        abort(404)
    _, failed = _guard(svc.answer_objection, tender, db(), current_user, objection, request.form.get("answer", ""))
    return failed or _done(tender)


@bp.post("/tenders/<number>/conclude")
@requires(Action.ACCOUNT)
def conclude(number: str):
    _csrf()
    tender = _tender(number)
    app, failed = _guard(svc.conclude, tender, db(), current_user, tender, ip=request.remote_addr)
    if failed:
        return failed
    mail.send(db(), app.applicant.email, f"请确认数据使用协议 · {tender.number}",
              f"公示期满，请登录平台查看并接受数据使用协议：{request.host_url}applications/{app.id}\n",
              smtp_url=portal().settings.smtp_url)
    return _done(tender)


@bp.route("/admin/tenders/new", methods=["GET", "POST"])
@requires(Action.BUREAU)
def new():
    s = db()
    interests = s.scalars(select(Application).where(Application.status == "interest")).all()
    if request.method == "POST":
        _csrf()
        names = [n.strip() for n in request.form.get("datasets", "").replace("，", ",").split(",") if n.strip()]
        datasets = [d for d in (catalog.get_public_dataset(s, n) for n in names) if d is not None]
        try:
            start = _entered(request.form["opens_at"])
            end = _entered(request.form["closes_at"])
            tender = svc.open_tender(s, current_user, svc.TenderDraft(
                title=request.form.get("title", "").strip() or "有条件开放数据商业开发授权",
                datasets=[(d, None) for d in datasets], licence_months=int(request.form.get("licence_months", 12)),
                territory=request.form.get("territory", "东昌府区"), qualifications=request.form.get("qualifications", ""),
                opens_at=start, closes_at=end, min_bids=int(request.form.get("min_bids", 2))), ip=request.remote_addr)
        except (KeyError, ValueError, LicenceError) as exc:
            s.rollback()
            flash(str(exc) if isinstance(exc, LicenceError) else "请完整填写招标信息 / fill in every field", "error")
            return render_template("tenders/new.html", interests=interests, action=ActionForm()), 400
        for application in interests:
            if {i.dataset_id for i in application.items} & {d.id for d in datasets}:
                svc.link_interest(s, tender, application, site_url=request.host_url,
                                  smtp_url=portal().settings.smtp_url)
        return _done(tender, "招标公告已发布。/ Tender announced.")
    return render_template("tenders/new.html", interests=interests, action=ActionForm())
