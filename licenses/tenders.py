"""Commercial licences by competitive award (Art. 25: 公开招标等竞争性方式).

The bureau opens a tender with the providing department; verified companies bid until the
window closes. Bids are sealed in code and at rest: the content is encrypted (Fernet, a key
derived from the instance secret and the tender) and `open_bid` refuses until the close,
whoever asks. Each bidder gets a receipt, the SHA-256 of the exact bid; after the close the
receipts are published and anyone can see that every opened bid still hashes to its receipt.
Evaluators (bureau or provider staff) declare no conflict of interest and score each bid per
criterion; the weighted ranking and its stated tie rule pick the winner. Fewer valid bids
than the minimum: the tender fails (流标) and may be re-opened. The award notice opens a
standstill for objections; then the winner's application goes the licensing way (agreement,
grant). Every step is a public TenderEvent and an audit event.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import record
from portal.authz import Action, NotAllowed, can, require
from portal.messages import Joined, Message, _, known, stored
from portal.models import (
    Application,
    ApplicationEvent,
    ApplicationItem,
    AppStatus,
    Bid,
    Dataset,
    Evaluator,
    Objection,
    OpenClass,
    Score,
    Tender,
    TenderDataset,
    TenderEvent,
    TenderQuestion,
    TenderStatus,
    User,
    as_utc,
    utcnow,
)
from portal.workdays import add_working_days

from .errors import LicenceError, Sealed

# The default criteria's names are the portal's words (a tender keeps them in Chinese; pages show
# them with `known`/`_()` in the reader's language); a criterion a person names stays as written.
CRITERION_NAMES = {
    "plan": _("开发方案"),
    "security": _("安全保障能力"),
    "public_value": _("公共价值"),
    "price": _("报价"),
}
DEFAULT_CRITERIA: list[dict] = [
    {"key": key, "name": CRITERION_NAMES[key].source, "weight": weight}
    for key, weight in (("plan", 40), ("security", 25), ("public_value", 20), ("price", 15))
]
TIE_RULE = _("总分相同的，报价得分高者优先；仍相同的，先递交者优先。")
BID_FIELDS = ("plan", "security", "public_value", "price")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def _event(session: Session, tender: Tender, action: str, note: Message | str | None = None) -> None:
    """A step of the tender's history. The portal's own note is kept as a message
    (messages.stored) and shown in the reader's language; what a person wrote, as written."""
    tender.events.append(TenderEvent(action=action, note=stored(note) if isinstance(note, Message) else note))


def _bureau(user: User) -> None:
    require(user, Action.MANAGE_TENDER)


# ---------------------------------------------------------------------- opening


@dataclass
class TenderDraft:
    title: str
    datasets: list[tuple[Dataset, list[str] | None]]
    licence_months: int
    territory: str
    qualifications: str
    opens_at: dt.datetime
    closes_at: dt.datetime
    criteria: list[dict] | None = None
    min_bids: int = 2
    standstill_working_days: int = 5


def open_tender(session: Session, bureau: User, draft: TenderDraft, ip: str | None = None) -> Tender:
    _bureau(bureau)
    if not draft.datasets:
        raise LicenceError(_("招标范围至少包含一个有条件开放数据集"))
    departments = {ds.department_id for ds, _fields in draft.datasets}
    if len(departments) != 1:
        raise LicenceError(_("一次招标只涉及一个提供部门"))
    for ds, _fields in draft.datasets:
        if not ds.is_public or ds.open_class != OpenClass.CONDITIONAL.value:
            raise LicenceError(_("「%(title)s」不是有条件开放数据", title=ds.title))
    criteria = draft.criteria or DEFAULT_CRITERIA
    if sum(c["weight"] for c in criteria) != 100 or any(c["weight"] <= 0 for c in criteria):
        raise LicenceError(_("评审因素权重须为正数且合计 100"))
    if as_utc(draft.closes_at) <= as_utc(draft.opens_at):
        raise LicenceError(_("投标截止时间须晚于开始时间"))
    if not (1 <= draft.licence_months <= 60) or draft.min_bids < 1:
        raise LicenceError(_("授权期限 1–60 个月，最少有效投标数至少 1"))
    tender = Tender(
        number=f"ZB{clock.today():%Y}-{secrets.token_hex(3).upper()}",
        title=draft.title.strip(),
        department_id=departments.pop(),
        created_by_id=bureau.id,
        status=TenderStatus.OPEN.value,
        announcement=announcement(
            draft.datasets,
            criteria,
            draft.licence_months,
            draft.territory,
            draft.qualifications,
            draft.min_bids,
        ).source,
        licence_months=draft.licence_months,
        territory=draft.territory,
        qualifications=draft.qualifications,
        criteria=criteria,
        tie_rule=TIE_RULE.source,
        min_bids=draft.min_bids,
        standstill_working_days=draft.standstill_working_days,
        opens_at=draft.opens_at,
        closes_at=draft.closes_at,
        datasets=[TenderDataset(dataset=ds, fields=fields) for ds, fields in draft.datasets],
    )
    session.add(tender)
    session.flush()
    _event(
        session,
        tender,
        "announced",
        _(
            "投标时间 %(start)s 至 %(end)s（北京时间）",
            start=f"{clock.local(draft.opens_at):%Y-%m-%d %H:%M}",
            end=f"{clock.local(draft.closes_at):%Y-%m-%d %H:%M}",
        ),
    )
    record(session, "tender_opened", actor=bureau, target=f"tender:{tender.id}", ip=ip)
    return tender


