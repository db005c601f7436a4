"""Figures for the bureau's dashboard and the per-department evaluation (Art. 6). Read-only
queries over a session."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.catalog.curation import stale
from portal.models import (
    Application,
    ApplicationEvent,
    DailyCounter,
    DataRequest,
    Dataset,
    Department,
    ErrorReport,
    LicensedDownload,
    Tender,
)

DECISIONS = ("approve", "refuse", "request_info")


def class_by_department(session: Session) -> tuple[list[str], dict[str, list[int]]]:
    """Entries per department: unconditional, conditional (published), not open, held/other."""
    rows = session.execute(
        select(Department.name, Dataset.open_class, Dataset.status, func.count())
        .join(Dataset.department)
        .group_by(Department.name, Dataset.open_class, Dataset.status)
    ).all()
    by: dict[str, Counter] = defaultdict(Counter)
    for dept, cls, status, n in rows:
        if status == "published":
            by[dept][cls] += n
        elif status == "internal":
            by[dept]["not_open"] += n
        else:
            by[dept]["other"] += n
    labels = sorted(by, key=lambda d: -sum(by[d].values()))
    series = {
        "无条件开放": [by[d]["unconditional"] for d in labels],
        "有条件开放": [by[d]["conditional"] for d in labels],
        "不予开放": [by[d]["not_open"] for d in labels],
        "暂缓/撤回": [by[d]["other"] for d in labels],
    }
    return labels, series


def downloads_per_day(
    session: Session, days: int = 30, today: dt.date | None = None
) -> list[tuple[str, int]]:
    today = today or clock.today()
    start = today - dt.timedelta(days=days - 1)
    counts: Counter = Counter()
    # Public downloads are counted in batches by Beijing day (portal/counters.py); licensed
    # downloads are logged one by one with their instant.
    for day, n in session.execute(
        select(DailyCounter.day, func.sum(DailyCounter.count))
        .where(DailyCounter.kind == "download", DailyCounter.day >= start)
        .group_by(DailyCounter.day)
    ):
        counts[day] += int(n)
    since = dt.datetime.combine(start, dt.time(), tzinfo=clock.zone())
    for (moment,) in session.execute(select(LicensedDownload.at).where(LicensedDownload.at >= since)):
        counts[clock.local(moment).date()] += 1
    return [
        ((start + dt.timedelta(days=i)).strftime("%m-%d"), counts[start + dt.timedelta(days=i)])
        for i in range(days)
    ]


def applications_by_route(session: Session) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for route, status, n in session.execute(
        select(Application.route, Application.status, func.count()).group_by(
            Application.route, Application.status
        )
    ):
        out[route][status] += n
    return out


def decision_days(session: Session, department_id: int | None = None) -> list[float]:
    """Days from submission to the provider's first decision, per decided application."""
    query = (
        select(Application.submitted_at, func.min(ApplicationEvent.at))
        .join(ApplicationEvent)
        .where(ApplicationEvent.action.in_(DECISIONS))
        .group_by(Application.id, Application.submitted_at)
    )
    if department_id is not None:
        query = query.where(Application.department_id == department_id)
    return [(decided - submitted).total_seconds() / 86400 for submitted, decided in session.execute(query)]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def tenders_by_status(session: Session) -> Counter:
    return Counter(dict(session.execute(select(Tender.status, func.count()).group_by(Tender.status)).all()))


@dataclass
class DepartmentScore:
    department: str
    code: str
    entries: int
    published: int
    opening_rate: float
    held: int
    stale: int
    applications: int
    on_time: float | None
    median_days: float | None
    downloads: int
    # Duties not met (Art. 6; Zhoucun Art. 16): applications left undecided past their
    # deadline (they count as late in on_time), error reports and data requests not answered
    # in time, usage reports missing from the department's grants.
    undecided_late: int = 0
    late_error_reports: int = 0
    late_requests: int = 0
    missing_usage_reports: int = 0


def period_of(text: str | None, today: dt.date | None = None) -> tuple[dt.date, dt.date, str]:
    """'2026' (a year), '2026Q4' (a quarter) or nothing (all time): (first day, last day, label)."""
    import re

    m = re.fullmatch(r"(\d{4})(?:[Qq]([1-4]))?", (text or "").strip())
    if not m or not 2000 <= int(m.group(1)) <= 2100:
        return dt.date(2000, 1, 1), today or clock.today(), "全部"
    year = int(m.group(1))
    if m.group(2):
        q = int(m.group(2))
        start = dt.date(year, 3 * q - 2, 1)
        end = (dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)) - dt.timedelta(days=1)
        return start, end, f"{year} 年第 {q} 季度"
    return dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year} 年"


def evaluation(
    session: Session, today: dt.date | None = None, period: tuple[dt.date, dt.date] | None = None
) -> list[DepartmentScore]:
    """Art. 6: how each department collects, shares and opens its data — within a period
    (applications, reports and requests made in it) or over all time."""
    from licenses.grants import missing_reports

    today = today or clock.today()
    start, end = period or (dt.date(2000, 1, 1), today)

    def in_period(at: dt.datetime | None) -> bool:
        return at is not None and start <= clock.local(at).date() <= end

    missing_by_department: dict[int, int] = {}
    for grant, _due in missing_reports(session, today):
        missing_by_department[grant.application.department_id] = (
            missing_by_department.get(grant.application.department_id, 0) + 1
        )
    out = []
    for dept in session.scalars(select(Department).order_by(Department.name)):
        datasets = session.scalars(
            select(Dataset)
            .where(Dataset.department_id == dept.id)
            .options(selectinload(Dataset.distributions))
        ).all()
        if not datasets:
            continue
        published = [d for d in datasets if d.is_public]
        apps = [
            a
            for a in session.scalars(
                select(Application).where(Application.department_id == dept.id, Application.route != "tender")
            )
            if in_period(a.submitted_at)
        ]
        decided = [
            (a.decided_at, a.deadline) for a in apps if a.decided_at is not None and a.deadline is not None
        ]
        undecided_late = [
            a
            for a in apps
            if a.decided_at is None
            and a.status in ("submitted", "info_requested")
            and a.deadline is not None
            and a.deadline < today
        ]
        judged = len(decided) + len(undecided_late)
        on_time = (
            (sum(1 for at, deadline in decided if clock.local(at).date() <= deadline) / judged)
            if judged
            else None
        )
        days = decision_days(session, dept.id)
        reports = [
            r
            for r in session.scalars(
                select(ErrorReport).join(Dataset).where(Dataset.department_id == dept.id)
            )
            if in_period(r.created_at)
        ]
        requests = [
            r
            for r in session.scalars(select(DataRequest).where(DataRequest.department_id == dept.id))
            if in_period(r.created_at)
        ]

        def late(item: ErrorReport | DataRequest) -> bool:
            answered = clock.local(item.answered_at).date() if item.answered_at else None
            return item.deadline is not None and ((answered or today) > item.deadline)

        out.append(
            DepartmentScore(
                department=dept.name,
                code=dept.code,
                entries=len(datasets),
                published=len(published),
                opening_rate=len(published) / len(datasets),
                held=sum(1 for d in datasets if d.status == "held"),
                stale=sum(1 for d in published if stale(d, today)),
                applications=len(apps),
                on_time=on_time,
                median_days=statistics.median(days) if days else None,
                downloads=sum(d.download_count for d in datasets),
                undecided_late=len(undecided_late),
                late_error_reports=sum(1 for r in reports if late(r)),
                late_requests=sum(1 for r in requests if late(r)),
                missing_usage_reports=missing_by_department.get(dept.id, 0),
            )
        )
    return out
