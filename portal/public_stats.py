"""The public statistics (/stats): datasets by class over time, downloads and API calls per day
and month, deadlines kept — for the portal, a department or a dataset. Read-only.

Only what is open is counted: downloads and data API calls of datasets published now, metadata
calls (CKAN, the fields list) of published datasets of either class; nothing of a dataset held,
withdrawn or not open. Counts come from the daily counters (portal/counters.py) plus what this
portal has counted but not yet added to them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from . import clock
from .messages import Message, _
from .models import (
    PUBLIC_CLASSES,
    Application,
    ClassificationEvent,
    DailyCounter,
    DataRequest,
    Dataset,
    DatasetStatus,
    ErrorReport,
    OpenClass,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .counters import Counters

DAYS = 30
MONTHS = 12
CSV_DAYS = 365


@dataclass
class Scope:
    """What is counted: the whole portal, one department's datasets, or one dataset."""

    department_id: int | None = None
    dataset_id: int | None = None

    @property
    def portal(self) -> bool:
        return self.department_id is None and self.dataset_id is None


@dataclass
class Usage:
    """Downloads and API calls per day (Beijing dates), oldest first."""

    days: list[tuple[dt.date, int, int]] = field(default_factory=list)

    def last(self, n: int) -> list[tuple[dt.date, int, int]]:
        return self.days[-n:]

    def months(self, n: int = MONTHS) -> list[tuple[str, int, int]]:
        by: dict[str, list[int]] = {}
        for day, downloads, calls in self.days:
            totals = by.setdefault(day.strftime("%Y-%m"), [0, 0])
            totals[0] += downloads
            totals[1] += calls
        return [(month, d, c) for month, (d, c) in list(by.items())[-n:]]

    @property
    def downloads(self) -> int:
        return sum(d for _day, d, _c in self.days)

    @property
    def api_calls(self) -> int:
        return sum(c for _day, _d, c in self.days)


def _public(s: Session, scope: Scope) -> dict[int, str]:
    """Datasets published now in the scope: id → open class."""
    query = select(Dataset.id, Dataset.open_class).where(
        Dataset.status == DatasetStatus.PUBLISHED.value, Dataset.open_class.in_(PUBLIC_CLASSES)
    )
    if scope.department_id is not None:
        query = query.where(Dataset.department_id == scope.department_id)
    if scope.dataset_id is not None:
        query = query.where(Dataset.id == scope.dataset_id)
    return {i: cls or "" for i, cls in s.execute(query)}


def _column(kind: str, open_class: str | None, portal_scope: bool) -> int | None:
    """Which column a count goes to (0 downloads, 1 API calls), or None when it is not shown.
    `open_class` is that of the dataset published now, None for a call about no dataset."""
    if open_class is None:
        return 1 if portal_scope and kind == "api_meta" else None
    if kind == "api_meta":
        return 1
    if open_class != OpenClass.UNCONDITIONAL.value:  # conditional data: its public metadata only
        return None
    return 0 if kind == "download" else 1 if kind == "api_data" else None


def _shown(kind: str, dataset_id: int, public: dict[int, str], scope: Scope) -> int | None:
    if dataset_id != 0 and dataset_id not in public:
        return None  # not published now, or not in the scope
    return _column(kind, public.get(dataset_id), scope.portal)


def usage(
    s: Session, counters: Counters | None, scope: Scope, days: int = CSV_DAYS, today: dt.date | None = None
) -> Usage:
    """Summed in the database by day, kind and class (a few hundred rows whatever the catalog's
    size), plus what is counted but not yet flushed."""
    today = today or clock.today()
    start = today - dt.timedelta(days=days - 1)
    public_now = (
        (Dataset.id == DailyCounter.dataset_id)
        & (Dataset.status == DatasetStatus.PUBLISHED.value)
        & Dataset.open_class.in_(PUBLIC_CLASSES)
    )
    query = (
        select(DailyCounter.day, DailyCounter.kind, Dataset.open_class, func.sum(DailyCounter.count))
        .outerjoin(Dataset, public_now)
        .where(DailyCounter.day >= start, DailyCounter.day <= today)
        .group_by(DailyCounter.day, DailyCounter.kind, Dataset.open_class)
    )
    if scope.dataset_id is not None:
        query = query.where(DailyCounter.dataset_id == scope.dataset_id, Dataset.id.is_not(None))
    elif scope.department_id is not None:
        query = query.where(Dataset.department_id == scope.department_id)
    else:
        query = query.where(Dataset.id.is_not(None) | (DailyCounter.dataset_id == 0))
    totals: dict[dt.date, list[int]] = {}
    for day, kind, open_class, n in s.execute(query):
        column = _column(kind, open_class, scope.portal)
        if column is not None:
            totals.setdefault(day, [0, 0])[column] += int(n)
    pending = counters.pending() if counters is not None else {}
    if pending:
        public = _public(s, scope)
        for (day_text, kind, dataset_id, _token), n in pending.items():
            day = dt.date.fromisoformat(day_text)
            column = _shown(kind, dataset_id, public, scope)
            if column is not None and start <= day <= today:
                totals.setdefault(day, [0, 0])[column] += n
    return Usage(
        [
            (day, *totals.get(day, [0, 0]))  # type: ignore[misc]  # a pair of ints
            for day in (start + dt.timedelta(days=i) for i in range(days))
        ]
    )


