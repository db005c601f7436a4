"""Tenders for commercial licences: public announcement and history, questions, sealed bids,
evaluation, award, objections, conclusion. Thin: the rules are in licenses/tenders.py."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licenses import notify
from licenses import tenders as svc
from licenses.errors import LicenceError, Sealed
from portal import clock
from portal.messages import SOURCE_LOCALE, _, current_locale

from ..authz import Action, public, require, requires
from ..forms import (
    AnswerForm,
    BidForm,
    DeclareForm,
    ObjectionForm,
    QuestionForm,
    ReopenForm,
    checked,
    score_form,
)
from ..models import Bid, Objection, Score, Tender, TenderQuestion, TenderStatus, as_utc, utcnow
from ..web import back, db, done

bp = Blueprint("tenders", __name__)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _tender(number: str) -> Tender:
    """The tender; what a rule refuses on it comes back to its page."""
    tender = db().scalar(select(Tender).where(Tender.number == number)) or abort(404)
    back(url_for("tenders.show", number=tender.number))
    return tender


@bp.get("/tenders")
@public
def index() -> ResponseReturnValue:
    rows = db().scalars(select(Tender).order_by(Tender.id.desc())).all()
    return render_template("tenders/index.html", tenders=rows)


@bp.get("/tenders/<number>")
@public
def show(number: str) -> ResponseReturnValue:
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
    forms = {
        "bid": BidForm(formdata=None),
        "question": QuestionForm(formdata=None),
        "objection": ObjectionForm(formdata=None),
        "reopen": ReopenForm(formdata=None),
    }
    return render_template(
        "tenders/show.html",
        tender=tender,
        sealed=sealed,
        receipts=receipts,
        ranked=ranked,
        mine=mine,
        own_scores=own_scores,
        now=now,
        forms=forms,
        qualified=current_user.is_authenticated and svc.qualified(current_user),
        may_evaluate=current_user.is_authenticated and svc.may_evaluate(current_user, tender),
        closed=now >= as_utc(tender.closes_at),
        today=clock.today(),
        # the published record in Chinese; the same words in the reader's language otherwise
        announcement=tender.announcement
        if current_locale() == SOURCE_LOCALE
        else svc.announcement_of(tender),
    )


@bp.post("/tenders/<number>/questions")
@requires(Action.ACCOUNT)
def ask(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    svc.ask(db(), current_user, tender, checked(QuestionForm()).question.data or "")
    return done(_("问题已提交，答复将对所有投标人公开。"))


@bp.post("/tenders/<number>/questions/<int:question_id>/answer")
@requires(Action.MANAGE_TENDER)
def clarify(number: str, question_id: int) -> ResponseReturnValue:
    tender = _tender(number)
    question = db().get(TenderQuestion, question_id)
    if question is None or question.tender_id != tender.id:
        abort(404)
    svc.clarify(db(), current_user, question, checked(AnswerForm()).answer.data or "")
    return done()


@bp.post("/tenders/<number>/bid")
@requires(Action.ACCOUNT)
def bid(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    form = checked(BidForm())
    content = {k: form[k].data or "" for k in svc.BID_FIELDS}
    made = svc.submit_bid(db(), _secret(), current_user, tender, content, ip=request.remote_addr)
    notify.bid_receipt(db(), current_user, tender, made)
    return done(_("投标已密封提交。回执：%(receipt)s", receipt=made.receipt))


@bp.post("/tenders/<number>/bid/withdraw")
@requires(Action.ACCOUNT)
def withdraw(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    svc.withdraw_bid(db(), current_user, tender, ip=request.remote_addr)
    return done(_("投标已撤回。"))


@bp.post("/tenders/<number>/close")
@requires(Action.MANAGE_TENDER)
def close(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    svc.close(db(), current_user, tender, ip=request.remote_addr)
    return done()


@bp.post("/tenders/<number>/reopen")
@requires(Action.MANAGE_TENDER)
def reopen(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    form = checked(ReopenForm())
    svc.reopen(
        db(),
        current_user,
        tender,
        clock.entered(form.opens_at.data),
        clock.entered(form.closes_at.data),
        ip=request.remote_addr,
    )
    return done()


@bp.get("/tenders/<number>/evaluate")
@requires(Action.EVALUATE_TENDER)
def evaluate(number: str) -> ResponseReturnValue:
    s = db()
    tender = _tender(number)
    require(current_user, Action.EVALUATE_TENDER, tender)
    try:
        opened = [(b, svc.open_bid(_secret(), tender, b)) for b in svc.valid_bids(tender)]
    except Sealed as exc:
        return render_template("tenders/sealed.html", tender=tender, reason=str(exc)), 403
    declared = any(e.user_id == current_user.id for e in tender.evaluators)
    mine = {
        (sc.bid_id, sc.criterion): sc.score
        for sc in s.scalars(select(Score).where(Score.evaluator_id == current_user.id))
    }
    return render_template(
        "tenders/evaluate.html",
        tender=tender,
        opened=opened if declared else [],
        declared=declared,
        mine=mine,
        declare_form=DeclareForm(formdata=None),
    )


@bp.post("/tenders/<number>/declare")
@requires(Action.EVALUATE_TENDER)
def declare(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    back(url_for("tenders.evaluate", number=number))
    if not checked(DeclareForm()).no_conflict.data:
        raise LicenceError(_("请确认与投标人无利害关系"))
    svc.declare(db(), current_user, tender, ip=request.remote_addr)
    return done()


@bp.post("/tenders/<number>/score/<int:bid_id>")
@requires(Action.EVALUATE_TENDER)
def score(number: str, bid_id: int) -> ResponseReturnValue:
    tender = _tender(number)
    bid_row = db().get(Bid, bid_id) or abort(404)
    back(url_for("tenders.evaluate", number=number))
    form = checked(score_form(tender.criteria))
    scores = {c["key"]: form[c["key"]].data for c in tender.criteria}
    svc.score(db(), current_user, tender, bid_row, scores, ip=request.remote_addr)
    return done(_("评分已保存。"))


@bp.post("/tenders/<number>/award")
@requires(Action.MANAGE_TENDER)
def award(number: str) -> ResponseReturnValue:
    s = db()
    tender = _tender(number)
    svc.award(s, current_user, tender, ip=request.remote_addr)
    notify.award_results(s, tender, svc.ranking(s, tender))
    return done()


@bp.post("/tenders/<number>/objections")
@requires(Action.ACCOUNT)
def object_to(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    svc.object_to(db(), current_user, tender, checked(ObjectionForm()).text.data or "")
    return done(_("异议已提交，大数据局将答复。"))


@bp.post("/tenders/<number>/objections/<int:objection_id>/answer")
@requires(Action.MANAGE_TENDER)
def answer_objection(number: str, objection_id: int) -> ResponseReturnValue:
    tender = _tender(number)
    objection = db().get(Objection, objection_id)
    if objection is None or objection.tender_id != tender.id:
        abort(404)
    svc.answer_objection(db(), current_user, objection, checked(AnswerForm()).answer.data or "")
    return done()


@bp.post("/tenders/<number>/conclude")
@requires(Action.MANAGE_TENDER)
def conclude(number: str) -> ResponseReturnValue:
    tender = _tender(number)
    app = svc.conclude(db(), current_user, tender, ip=request.remote_addr)
    notify.agreement_ready(db(), app, tender, request.host_url)
    return done()
