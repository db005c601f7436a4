"""Figures for the bureau's dashboard and the per-department evaluation (Art. 6). Read-only
queries over a session."""
from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from harvest.curation import stale
from portal import clock
from portal.models import (
    Application,
    ApplicationEvent,
    Dataset,
    Department,
    DownloadEvent,
    LicensedDownload,
    Tender,
)

DECISIONS = ("approve", "refuse", "request_info")


def class_by_department(session: Session) -> tuple[list[str], dict[str, list[int]]]:
    """Entries per department: unconditional, conditional (published), not open, held/other."""
    rows = session.execute(select(Department.name, Dataset.open_class, Dataset.status, func.count())
                           .join(Dataset.department).group_by(Department.name, Dataset.open_class, Dataset.status)).all()
    by: dict[str, Counter] = defaultdict(Counter)
    for dept, cls, status, n in rows:
        if status == "published":
            by[dept][cls] += n
        elif status == "internal":
            by[dept]["not_open"] += n
        else:
            by[dept]["other"] += n
    labels = sorted(by, key=lambda d: -sum(by[d].values()))
    series = {"无条件开放": [by[d]["unconditional"] for d in labels], "有条件开放": [by[d]["conditional"] for d in labels],
              "不予开放": [by[d]["not_open"] for d in labels], "暂缓/撤回": [by[d]["other"] for d in labels]}
    return labels, series


def downloads_per_day(session: Session, days: int = 30, today: dt.date | None = None) -> list[tuple[str, int]]:
    today = today or clock.today()
    start = today - dt.timedelta(days=days - 1)
    counts: Counter = Counter()
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    for column in (DownloadEvent.at, LicensedDownload.at):
        for (moment,) in session.execute(select(column).where(column >= since)):
            counts[moment.date()] += 1
    return [((start + dt.timedelta(days=i)).strftime("%m-%d"), counts[start + dt.timedelta(days=i)]) for i in range(days)]


def applications_by_route(session: Session) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for route, status, n in session.execute(select(Application.route, Application.status, func.count())
                                            .group_by(Application.route, Application.status)):
        out[route][status] += n
    return out


def decision_days(session: Session, department_id: int | None = None) -> list[float]:
    """Days from submission to the provider's first decision, per decided application."""
    query = select(Application.submitted_at, func.min(ApplicationEvent.at)).join(ApplicationEvent) \
        .where(ApplicationEvent.action.in_(DECISIONS)).group_by(Application.id, Application.submitted_at)
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


def evaluation(session: Session, today: dt.date | None = None) -> list[DepartmentScore]:
    """Art. 6: how each department collects, shares and opens its data."""
    today = today or clock.today()
    out = []
    for dept in session.scalars(select(Department).order_by(Department.name)):
        datasets = session.scalars(select(Dataset).where(Dataset.department_id == dept.id)
                                   .options(selectinload(Dataset.distributions))).all()
        if not datasets:
            continue
        published = [d for d in datasets if d.is_public]
        apps = session.scalars(select(Application).where(Application.department_id == dept.id,
                                                         Application.route != "tender")).all()
        decided = [a for a in apps if a.decided_at is not None and a.deadline is not None]
        on_time = (sum(1 for a in decided if a.decided_at.date() <= a.deadline) / len(decided)) if decided else None
        days = decision_days(session, dept.id)
        out.append(DepartmentScore(
            department=dept.name, code=dept.code, entries=len(datasets), published=len(published),
            opening_rate=len(published) / len(datasets), held=sum(1 for d in datasets if d.status == "held"),
            stale=sum(1 for d in published if stale(d, today)), applications=len(apps), on_time=on_time,
            median_days=statistics.median(days) if days else None, downloads=sum(d.download_count for d in datasets)))
    return out
