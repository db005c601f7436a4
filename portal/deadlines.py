"""The day's reminders and their escalation (run once a day by the `remind` job, portal/worker.py).

What falls due is reminded to whoever must act, and — once it is late — to the bureau too:
- conditional-data applications awaiting a decision (Zhoucun Art. 13: 10 or 15 working days),
- error reports (5 working days) and data requests (10 working days) awaiting an answer, and
  data requests the bureau has not routed within 3 working days,
- usage reports of grants (licenses/grants.py remind),
- catalog entries not updated within their cycle (Art. 16), as one weekly list per department.

Each reminder is a mail (a `mail` job) and a notice on the recipient's account page, sent once:
its subject names the thing and the date it falls due (mail.send_once)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from licenses.grants import remind as remind_usage_reports
from licenses.notify import curators_of

from . import clock, mail
from .catalog.curation import stale
from .models import Application, AppStatus, DataRequest, Dataset, ErrorReport, User
from .workdays import add_working_days

WARN_WORKING_DAYS = 2  # "approaching": due within this many working days
ROUTE_WORKING_DAYS = 3  # the bureau routes a data request within this many working days


def remind_all(session: Session, today: dt.date | None = None, site_url: str = "") -> int:
    today = today or clock.today()
    site = site_url.rstrip("/")
    bureau = list(session.scalars(select(User).where(User.is_bureau.is_(True))))
    return (
        remind_usage_reports(session, today=today, site_url=site_url)
        + _applications(session, today, site, bureau)
        + _error_reports(session, today, site, bureau)
        + _data_requests(session, today, site, bureau)
        + _stale_entries(session, today, site)
    )


def _state(deadline: dt.date, today: dt.date) -> str | None:
    """ "late", "soon" or None (not yet worth a reminder)."""
    if today > deadline:
        return "late"
    if deadline <= add_working_days(today, WARN_WORKING_DAYS).date:
        return "soon"
    return None


def _tell(session: Session, people: Iterable[User], subject: str, body: str) -> int:
    return sum(mail.send_once(session, u.email, subject, f"{u.name}，您好：\n\n{body}") for u in people)


def _applications(session: Session, today: dt.date, site: str, bureau: list[User]) -> int:
    sent = 0
    waiting = session.scalars(
        select(Application).where(
            Application.status == AppStatus.SUBMITTED.value, Application.deadline.is_not(None)
        )
    )
    for app in waiting:
        assert app.deadline is not None
        state = _state(app.deadline, today)
        if state is None:
            continue
        curators = curators_of(session, app.department_id)
        if state == "soon":
            subject = f"数据申请将于 {app.deadline} 到期，请及时办理 · {app.number}"
            people = curators
        else:
            subject = f"数据申请已逾期（应于 {app.deadline} 前办理） · {app.number}"
            people = [*curators, *bureau]
        body = (
            f"申请 {app.number}（{app.applicant.name}）向{app.department.name}申请的数据，办理期限 {app.deadline}。\n"
            f"{'已超过办理期限，已同时告知大数据局。' if state == 'late' else ''}\n办理：{site}/console/applications\n"
        )
        sent += _tell(session, people, subject, body)
    return sent


def _error_reports(session: Session, today: dt.date, site: str, bureau: list[User]) -> int:
    sent = 0
    for report in session.scalars(select(ErrorReport).where(ErrorReport.answer.is_(None))):
        state = _state(report.deadline, today)
        if state is None:
            continue
        ds = report.dataset
        curators = curators_of(session, ds.department_id)
        subject = (
            f"数据纠错第 {report.id} 号将于 {report.deadline} 到期，请答复 · {ds.title}"
            if state == "soon"
            else f"数据纠错第 {report.id} 号已逾期未答复（应于 {report.deadline} 前） · {ds.title}"
        )
        people = curators if state == "soon" else [*curators, *bureau]
        sent += _tell(
            session,
            people,
            subject,
            f"数据集「{ds.title}」收到的纠错（第 {report.id} 号）应于 {report.deadline} 前答复（5 个工作日）。\n"
            f"答复：{site}/console/feedback\n",
        )
    return sent


def _data_requests(session: Session, today: dt.date, site: str, bureau: list[User]) -> int:
    sent = 0
    for request in session.scalars(select(DataRequest).where(DataRequest.answer.is_(None))):
        if request.department_id is None:  # the bureau has not routed it yet
            due = add_working_days(clock.local(request.created_at).date(), ROUTE_WORKING_DAYS).date
            if today > due:
                sent += _tell(
                    session,
                    bureau,
                    f"数据需求第 {request.id} 号待分派（应于 {due} 前） · {request.title}",
                    f"数据需求「{request.title}」尚未分派给部门。\n分派：{site}/admin/\n",
                )
            continue
        if request.deadline is None or (state := _state(request.deadline, today)) is None:
            continue
        curators = curators_of(session, request.department_id)
        subject = (
            f"数据需求第 {request.id} 号将于 {request.deadline} 到期，请答复 · {request.title}"
            if state == "soon"
            else f"数据需求第 {request.id} 号已逾期未答复（应于 {request.deadline} 前） · {request.title}"
        )
        sent += _tell(
            session,
            curators if state == "soon" else [*curators, *bureau],
            subject,
            f"数据需求「{request.title}」应于 {request.deadline} 前答复（10 个工作日）。\n答复：{site}/console/feedback\n",
        )
    return sent


def _stale_entries(session: Session, today: dt.date, site: str) -> int:
    """Mondays: each department's curators get the list of its entries past their update cycle."""
    if today.weekday() != 0:
        return 0
    by_department: dict[int, list[str]] = {}
    for ds in session.scalars(select(Dataset).where(Dataset.status == "published")):
        if stale(ds, today):
            by_department.setdefault(ds.department_id, []).append(f"- {ds.title}（{ds.update_cycle}）")
    sent = 0
    year, week, _day = today.isocalendar()
    for department_id, lines in by_department.items():
        sent += _tell(
            session,
            curators_of(session, department_id),
            f"目录更新提醒：{len(lines)} 条目录超过更新周期未更新（{year} 年第 {week} 周）",
            "以下目录超过其更新周期未更新（《暂行办法》第十六条）：\n"
            + "\n".join(lines[:100])
            + f"\n\n部门控制台：{site}/console\n",
        )
    return sent
