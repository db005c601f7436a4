"""Notifications at each step of an application: a mail (outbox, SMTP when configured), which
the account page also lists."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import mail
from portal.models import Application, User

SUBJECTS = {
    "submitted": "申请已提交", "interest": "商业开发意向已登记", "request_info": "请补充申请材料",
    "answer": "申请人已补充材料", "approve": "申请已同意，请确认协议", "refuse": "申请未获同意",
    "withdraw": "申请已撤回", "accept": "授权已生效", "revoked": "授权已撤销", "new": "新的数据申请待审核",
    "to_tender": "申请属于商业开发，已转入竞争性配置（招标）",
}


def curators_of(session: Session, department_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.curator_department_id == department_id)))


def application_step(session: Session, app: Application, step: str, site_url: str, smtp_url: str = "") -> None:
    link = f"{site_url.rstrip('/')}/applications/{app.id}"
    to_applicant = step not in ("answer", "new")
    recipients = [app.applicant] if to_applicant else curators_of(session, app.department_id)
    if step == "submitted":
        recipients_curators = curators_of(session, app.department_id)
        for curator in recipients_curators:
            _send(session, curator, SUBJECTS["new"], app, link, smtp_url)
    for user in recipients:
        _send(session, user, SUBJECTS.get(step, step), app, link, smtp_url)


def _send(session: Session, user: User, subject: str, app: Application, link: str, smtp_url: str) -> None:
    body = (f"{user.name}，您好：\n\n申请 {app.number}（{app.department.name}）：{subject}。\n"
            f"当前状态 / status: {app.status_label}\n"
            + (f"办理期限 / deadline: {app.deadline}\n" if app.deadline and app.status == "submitted" else "")
            + (f"说明 / note: {app.decision_note}\n" if app.decision_note else "")
            + f"\n查看 / view: {link}\n")
    mail.send(session, user.email, f"{subject} · {app.number}", body, smtp_url=smtp_url)


def deadline_moved(session: Session, app: Application, smtp_url: str = "") -> None:
    """The applicant and the provider's curators are told a deadline moved (the calendar was
    published)."""
    for user in [app.applicant, *curators_of(session, app.department_id)]:
        mail.send(session, user.email, f"办理期限已重新核定 · {app.number}",
                  f"{user.name}，您好：\n\n申请 {app.number}（{app.department.name}）的办理期限已按公布的节假日安排"
                  f"重新核定为 {app.deadline}。\n{app.deadline_note}\n", smtp_url=smtp_url)
