"""Applications for conditional data (Art. 25): the purpose decides the route, the providing
department decides within a working-day deadline, and approval leads to an agreement.

Transitions (who → from → to):
    applicant  apply                       → submitted (consent, research) | interest (commercial)
    curator    request_info   submitted    → info_requested
    applicant  answer         info_requested → submitted (deadline counted again from the answer)
    curator    approve        submitted    → approved (fields, rows, term)
    curator    refuse         submitted | info_requested → refused (reasons required)
    applicant  withdraw       submitted | info_requested | approved | interest → withdrawn
    applicant  accept         approved     → granted (agreement stored, grant issued: grants.py)
Everything else is refused. Each transition is a compare-and-set on (status, version), so of
two curators deciding at once exactly one decision stands.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.audit import record
from portal.authz import Action, require
from portal.identity import RealNameRule, level_of
from portal.messages import _, stored
from portal.models import (
    Application,
    ApplicationEvent,
    ApplicationItem,
    AppStatus,
    Dataset,
    OpenClass,
    Purpose,
    User,
    utcnow,
)
from portal.workdays import add_working_days, load_schedule

from .errors import Conflict, LicenceError

CONSENT_WORKING_DAYS = 10  # Zoucun Art. 13, Ministry of Agriculture, Changsha Art. 10
# Jiangsu Art. 18: requests touching state secrets, commercial secrets or personal privacy.
SENSITIVE_WORKING_DAYS = int(os.environ.get("PORTAL_SENSITIVE_WORKING_DAYS", "15"))
MAX_PERIOD_DAYS = 3 * 366
MIN_REASON = 10


@dataclass
class Request:
    datasets: list[tuple[Dataset, list[str] | None]]  # (dataset, fields or None for all)
    purpose: str
    scenario: str
    security_measures: str
    period_from: dt.date
    period_until: dt.date


def apply(
    session: Session,
    applicant: User,
    req: Request,
    *,
    working_days: int = CONSENT_WORKING_DAYS,
    today: dt.date | None = None,
    ip: str | None = None,
    real_name: RealNameRule | None = None,
) -> list[Application]:
    """One application per providing department (one source per datum: each decides its own)."""
    today = today or clock.today()
    try:
        purpose = Purpose(req.purpose)
    except ValueError as exc:
        raise LicenceError(_("请选择用途类别")) from exc
    _check_datasets(req)
    _check_request(applicant, req, purpose, today)
    _check_real_name(session, applicant, purpose, real_name)
    _refuse_pending(session, applicant, req, purpose)
    by_department: dict[int, list[tuple[Dataset, list[str] | None]]] = defaultdict(list)
    for ds, fields in req.datasets:
        by_department[ds.department_id].append((ds, fields))
    made = []
    for department_id, items in by_department.items():
        app = _new_application(session, applicant, req, purpose, department_id, items, working_days, today)
        session.add(app)
        session.flush()
        _event(
            session,
            app,
            applicant,
            "submitted",
            None,
            app.status,
            _("商业开发用途：已登记意向，将通过公开招标等竞争性方式确定").source
            if app.route == "tender"
            else None,
        )
        record(
            session,
            "application_submitted",
            actor=applicant,
            target=f"application:{app.id}",
            ip=ip,
            route=app.route,
            datasets=[ds.name for ds, _fields in items],
        )
        made.append(app)
    return made


def _check_datasets(req: Request) -> None:
    """Each dataset once, conditional and public, applied for here, with fields it has."""
    if not req.datasets:
        raise LicenceError(_("请至少选择一个有条件开放数据集"))
    if len({ds.id for ds, _fields in req.datasets}) != len(req.datasets):
        raise LicenceError(_("同一数据集只能申请一次"))
    for ds, fields in req.datasets:
        if not ds.is_public or ds.open_class != OpenClass.CONDITIONAL.value:
            raise LicenceError(_("「%(title)s」不是可申请的有条件开放数据", title=ds.title))
        if not ds.current_distributions and (ds.source_fields or {}).get("apply_url"):
            # Harvested from another portal without its data: only that portal can grant it.
            raise LicenceError(
                _(
                    "「%(title)s」须向数据来源平台申请：%(url)s",
                    title=ds.title,
                    url=ds.source_fields["apply_url"],
                )
            )
        columns = {f["name"] for d in ds.current_distributions for t in d.tables for f in t.schema}
        if fields is not None and (not fields or not set(fields) <= columns):
            raise LicenceError(_("「%(title)s」没有所选字段", title=ds.title))


def _check_request(applicant: User, req: Request, purpose: Purpose, today: dt.date) -> None:
    """The scenario and the safeguards said, a term from today of at most three years, and the
    research route for verified researchers only."""
    if len((req.scenario or "").strip()) < 10:
        raise LicenceError(_("请具体说明使用场景（至少 10 字）"))
    if len((req.security_measures or "").strip()) < 10:
        raise LicenceError(_("请说明将采取的安全保护措施（至少 10 字）"))
    if (
        not (today <= req.period_from <= req.period_until)
        or (req.period_until - req.period_from).days > MAX_PERIOD_DAYS
    ):
        raise LicenceError(_("使用期限不正确（自今日起，最长三年）"))
    if purpose is Purpose.RESEARCH and not applicant.is_verified_researcher:
        raise LicenceError(_("科研教育途径仅限所在机构经大数据局认证的科研人员"))


def _check_real_name(session: Session, applicant: User, purpose: Purpose, rule: RealNameRule | None) -> None:
    """The bureau's requirement (settings, portal/identity.py): some purposes only with an
    identity of the province's identity platform at a real-name level."""
    if rule is None or not rule.level or purpose.value not in rule.purposes:
        return
    level = level_of(session, applicant, rule.issuer)
    if level is None or level < rule.level:
        raise LicenceError(
            _(
                "「%(purpose)s」用途须实名认证：请在“我的账户”页关联统一身份认证，且实名等级不低于 %(level)s 级"
                "（本账户：%(current)s）。",
                purpose=purpose.label,
                level=rule.level,
                current=_("未关联") if level is None else _("%(level)s 级", level=level),
            )
        )


