"""Working-day deadlines on the Chinese calendar (holidays and make-up working days).

chinese-calendar knows the State Council's schedule only for the years its release covers
(1.11: up to 2026) and raises for later ones. Past that, the count falls back to Monday to
Friday and says so, so an application made on 2026-12-24 still gets a deadline — with a
note that it will be recounted when the next year's schedule is published.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar


@dataclass(frozen=True)
class Deadline:
    date: dt.date
    note: str  # how it was counted, shown to applicant and curator


def is_workday(day: dt.date) -> tuple[bool, bool]:
    """(is it a working day, was the official calendar known for it)."""
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start: dt.date, days: int) -> Deadline:
    """The `days`-th working day after `start` (the day of submission does not count)."""
    day, counted, guessed = start, 0, False
    while counted < days:
        day += dt.timedelta(days=1)
        workday, known = is_workday(day)
        guessed |= not known
        counted += workday
    if guessed:
        note = (f"{days} 个工作日；{day.year} 年法定节假日安排尚未收录，超出部分按周一至周五计算，"
                f"公布后重新核定 / {days} working days; holidays after the calendar's last known year "
                f"are not yet published, so those days were counted Monday to Friday")
    else:
        note = f"{days} 个工作日，已计入法定节假日和调休上班日 / {days} working days on the official calendar"
    return Deadline(day, note)