def announcement(
    datasets: list[tuple[Dataset, list[str] | None]],
    criteria: list[dict],
    licence_months: int,
    territory: str,
    qualifications: str,
    min_bids: int,
) -> Joined:
    """The announcement's words: its Chinese is the record (`Tender.announcement`); the page
    shows it again in the reader's language (`announcement_of`). Titles, fields, territory,
    qualifications and criteria a person wrote stay as written."""
    fields_between = _("、")  # (a message of its own: pybabel does not see one inside another's parameters)
    scope = Joined.between(
        _("；"),
        (
            _("%(title)s（全部字段）", title=ds.title)
            if f is None
            else _("%(title)s（%(fields)s）", title=ds.title, fields=Joined.between(fields_between, f))
            for ds, f in datasets
        ),
    )
    weights = Joined.between(
        _("；"), (_("%(name)s %(weight)s%%", name=known(c["name"]), weight=c["weight"]) for c in criteria)
    )
    return Joined(
        _("东昌府区大数据局会同数据提供部门，以公开招标方式确定以下有条件开放数据的商业开发授权对象。"),
        "\n",
        _("授权范围：%(scope)s", scope=scope),
        "\n",
        _("授权期限：%(n)s 个月；地域：%(territory)s", n=licence_months, territory=territory),
        "\n",
        _("资格条件：%(q)s（须为已验证的企业账户）", q=qualifications),
        "\n",
        _("评审因素及权重：%(weights)s", weights=weights),
        "\n",
        _("最少有效投标：%(n)s 家，不足则流标。", n=min_bids),
        "\n",
        TIE_RULE,
    )


def announcement_of(tender: Tender) -> Joined:
    """A tender's announcement in the reader's language, from what the tender keeps."""
    return announcement(
        [(td.dataset, td.fields) for td in tender.datasets],
        tender.criteria,
        tender.licence_months,
        tender.territory,
        tender.qualifications,
        tender.min_bids,
    )


def link_interest(session: Session, tender: Tender, application: Application, site_url: str = "") -> None:
    """A registered commercial interest is told about the tender: on its history and by mail
    (it stays as registered; the company bids like anyone else)."""
    from . import notify

    if application.route != "tender":
        raise LicenceError("not a commercial interest")
    session.add(
        ApplicationEvent(
            application_id=application.id,
            action="tender_opened",
            from_status=application.status,
            to_status=application.status,
            note=stored(_("已发布招标 %(number)s", number=tender.number)),
        )
    )
    notify.tender_for_interest(session, tender, application, site_url)


# ---------------------------------------------------------------------- questions


def ask(
    session: Session, user: User, tender: Tender, question: str, now: dt.datetime | None = None
) -> TenderQuestion:
    if tender.status != TenderStatus.OPEN.value or _now(now) >= as_utc(tender.closes_at):
        raise LicenceError(_("投标已截止，不再受理提问"))
    if len((question or "").strip()) < 5:
        raise LicenceError(_("请写明问题"))
    q = TenderQuestion(question=question.strip())
    tender.questions.append(q)
    record(session, "tender_question", actor=user, target=f"tender:{tender.id}")
    return q


