"""Working-day deadlines on the Chinese calendar (holidays and make-up working days).

chinese-calendar knows the State Council's schedule only for the years its release covers
(1.11: up to 2026) and raises for later ones. Past that, the statutory holidays still are
holidays (rules.md: New Year, Spring Festival from its eve, Qingming, Labour Day, Dragon
Boat, Mid-Autumn, National Day): the `holidays` library computes them for any year from the
lunar calendar, with the days off the law gives around them. Only the make-up working days
are unknown until the schedule is published, so such a deadline may come out a day or two
late, never early, and its note says it will be recounted.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import chinese_calendar
import holidays

from .messages import Message, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Schedule:
    """The official schedule the bureau entered: {day: is a working day}, and its years."""

    days: dict[dt.date, bool]
    years: frozenset[int]


NO_SCHEDULE = Schedule({}, frozenset())


def load_schedule(session: Session) -> Schedule:
    from sqlalchemy import select

    from portal.models import CalendarDay

    days = {row.day: row.workday for row in session.scalars(select(CalendarDay))}
    return Schedule(days, frozenset(d.year for d in days))


@dataclass(frozen=True)
class Deadline:
    date: dt.date
    note: Message  # how it was counted, shown to applicant and curator


def is_workday(day: dt.date, schedule: Schedule = NO_SCHEDULE) -> tuple[bool, bool]:
    """(is it a working day, was the official calendar known for it). The schedule the bureau
    entered comes first (a statutory holiday stays one even if the entry missed it), then
    chinese-calendar's, then an estimate that is never short of days off."""
    if day.year in schedule.years:
        return schedule.days.get(day, day.weekday() < 5) and day not in statutory(day.year), True
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        return day.weekday() < 5 and day not in _estimated_days_off(day.year), False


@functools.cache
def statutory(year: int) -> frozenset[dt.date]:
    """The statutory holidays themselves (New Year, the Spring Festival from its eve,
    Qingming, Labour Day, Dragon Boat, Mid-Autumn, National Day), from the lunar calendar."""
    return frozenset(
        d
        for d, name in holidays.China(years=year).items()
        if "observed" not in name.lower() and "day off" not in name.lower()
    )


@functools.cache
def _estimated_days_off(year: int) -> frozenset[dt.date]:
    """For a year whose schedule is not published: at least every day the State Council has
    given off around each holiday — the Spring Festival from its eve for nine days, 1–5 May,
    1–8 October, and the Monday or Friday that bridges a holiday on a Tuesday or Thursday — so
    a deadline counted on it comes out late, never early. Make-up working days are unknown
    and counted as days off, which errs the same way."""
    days = set(statutory(year)) | set(holidays.China(years=year))
    for d, name in holidays.China(years=year).items():
        if "eve" in name.lower():
            days |= {d + dt.timedelta(days=i) for i in range(9)}
    days |= {dt.date(year, 5, i) for i in range(1, 6)} | {dt.date(year, 10, i) for i in range(1, 9)}
    for d in list(days):
        if d.weekday() == 1:
            days.add(d - dt.timedelta(days=1))
        elif d.weekday() == 3:
            days.add(d + dt.timedelta(days=1))
    return frozenset(days)


def add_working_days(start: dt.date, days: int, schedule: Schedule = NO_SCHEDULE) -> Deadline:
    """The `days`-th working day after `start` (the day of submission does not count)."""
    day, counted, guessed = start, 0, False
    while counted < days:
        day += dt.timedelta(days=1)
        workday, known = is_workday(day, schedule)
        guessed |= not known
        counted += workday
    if guessed:
        note = _(
            "%(days)s 个工作日；%(year)s 年节假日安排尚未公布，已按法定节假日（元旦、春节、清明、劳动节、端午、"
            "中秋、国庆）计算，调休上班日待公布后重新核定",
            days=days,
            year=day.year,
        )
    else:
        note = _("%(days)s 个工作日，已计入法定节假日和调休上班日", days=days)
    return Deadline(day, note)