def _refuse_pending(session: Session, applicant: User, req: Request, purpose: Purpose) -> None:
    """One pending application per applicant, dataset and purpose: a second would be decided
    twice (and a form posted twice is one application)."""
    # One applicant applies one at a time: the row lock makes a form posted twice at once wait
    # for the first and then see it (PostgreSQL and SQLite alike).
    session.execute(update(User).where(User.id == applicant.id).values(session_version=User.session_version))
    pending = session.scalar(
        select(Application)
        .join(ApplicationItem)
        .where(
            Application.applicant_id == applicant.id,
            or_(
                and_(
                    Application.purpose == purpose.value,
                    Application.status.in_(
                        (
                            AppStatus.SUBMITTED.value,
                            AppStatus.INFO_REQUESTED.value,
                            AppStatus.INTEREST.value,
                            AppStatus.APPROVED.value,
                        )
                    ),
                ),
                # a curator moved it to the competitive route: no way around that by another purpose
                Application.status == AppStatus.INTEREST.value,
            ),
            ApplicationItem.dataset_id.in_([ds.id for ds, _fields in req.datasets]),
        )
        .limit(1)
    )
    if pending is not None:
        raise LicenceError(
            _("已有同一用途的申请 %(number)s 正在办理，请等待结果或撤回后再申请", number=pending.number)
        )


def _new_application(
    session: Session,
    applicant: User,
    req: Request,
    purpose: Purpose,
    department_id: int,
    items: list[tuple[Dataset, list[str] | None]],
    working_days: int,
    today: dt.date,
) -> Application:
    """The application to one department: submitted with its deadline in working days (longer
    for sensitive data), or an interest in a tender for commercial use."""
    route = purpose.route
    status = AppStatus.INTEREST if route == "tender" else AppStatus.SUBMITTED
    app = Application(
        number=f"SQ{today:%Y%m%d}-{secrets.token_hex(3).upper()}",
        applicant=applicant,
        department_id=department_id,
        purpose=purpose.value,
        route=route,
        scenario=req.scenario.strip(),
        security_measures=req.security_measures.strip(),
        period_from=req.period_from,
        period_until=req.period_until,
        status=status.value,
        items=[ApplicationItem(dataset=ds, fields_requested=fields) for ds, fields in items],
    )
    if status is AppStatus.SUBMITTED:
        days = (
            max(working_days, SENSITIVE_WORKING_DAYS)
            if any(ds.sensitive for ds, _fields in items)
            else working_days
        )
        deadline = add_working_days(today, days, load_schedule(session))
        app.deadline, app.deadline_start, app.deadline_days = deadline.date, today, days
        app.deadline_note = stored(
            deadline.note
            if days == working_days
            else _(
                "涉及国家秘密、商业秘密或个人隐私，办理期限 %(days)s 个工作日（参照《江苏省公共数据管理办法》第十八条）："
                "%(note)s",
                days=days,
                note=deadline.note,
            )
        )
    return app