def clarify(session: Session, bureau: User, question: TenderQuestion, answer: str) -> None:
    _bureau(bureau)
    if len((answer or "").strip()) < 2:
        raise LicenceError(_("请填写答复"))
    question.answer, question.answered_at = answer.strip(), utcnow()
    _event(
        session,
        question.tender,
        "clarified",
        _("问：%(q)s\n答：%(a)s", q=question.question, a=answer.strip()),
    )


# ---------------------------------------------------------------------- bids


def qualified(user: User) -> bool:
    """May bid: a company account the bureau verified (portal.authz.can_bid)."""
    return can(user, Action.BID)


def _fernet(secret: str, tender: Tender) -> Fernet:
    key = hashlib.sha256(f"{secret}:sealed-bids:{tender.number}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def reseal_bids(session: Session, old_secret: str, new_secret: str) -> int:
    """Every bid encrypted again under a new secret key (`portal deploy change-secret-key`): the
    same content and nonce, so every receipt stays the same. Returns how many."""
    bids = session.scalars(select(Bid)).all()
    for bid in bids:
        content = _fernet(old_secret, bid.tender).decrypt(bid.sealed)
        bid.sealed = _fernet(new_secret, bid.tender).encrypt(content)
    return len(bids)


def receipt_of(tender: Tender, bidder_id: int, content: dict, nonce: str) -> str:
    canonical = json.dumps(
        {"tender": tender.number, "round": tender.round, "bidder": bidder_id, "bid": content, "nonce": nonce},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_bid(
    session: Session,
    secret: str,
    bidder: User,
    tender: Tender,
    content: dict,
    now: dt.datetime | None = None,
    ip: str | None = None,
) -> Bid:
    """Sealed bid; replaces the bidder's earlier bid in this round. Returns the bid (its
    receipt is the bidder's proof)."""
    moment = _now(now)
    if not qualified(bidder):
        raise LicenceError(_("仅经大数据局认证的企业账户可以投标"))
    if tender.status != TenderStatus.OPEN.value or moment < as_utc(tender.opens_at):
        raise LicenceError(_("该招标当前不接受投标"))
    if moment >= as_utc(tender.closes_at):
        raise LicenceError(_("投标已截止，逾期投标不予受理"))
    clean = {k: str(content.get(k, "")).strip() for k in BID_FIELDS}
    if any(len(clean[k]) < 2 for k in ("plan", "security", "public_value")):
        raise LicenceError(_("请填写开发方案、安全保障、公共价值和报价"))
    try:
        if float(clean["price"]) <= 0:
            raise ValueError
    except ValueError as exc:
        raise LicenceError(_("报价须为正数（万元）")) from exc
    same_company = session.scalar(
        select(Bid)
        .join(User, User.id == Bid.bidder_id)
        .where(
            Bid.tender_id == tender.id,
            Bid.round == tender.round,
            Bid.status == "submitted",
            Bid.bidder_id != bidder.id,
            User.credit_code == bidder.credit_code,
        )
        .limit(1)
    )
    if same_company is not None:
        # One company, one bid: a second account of the same company (统一社会信用代码) would meet
        # the minimum number of bids alone.
        raise LicenceError(_("同一企业（统一社会信用代码相同）已有有效投标，每个企业只能投标一次"))
    nonce = secrets.token_hex(16)
    receipt = receipt_of(tender, bidder.id, clean, nonce)
    previous = _active_bid(session, tender, bidder)
    if previous is not None:
        previous.status = "replaced"
    sealed = _fernet(secret, tender).encrypt(
        json.dumps({"bid": clean, "nonce": nonce}, ensure_ascii=False).encode()
    )
    bid = Bid(round=tender.round, bidder_id=bidder.id, sealed=sealed, receipt=receipt, submitted_at=moment)
    tender.bids.append(bid)
    session.flush()
    record(
        session,
        "bid_replaced" if previous else "bid_submitted",
        actor=bidder,
        target=f"tender:{tender.id}",
        ip=ip,
        receipt=receipt,
    )
    return bid


def _active_bid(session: Session, tender: Tender, bidder: User) -> Bid | None:
    return session.scalar(
        select(Bid).where(
            Bid.tender_id == tender.id,
            Bid.round == tender.round,
            Bid.bidder_id == bidder.id,
            Bid.status == "submitted",
        )
    )


def withdraw_bid(
    session: Session, bidder: User, tender: Tender, now: dt.datetime | None = None, ip: str | None = None
) -> None:
    if tender.status != TenderStatus.OPEN.value or _now(now) >= as_utc(tender.closes_at):
        raise LicenceError(_("投标已截止，不能撤回"))
    bid = _active_bid(session, tender, bidder)
    if bid is None:
        raise LicenceError(_("没有可撤回的投标"))
    bid.status = "withdrawn"
    record(session, "bid_withdrawn", actor=bidder, target=f"tender:{tender.id}", ip=ip)


def valid_bids(tender: Tender) -> list[Bid]:
    return [b for b in tender.bids if b.round == tender.round and b.status == "submitted"]


def open_bid(secret: str, tender: Tender, bid: Bid, now: dt.datetime | None = None) -> dict:
    """The bid's content — only once the window has closed. No role is exempt."""
    if _now(now) < as_utc(tender.closes_at) or tender.status == TenderStatus.OPEN.value:
        raise Sealed(_("投标截止前任何人不得查看投标内容"))
    try:
        data = json.loads(_fernet(secret, tender).decrypt(bid.sealed))
    except InvalidToken as exc:
        raise LicenceError(_("投标内容无法解密（已被篡改？）")) from exc
    return data


def receipts(secret: str, tender: Tender, now: dt.datetime | None = None) -> list[dict]:
    """After the close: every bid's receipt, and whether the opened bid still hashes to it."""
    out = []
    for bid in tender.bids:
        if bid.round != tender.round:
            continue
        data = open_bid(secret, tender, bid, now)
        matches = receipt_of(tender, bid.bidder_id, data["bid"], data["nonce"]) == bid.receipt
        out.append(
            {
                "receipt": bid.receipt,
                "status": bid.status,
                "submitted_at": bid.submitted_at,
                "matches": matches,
            }
        )
    return out


def close(
    session: Session, bureau: User, tender: Tender, now: dt.datetime | None = None, ip: str | None = None
) -> str:
    """After the window: evaluating, or failed (流标) with fewer valid bids than the minimum."""
    _bureau(bureau)
    if tender.status != TenderStatus.OPEN.value:
        raise LicenceError(_("该招标不在投标阶段"))
    if _now(now) < as_utc(tender.closes_at):
        raise LicenceError(_("投标尚未截止"))
    bids = valid_bids(tender)
    if len(bids) < tender.min_bids:
        tender.status = TenderStatus.FAILED.value
        _event(
            session,
            tender,
            "failed",
            _("有效投标 %(n)s 家，少于 %(min)s 家，流标", n=len(bids), min=tender.min_bids),
        )
    else:
        tender.status = TenderStatus.EVALUATING.value
        _event(
            session, tender, "opened", _("投标截止，有效投标 %(n)s 家，进入评审；投标回执已公布", n=len(bids))
        )
    record(
        session,
        "tender_closed",
        actor=bureau,
        target=f"tender:{tender.id}",
        ip=ip,
        status=tender.status,
        bids=len(bids),
    )
    return tender.status


def reopen(
    session: Session,
    bureau: User,
    tender: Tender,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    ip: str | None = None,
) -> None:
    _bureau(bureau)
    if tender.status != TenderStatus.FAILED.value:
        raise LicenceError(_("只有流标的招标可以重新招标"))
    if as_utc(closes_at) <= as_utc(opens_at):
        raise LicenceError(_("投标截止时间须晚于开始时间"))
    for bid in valid_bids(tender):
        bid.status = "void"
    tender.round += 1
    tender.status, tender.opens_at, tender.closes_at = TenderStatus.OPEN.value, opens_at, closes_at
    _event(
        session,
        tender,
        "reopened",
        _(
            "第 %(round)s 轮：%(start)s 至 %(end)s（北京时间）",
            round=tender.round,
            start=f"{clock.local(opens_at):%Y-%m-%d %H:%M}",
            end=f"{clock.local(closes_at):%Y-%m-%d %H:%M}",
        ),
    )
    record(session, "tender_reopened", actor=bureau, target=f"tender:{tender.id}", ip=ip)


# ---------------------------------------------------------------------- evaluation


def may_evaluate(user: User, tender: Tender) -> bool:
    return can(user, Action.EVALUATE_TENDER, tender)


def declare(session: Session, user: User, tender: Tender, ip: str | None = None) -> Evaluator:
    """An evaluator declares no conflict of interest before seeing or scoring any bid."""
    require(user, Action.EVALUATE_TENDER, tender)
    if user.id in {b.bidder_id for b in tender.bids}:
        raise LicenceError(_("投标人不能担任评审"))
    existing = session.scalar(
        select(Evaluator).where(Evaluator.tender_id == tender.id, Evaluator.user_id == user.id)
    )
    if existing:
        return existing
    evaluator = Evaluator(user_id=user.id, declared_no_conflict_at=utcnow())
    tender.evaluators.append(evaluator)
    record(session, "evaluator_declared_no_conflict", actor=user, target=f"tender:{tender.id}", ip=ip)
    return evaluator


def score(
    session: Session, user: User, tender: Tender, bid: Bid, scores: dict[str, float], ip: str | None = None
) -> None:
    if tender.status != TenderStatus.EVALUATING.value:
        raise LicenceError(_("不在评审阶段"))
    if not session.scalar(
        select(Evaluator).where(Evaluator.tender_id == tender.id, Evaluator.user_id == user.id)
    ):
        raise NotAllowed(Action.EVALUATE_TENDER)  # declare no conflict of interest first
    if bid.tender_id != tender.id or bid not in valid_bids(tender):
        raise LicenceError(_("不是本轮有效投标"))
    keys = {c["key"] for c in tender.criteria}
    if set(scores) != keys or any(not 0 <= float(v) <= 100 for v in scores.values()):
        raise LicenceError(_("每个评审因素打 0–100 分"))
    for key, value in scores.items():
        row = session.scalar(
            select(Score).where(Score.bid_id == bid.id, Score.evaluator_id == user.id, Score.criterion == key)
        )
        if row is None:
            session.add(Score(bid_id=bid.id, evaluator_id=user.id, criterion=key, score=float(value)))
        else:
            row.score = float(value)
    record(session, "bid_scored", actor=user, target=f"tender:{tender.id}", ip=ip, bid=bid.id)


@dataclass
class Ranked:
    bid: Bid
    total: float
    by_criterion: dict[str, float]  # mean over evaluators
    rank: int


def ranking(session: Session, tender: Tender) -> list[Ranked]:
    """Weighted totals (mean of evaluators per criterion × weight), ordered by the tie rule:
    total, then the price score, then the earlier bid."""
    weights = {c["key"]: c["weight"] for c in tender.criteria}
    rows = []
    for bid in valid_bids(tender):
        scores = session.scalars(select(Score).where(Score.bid_id == bid.id)).all()
        by: dict[str, list[float]] = {}
        for s in scores:
            by.setdefault(s.criterion, []).append(s.score)
        means = {k: sum(v) / len(v) for k, v in by.items()}
        total = round(sum(means.get(k, 0.0) * w / 100 for k, w in weights.items()), 4)
        rows.append((bid, total, means))
    rows.sort(key=lambda r: (-r[1], -r[2].get("price", 0.0), as_utc(r[0].submitted_at), r[0].id))
    return [Ranked(bid, total, means, i + 1) for i, (bid, total, means) in enumerate(rows)]


def award(
    session: Session, bureau: User, tender: Tender, today: dt.date | None = None, ip: str | None = None
) -> Ranked:
    _bureau(bureau)
    if tender.status != TenderStatus.EVALUATING.value:
        raise LicenceError(_("不在评审阶段"))
    ranked = ranking(session, tender)
    evaluators = {e.user_id for e in tender.evaluators}
    if not evaluators:
        raise LicenceError(_("尚无评审人"))
    for r in ranked:
        scored_by = {s.evaluator_id for s in session.scalars(select(Score).where(Score.bid_id == r.bid.id))}
        if scored_by != evaluators:
            raise LicenceError(_("每位评审人须对每份有效投标打分"))
    winner = ranked[0]
    tender.status, tender.winner_bid_id, tender.awarded_at = (
        TenderStatus.AWARDED.value,
        winner.bid.id,
        utcnow(),
    )
    tender.standstill_until = add_working_days(today or clock.today(), tender.standstill_working_days).date
    summary = Joined.between(
        _("；"),
        (
            _(
                "第%(rank)s名 %(name)s %(total)s 分",
                rank=r.rank,
                name=r.bid.bidder.company_name,
                total=f"{r.total:.2f}",
            )
            for r in ranked
        ),
    )
    _event(
        session,
        tender,
        "awarded",
        _(
            "中标：%(winner)s。%(summary)s。公示期至 %(until)s，期间可提出异议。",
            winner=winner.bid.bidder.company_name,
            summary=summary,
            until=str(tender.standstill_until),
        ),
    )
    record(
        session,
        "tender_awarded",
        actor=bureau,
        target=f"tender:{tender.id}",
        ip=ip,
        winner=winner.bid.bidder_id,
    )
    return winner


def _standstill_end(tender: Tender) -> dt.date:
    """The last day of the standstill, set when the tender was awarded."""
    if tender.standstill_until is None:
        raise LicenceError(_("尚未公示中标结果"))
    return tender.standstill_until


def object_to(
    session: Session, user: User, tender: Tender, text: str, today: dt.date | None = None
) -> Objection:
    if tender.status != TenderStatus.AWARDED.value or (today or clock.today()) > _standstill_end(tender):
        raise LicenceError(_("不在公示期内"))
    if len((text or "").strip()) < 10:
        raise LicenceError(_("请写明异议的事实和理由"))
    objection = Objection(objector_id=user.id, text=text.strip())
    tender.objections.append(objection)
    _event(session, tender, "objection", text.strip())
    record(session, "tender_objection", actor=user, target=f"tender:{tender.id}")
    return objection


def answer_objection(session: Session, bureau: User, objection: Objection, answer: str) -> None:
    _bureau(bureau)
    if len((answer or "").strip()) < 5:
        raise LicenceError(_("请写明答复"))
    objection.answer, objection.answered_at = answer.strip(), utcnow()
    _event(session, objection.tender, "objection_answered", answer.strip())


def conclude(
    session: Session, bureau: User, tender: Tender, today: dt.date | None = None, ip: str | None = None
) -> Application:
    """After the standstill, with every objection answered: the winner's application, approved
    for the awarded scope and term; the winner accepts the agreement as in licensing."""
    _bureau(bureau)
    today = today or clock.today()
    if tender.status != TenderStatus.AWARDED.value:
        raise LicenceError(_("尚未公示中标结果"))
    if today <= _standstill_end(tender):
        raise LicenceError(
            _("公示期至 %(standstill_until)s，期满后方可授权", standstill_until=tender.standstill_until)
        )
    if any(o.answer is None for o in tender.objections):
        raise LicenceError(_("尚有异议未答复"))
    winner = session.get_one(Bid, tender.winner_bid_id)
    until = _add_months(today, tender.licence_months)
    app = Application(
        number=f"SQ{today:%Y%m%d}-{secrets.token_hex(3).upper()}",
        applicant=winner.bidder,
        department_id=tender.department_id,
        purpose="commercial",
        route="tender",
        scenario=f"招标 {tender.number}「{tender.title}」中标，商业开发；地域：{tender.territory}",
        security_measures="按中标投标文件所述安全保障方案执行",
        period_from=today,
        period_until=until,
        status=AppStatus.APPROVED.value,
        decided_at=utcnow(),
        decided_by_id=bureau.id,
        approved_from=today,
        approved_until=until,
        decision_note=f"经公开招标 {tender.number} 确定",
        items=[
            ApplicationItem(dataset=td.dataset, fields_requested=td.fields, fields_approved=td.fields)
            for td in tender.datasets
        ],
    )
    session.add(app)
    session.flush()
    session.add(
        ApplicationEvent(
            application_id=app.id,
            actor_id=bureau.id,
            action="awarded_by_tender",
            from_status=None,
            to_status=app.status,
            note=tender.number,
        )
    )
    tender.status, tender.application_id = TenderStatus.CONCLUDED.value, app.id
    _event(
        session,
        tender,
        "concluded",
        _("公示期满，向中标人发出数据使用协议（申请 %(number)s）", number=app.number),
    )
    record(session, "tender_concluded", actor=bureau, target=f"tender:{tender.id}", ip=ip, application=app.id)
    return app


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return dt.date(day.year + month // 12, month % 12 + 1, min(day.day, 28))