def per_dataset(
    s: Session, counters: Counters | None, department_id: int, days: int = CSV_DAYS
) -> list[tuple[Dataset, int | None, int]]:
    """A department's published datasets with their downloads (None: conditional, not shown)
    and API calls over the last `days`, most used first."""
    public = _public(s, Scope(department_id=department_id))
    start = clock.today() - dt.timedelta(days=days - 1)
    counts: dict[int, list[int]] = {i: [0, 0] for i in public}
    rows = [
        (kind, ds, int(n))
        for kind, ds, n in s.execute(
            select(DailyCounter.kind, DailyCounter.dataset_id, DailyCounter.count).where(
                DailyCounter.day >= start, DailyCounter.dataset_id.in_(list(public) or [-1])
            )
        )
    ]
    if counters is not None:
        rows += [(k, ds, n) for (d, k, ds, _t), n in counters.pending().items() if d >= start.isoformat()]
    for kind, dataset_id, n in rows:
        column = _shown(kind, dataset_id, public, Scope(department_id=department_id))
        if column is not None:
            counts[dataset_id][column] += n
    datasets = s.scalars(select(Dataset).where(Dataset.id.in_(list(public) or [-1]))).all()
    out = [
        (ds, counts[ds.id][0] if ds.open_class == OpenClass.UNCONDITIONAL.value else None, counts[ds.id][1])
        for ds in datasets
    ]
    return sorted(out, key=lambda row: (-(row[1] or 0) - row[2], row[0].name))


def month_ends(months: int = MONTHS, today: dt.date | None = None) -> list[dt.date]:
    """The last day of each of the last `months` months, today for the current one."""
    today = today or clock.today()
    ends = [today]
    first = today.replace(day=1)
    for _month in range(months - 1):
        last = first - dt.timedelta(days=1)
        ends.append(last)
        first = last.replace(day=1)
    return ends[::-1]


def classes_over_time(
    s: Session, department_id: int | None = None, months: int = MONTHS, today: dt.date | None = None
) -> list[tuple[str, int, int]]:
    """Open datasets by class at the end of each month: (YYYY-MM, unconditional, conditional),
    from each dataset's classification history (its state then), or from its creation and its
    state now when it has none."""
    ends = month_ends(months, today)
    query = select(Dataset.id, Dataset.created_at, Dataset.open_class, Dataset.status)
    if department_id is not None:
        query = query.where(Dataset.department_id == department_id)
    datasets = s.execute(query).all()
    ids = [row.id for row in datasets]
    history: dict[int, list[tuple[dt.datetime, str | None, str]]] = {}
    for dataset_id, at, to_class, to_status in s.execute(
        select(
            ClassificationEvent.dataset_id,
            ClassificationEvent.at,
            ClassificationEvent.to_class,
            ClassificationEvent.to_status,
        )
        .where(ClassificationEvent.dataset_id.in_(ids or [-1]))
        .order_by(ClassificationEvent.at, ClassificationEvent.id)
    ):
        history.setdefault(dataset_id, []).append((clock.local(at), to_class, to_status))
    out = []
    for end in ends:
        counts: Counter[str] = Counter()
        for row in datasets:
            state = _state_at(end, history.get(row.id), row)
            if state is not None and state[1] == DatasetStatus.PUBLISHED.value and state[0] in PUBLIC_CLASSES:
                counts[state[0]] += 1
        out.append(
            (
                end.strftime("%Y-%m"),
                counts[OpenClass.UNCONDITIONAL.value],
                counts[OpenClass.CONDITIONAL.value],
            )
        )
    return out


def _state_at(
    end: dt.date, events: list[tuple[dt.datetime, str | None, str]] | None, row: object
) -> tuple[str | None, str] | None:
    if events:
        before = [e for e in events if e[0].date() <= end]
        return (before[-1][1], before[-1][2]) if before else None
    created = getattr(row, "created_at", None)
    if created is None or clock.local(created).date() > end:
        return None
    return getattr(row, "open_class", None), str(getattr(row, "status", ""))


@dataclass
class Kept:
    """Answers due: how many were given in time, how many late (or still not given past the deadline)."""

    what: Message
    in_time: int
    late: int

    @property
    def rate(self) -> float | None:
        judged = self.in_time + self.late
        return self.in_time / judged if judged else None


def deadlines_kept(s: Session, department_id: int | None = None, today: dt.date | None = None) -> list[Kept]:
    """Applications decided, error reports and data requests answered within their deadlines."""
    today = today or clock.today()

    def judge(done: dt.datetime | None, deadline: dt.date | None) -> bool | None:
        if deadline is None:
            return None
        if done is not None:
            return clock.local(done).date() <= deadline
        return False if deadline < today else None

    waiting = Application.status.in_(("submitted", "info_requested"))
    apps = select(Application.decided_at, Application.deadline).where(
        Application.route != "tender", (Application.decided_at.is_not(None)) | waiting
    )
    reports = select(ErrorReport.answered_at, ErrorReport.deadline).join(Dataset)
    requests = select(DataRequest.answered_at, DataRequest.deadline)
    if department_id is not None:
        apps = apps.where(Application.department_id == department_id)
        reports = reports.where(Dataset.department_id == department_id)
        requests = requests.where(DataRequest.department_id == department_id)
    out = []
    for what, query in ((_("有条件开放申请"), apps), (_("数据纠错"), reports), (_("数据需求"), requests)):
        verdicts = [judge(done, deadline) for done, deadline in s.execute(query)]
        out.append(Kept(what, sum(1 for v in verdicts if v is True), sum(1 for v in verdicts if v is False)))
    return out
