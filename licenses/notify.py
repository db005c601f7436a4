"""What the licensing domain tells people, composed here and nowhere else: a mail at each step
of an application, of a tender and of a grant. Each is written to the outbox in the caller's
transaction and sent once it commits (portal/mail.py), so a step rolled back sends nothing;
the account page lists the same messages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock, mail
from portal.messages import bilingual, from_stored
from portal.models import Application, Bid, SandboxQuery, SandboxRelease, Tender, User

SUBJECTS = {
    "submitted": "申请已提交",
    "interest": "商业开发意向已登记",
    "request_info": "请补充申请材料",
    "answer": "申请人已补充材料",
    "approve": "申请已同意，请确认协议",
    "refuse": "申请未获同意",
    "withdraw": "申请已撤回",
    "accept": "授权已生效",
    "revoked": "授权已撤销",
    "new": "新的数据申请待审核",
    "to_tender": "申请属于商业开发，已转入竞争性配置（招标）",
}


def curators_of(session: Session, department_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.curator_department_id == department_id)))


def application_step(session: Session, app: Application, step: str, site_url: str) -> None:
    link = f"{site_url.rstrip('/')}/applications/{app.id}"
    to_applicant = step not in ("answer", "new")
    recipients = [app.applicant] if to_applicant else curators_of(session, app.department_id)
    if step == "submitted":
        recipients_curators = curators_of(session, app.department_id)
        for curator in recipients_curators:
            _send(session, curator, SUBJECTS["new"], app, link)
    for user in recipients:
        _send(session, user, SUBJECTS.get(step, step), app, link)


def _send(session: Session, user: User, subject: str, app: Application, link: str) -> None:
    body = (
        f"{user.name}，您好：\n\n申请 {app.number}（{app.department.name}）：{subject}。\n"
        f"当前状态 / status: {bilingual(app.status_label, ' / ')}\n"
        + (f"办理期限 / deadline: {app.deadline}\n" if app.deadline and app.status == "submitted" else "")
        + (f"说明 / note: {app.decision_note}\n" if app.decision_note else "")
        + f"\n查看 / view: {link}\n"
    )
    mail.send(session, user.email, f"{subject} · {app.number}", body)


def deadline_moved(session: Session, app: Application) -> None:
    """The applicant and the provider's curators are told a deadline moved (the calendar was
    published)."""
    for user in [app.applicant, *curators_of(session, app.department_id)]:
        mail.send(
            session,
            user.email,
            f"办理期限已重新核定 · {app.number}",
            f"{user.name}，您好：\n\n申请 {app.number}（{app.department.name}）的办理期限已按公布的节假日安排"
            f"重新核定为 {app.deadline}。\n{bilingual(from_stored(app.deadline_note))}\n",
        )


def bid_receipt(session: Session, bidder: User, tender: Tender, bid: Bid) -> None:
    mail.send(
        session,
        bidder.email,
        f"投标回执 · {tender.number}",
        f"您的投标已密封保存。回执（SHA-256）：{bid.receipt}\n截止后将公布全部回执，可核对投标未被改动。\n",
    )


def award_results(session: Session, tender: Tender, ranking: list) -> None:
    """Every bidder is told the result and their own scores."""
    for r in ranking:
        detail = "；".join(f"{c['name']} {r.by_criterion.get(c['key'], 0):.1f}" for c in tender.criteria)
        outcome = "中标" if r.bid.id == tender.winner_bid_id else "未中标"
        mail.send(
            session,
            r.bid.bidder.email,
            f"招标结果 · {tender.number}",
            f"您的投标{outcome}。名次：第 {r.rank} 名，总分 {r.total:.2f}。\n各项得分：{detail}\n"
            f"公示期至 {tender.standstill_until}，如有异议请在公示期内提出。\n",
        )


def agreement_ready(session: Session, app: Application, tender: Tender, site_url: str) -> None:
    mail.send(
        session,
        app.applicant.email,
        f"请确认数据使用协议 · {tender.number}",
        f"公示期满，请登录平台查看并接受数据使用协议：{site_url.rstrip('/')}/applications/{app.id}\n",
    )


def tender_for_interest(session: Session, tender: Tender, application: Application, site_url: str) -> None:
    closes = clock.local(tender.closes_at)
    mail.send(
        session,
        application.applicant.email,
        f"您登记意向的数据已发布招标 · {tender.number}",
        f"{application.applicant.name}，您好：\n\n您在申请 {application.number} 中登记的商业开发意向所涉数据，"
        f"已发布招标「{tender.title}」（{tender.number}），投标截止：{closes:%Y-%m-%d %H:%M}（北京时间）。\n"
        f"查看公告 / the announcement: {site_url.rstrip('/')}/tenders/{tender.number}\n",
    )


def release_requested(session: Session, query: SandboxQuery, site_url: str) -> None:
    """The providing department's curators: an output waits for their decision."""
    link = f"{site_url.rstrip('/')}/console/sandbox/queries/{query.id}"
    for curator in curators_of(session, query.dataset.department_id):
        mail.send(
            session,
            curator.email,
            f"数据沙箱结果发布申请待审核 · {query.grant.licence_number}",
            f"{curator.name}，您好：\n\n授权 {query.grant.licence_number}（{query.dataset.title}）的使用方申请发布"
            f"沙箱查询 #{query.id} 的完整结果，请审核并说明理由。\n"
            f"A sandbox output waits for your decision.\n\n查看 / view: {link}\n",
        )


def release_decided(session: Session, release: SandboxRelease, site_url: str) -> None:
    """The person who asked: the decision and its reasons."""
    query = release.query
    outcome = "已同意发布" if release.status == "approved" else "未同意发布"
    mail.send(
        session,
        release.requested_by.email,
        f"数据沙箱结果{outcome} · {query.grant.licence_number}",
        f"{release.requested_by.name}，您好：\n\n沙箱查询 #{query.id}（{query.dataset.title}）的完整结果{outcome}。\n"
        f"理由 / reasons: {release.decision_note}\n\n"
        f"查看 / view: {site_url.rstrip('/')}/sandbox/queries/{query.id}\n",
    )