def require_open(app: Application) -> None:
    """A dataset that is not public now (withdrawn, held, not open) is neither granted nor
    accepted: what follows from a state change (licenses/follow.py) must not be undone by a
    decision taken after it."""
    for item in app.items:
        if not item.dataset.is_public or item.dataset.open_class != OpenClass.CONDITIONAL.value:
            raise LicenceError(
                _(
                    "「%(title)s」目前不是可提供的有条件开放数据（已撤回、暂停或不予开放）",
                    title=item.dataset.title,
                )
            )


def _event(
    session: Session,
    app: Application,
    actor: User | None,
    action: str,
    before: str | None,
    after: str,
    note: str | None = None,
) -> None:
    session.add(
        ApplicationEvent(
            application_id=app.id,
            actor_id=actor.id if actor else None,
            action=action,
            from_status=before,
            to_status=after,
            note=note,
        )
    )


def _move(
    session: Session,
    app: Application,
    actor: User,
    action: str,
    allowed: tuple[AppStatus, ...],
    to: AppStatus,
    version: int,
    note: str | None = None,
    ip: str | None = None,
    **values: object,
) -> None:
    """Compare-and-set: applies only if the application is still in an allowed state at the
    version the actor saw."""
    if app.status not in {s.value for s in allowed}:
        raise LicenceError(
            _("当前状态「%(status)s」下不能%(action)s", status=app.status_label, action=ACTION_LABELS[action])
        )
    result = session.execute(
        update(Application)
        .where(
            Application.id == app.id,
            Application.version == version,
            Application.status.in_([s.value for s in allowed]),
        )
        .values(status=to.value, version=Application.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
        session.rollback()
        raise Conflict(_("该申请已被他人处理或已变化，请刷新后查看"))
    before = app.status
    session.refresh(app)
    _event(session, app, actor, action, before, to.value, note)
    record(
        session,
        f"application_{action}",
        actor=actor,
        target=f"application:{app.id}",
        ip=ip,
        from_status=before,
        to_status=to.value,
    )


ACTION_LABELS = {
    "request_info": _("要求补充材料"),
    "answer": _("补充材料"),
    "approve": _("同意"),
    "refuse": _("不同意"),
    "withdraw": _("撤回"),
    "accept": _("接受协议"),
    "to_tender": _("转入竞争性配置"),
}


def _reviewer(user: User, app: Application) -> None:
    """The providing department's curators decide (Art. 25)."""
    require(user, Action.DECIDE_APPLICATION, app)


def _owner(user: User, app: Application) -> None:
    require(user, Action.ACT_AS_APPLICANT, app)


def request_info(
    session: Session, curator: User, app: Application, version: int, question: str, ip: str | None = None
) -> None:
    _reviewer(curator, app)
    if len((question or "").strip()) < 5:
        raise LicenceError(_("请写明需要补充的内容"))
    _move(
        session,
        app,
        curator,
        "request_info",
        (AppStatus.SUBMITTED,),
        AppStatus.INFO_REQUESTED,
        version,
        question.strip(),
        ip,
        decision_note=question.strip(),
    )


def answer(
    session: Session,
    applicant: User,
    app: Application,
    version: int,
    text: str,
    *,
    working_days: int = CONSENT_WORKING_DAYS,
    today: dt.date | None = None,
    ip: str | None = None,
) -> None:
    _owner(applicant, app)
    if len((text or "").strip()) < 5:
        raise LicenceError(_("请填写补充的内容"))
    working_days = app.deadline_days or working_days  # a sensitive request keeps its longer term
    deadline = add_working_days(today or clock.today(), working_days, load_schedule(session))
    _move(
        session,
        app,
        applicant,
        "answer",
        (AppStatus.INFO_REQUESTED,),
        AppStatus.SUBMITTED,
        version,
        text.strip(),
        ip,
        deadline=deadline.date,
        deadline_note=stored(_("补充材料后重新计算：%(note)s", note=deadline.note)),
        deadline_start=today or clock.today(),
        deadline_days=working_days,
    )


def approve(
    session: Session,
    curator: User,
    app: Application,
    version: int,
    *,
    fields: dict[int, list[str] | None],
    row_filters: dict[int, dict | None],
    valid_from: dt.date,
    valid_until: dt.date,
    note: str | None = None,
    ip: str | None = None,
    delivery: str = "file",
) -> None:
    """`fields` and `row_filters` by ApplicationItem id; None means all fields / all rows.
    `delivery`: "file" (the granted part is downloaded) or "sandbox" (it never leaves: only
    checked aggregates of queries do, licenses/sandbox.py); a dataset its department made
    sandbox-only cannot be delivered as a file."""
    _reviewer(curator, app)
    require_open(app)
    if not (valid_from <= valid_until) or (valid_until - valid_from).days > MAX_PERIOD_DAYS:
        raise LicenceError(_("授权期限不正确（最长三年）"))
    for item in app.items:
        chosen = fields.get(item.id, item.fields_requested)
        allowed = (
            set(item.fields_requested)
            if item.fields_requested is not None
            else {f["name"] for d in item.dataset.current_distributions for t in d.tables for f in t.schema}
        )
        if chosen is not None and (not chosen or not set(chosen) <= allowed):
            raise LicenceError(_("「%(title)s」的授权字段须在申请范围内", title=item.dataset.title))
    _check_delivery(app, delivery)
    _move(
        session,
        app,
        curator,
        "approve",
        (AppStatus.SUBMITTED,),
        AppStatus.APPROVED,
        version,
        note,
        ip,
        decided_at=utcnow(),
        decided_by_id=curator.id,
        decision_note=note,
        approved_from=valid_from,
        approved_until=valid_until,
    )
    app.delivery = delivery
    for item in app.items:
        item.fields_approved = fields.get(item.id, item.fields_requested)
        item.row_filter = row_filters.get(item.id) or None


def _check_delivery(app: Application, delivery: str) -> None:
    if delivery not in ("file", "sandbox"):
        raise LicenceError(_("请选择交付方式：文件下载或数据沙箱"))
    if delivery == "file":
        for item in app.items:
            if item.dataset.sandbox_only:
                raise LicenceError(
                    _(
                        "「%(title)s」由提供部门设定为仅在数据沙箱中使用（数据不出域），请选择沙箱交付",
                        title=item.dataset.title,
                    )
                )


def refuse(
    session: Session, curator: User, app: Application, version: int, reasons: str, ip: str | None = None
) -> None:
    """不同意的，应当说明理由 (Art. 25): no refusal without reasons."""
    _reviewer(curator, app)
    if len((reasons or "").strip()) < MIN_REASON:
        raise LicenceError(_("不同意的，应当说明理由（至少 %(min_reason)s 字）", min_reason=MIN_REASON))
    _move(
        session,
        app,
        curator,
        "refuse",
        (AppStatus.SUBMITTED, AppStatus.INFO_REQUESTED),
        AppStatus.REFUSED,
        version,
        reasons.strip(),
        ip,
        decided_at=utcnow(),
        decided_by_id=curator.id,
        decision_note=reasons.strip(),
    )


def to_tender(
    session: Session, curator: User, app: Application, version: int, reasons: str, ip: str | None = None
) -> None:
    """The purpose is self-declared: an application whose scenario is in fact commercial
    development goes to the competitive route (Art. 25) — the curator moves it there with
    its reasons, and it waits for a tender as registered interest; the applicant is told."""
    _reviewer(curator, app)
    if len((reasons or "").strip()) < MIN_REASON:
        raise LicenceError(_("请说明转入竞争性配置的理由（至少 %(min_reason)s 字）", min_reason=MIN_REASON))
    _move(
        session,
        app,
        curator,
        "to_tender",
        (AppStatus.SUBMITTED, AppStatus.INFO_REQUESTED),
        AppStatus.INTEREST,
        version,
        reasons.strip(),
        ip,
        purpose=Purpose.COMMERCIAL.value,
        route="tender",
        deadline=None,
        decision_note=f"属于商业开发，转入公开招标等竞争性方式：{reasons.strip()}",
    )


def withdraw(
    session: Session, applicant: User, app: Application, version: int, ip: str | None = None
) -> None:
    _owner(applicant, app)
    _move(
        session,
        app,
        applicant,
        "withdraw",
        (AppStatus.SUBMITTED, AppStatus.INFO_REQUESTED, AppStatus.APPROVED, AppStatus.INTEREST),
        AppStatus.WITHDRAWN,
        version,
        None,
        ip,
    )


def overdue(session: Session, today: dt.date | None = None) -> list[Application]:
    """Applications waiting for the provider past their deadline: flagged to the bureau."""
    today = today or clock.today()
    return list(
        session.scalars(
            select(Application)
            .where(Application.status == AppStatus.SUBMITTED.value, Application.deadline < today)
            .order_by(Application.deadline)
        )
    )


def queue(session: Session, department_id: int | None, statuses: tuple[str, ...] = ()) -> list[Application]:
    """A department's applications (all departments for None), open ones first by deadline;
    only those in `statuses` if given (asked of the database: the history only grows)."""
    query = select(Application).order_by(Application.deadline.is_(None), Application.deadline, Application.id)
    if department_id is not None:
        query = query.where(Application.department_id == department_id)
    if statuses:
        query = query.where(Application.status.in_(statuses))
    return list(session.scalars(query))


# ---------------------------------------------------------------------- the official calendar


def enter_schedule(
    session: Session,
    bureau: User,
    year: int,
    holidays: list[dt.date],
    workdays: list[dt.date],
    ip: str | None = None,
) -> list[Application]:
    """The bureau enters the State Council's schedule for a year (its holidays and make-up
    working days) when it is published; every open deadline is then recounted on it, and
    both sides are told of a deadline that moved. Returns the applications recounted."""
    from portal.models import CalendarDay

    require(bureau, Action.ENTER_CALENDAR)
    from portal.workdays import statutory

    holidays, workdays = sorted(set(holidays)), sorted(set(workdays))
    days = [(d, False) for d in holidays] + [(d, True) for d in workdays]
    if not days or any(d.year != year for d, _kind in days):
        raise LicenceError(_("请填写 %(year)s 年的放假日期和调休上班日期", year=year))
    missing = sorted(d for d in statutory(year) if d.weekday() < 5 and d not in holidays)
    if missing or set(workdays) & statutory(year):
        # A schedule that leaves out a statutory holiday was pasted in part: refuse it rather
        # than count the holiday as a working day.
        shown = "、".join(str(d) for d in (missing or sorted(set(workdays) & statutory(year))))
        raise LicenceError(
            _("录入的安排不完整：法定节假日 %(shown)s 未列为放假日期（或被列为上班日）", shown=shown)
        )
    if len({d for d, _kind in days}) != len(days):
        raise LicenceError(_("同一日期不能既放假又上班"))
    for row in session.scalars(
        select(CalendarDay).where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    ):
        session.delete(row)
    session.flush()
    session.add_all(CalendarDay(day=d, workday=w, entered_by_id=bureau.id) for d, w in days)
    session.flush()
    record(
        session,
        "calendar_entered",
        actor=bureau,
        target=f"calendar:{year}",
        ip=ip,
        holidays=len(holidays),
        workdays=len(workdays),
    )
    return recount_deadlines(session, bureau, year)


def recount_deadlines(session: Session, actor: User, year: int) -> list[Application]:
    """Count again every open application's deadline that a change of the calendar of `year`
    can move: from the day it was submitted (or last answered), on the calendar as it is now."""
    schedule = load_schedule(session)
    moved = []
    open_apps = session.scalars(
        select(Application).where(
            Application.status == AppStatus.SUBMITTED.value,
            Application.deadline.is_not(None),
            Application.deadline >= dt.date(year, 1, 1) - dt.timedelta(days=40),
        )
    ).all()
    for app in open_apps:
        started = app.deadline_start or max(
            (clock.local(e.at).date() for e in app.events if e.action in ("submitted", "answer")),
            default=None,
        )
        if started is None:
            continue
        deadline = add_working_days(started, app.deadline_days or CONSENT_WORKING_DAYS, schedule)
        note = stored(_("已按公布的 %(year)s 年节假日安排重新核定：%(note)s", year=year, note=deadline.note))
        if deadline.date == app.deadline and note == app.deadline_note:
            continue
        before = app.deadline
        app.deadline, app.deadline_note = deadline.date, note
        session.add(
            ApplicationEvent(
                application_id=app.id,
                actor_id=actor.id,
                action="deadline_recounted",
                from_status=app.status,
                to_status=app.status,
                note=f"办理期限由 {before} 改为 {deadline.date}",
            )
        )
        moved.append(app)
    from . import notify

    for app in moved:
        notify.deadline_moved(session, app)
    return moved
