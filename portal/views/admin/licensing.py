"""Oversight of conditional data: overdue applications, usage reports, each grant's use, the
working-day calendar."""

from __future__ import annotations

import datetime as dt

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licenses import applications as apps
from licenses import grants
from licenses.applications import enter_schedule
from licenses.errors import LicenceError

from ... import clock
from ...forms import CalendarForm, checked
from ...messages import _
from ...models import CalendarDay, Grant, LicensedDownload
from ...web import back, db, done
from . import bp


@bp.get("/licensing")
def licensing() -> ResponseReturnValue:
    s = db()
    return render_template(
        "admin/licensing.html",
        overdue=apps.overdue(s),
        missing=grants.missing_reports(s),
        grants=s.scalars(select(Grant).order_by(Grant.id.desc()).limit(200)).all(),
        today=clock.today(),
    )


@bp.get("/licensing/grants/<int:grant_id>")
def grant_use(grant_id: int) -> ResponseReturnValue:
    """One grant as the bureau follows its use (Art. 25): usage reports with what was built
    and where it is used, every licensed download and data API call, the next report due."""
    s = db()
    grant = s.get(Grant, grant_id) or abort(404)
    downloads = s.scalars(
        select(LicensedDownload)
        .where(LicensedDownload.grant_id == grant.id)
        .order_by(LicensedDownload.id.desc())
        .limit(500)
    ).all()
    return render_template(
        "admin/grant_use.html",
        grant=grant,
        downloads=downloads,
        next_due=grants.next_report_due(grant),
        today=clock.today(),
    )


def calendar_dates(text: str) -> list[dt.date]:
    """Dates as the State Council's notice writes them: 2027-1-1, 2027年1月1日, 2027.10.01, and
    ranges 2027-10-01至2027-10-07 (至, ~, 到, –). A malformed date is an error, never dropped."""
    import re

    one = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    found: list[dt.date] = []
    rest = text
    for m in re.finditer(rf"{one}(?:\s*(?:至|到|~|～|–|—|-{{2}})\s*{one})?", text):
        start = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        end = dt.date(int(m.group(4)), int(m.group(5)), int(m.group(6))) if m.group(4) else start
        if end < start or (end - start).days > 31:
            raise ValueError("range")
        found += [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        rest = rest.replace(m.group(0), " ", 1)
    if re.search(r"\d", rest):  # digits left over: a date written in a way not understood
        raise ValueError("unread date")
    return found


@bp.route("/calendar", methods=["GET", "POST"])
def calendar() -> ResponseReturnValue:
    """The State Council's holiday schedule, entered when published: open deadlines are
    recounted on it (licenses.applications.enter_schedule)."""
    s = db()
    if request.method == "POST":
        back(url_for("admin.calendar"))
        form = checked(CalendarForm())
        year = form.year.data
        try:
            found = {
                "holidays": calendar_dates(form.holidays.data or ""),
                "workdays": calendar_dates(form.workdays.data or ""),
            }
        except ValueError:
            raise LicenceError(
                _("请填写年份（2000–2100）和日期（如 2027-01-01 或 2027-10-01至2027-10-07）")
            ) from None
        moved = enter_schedule(
            s, current_user, year, found["holidays"], found["workdays"], ip=request.remote_addr
        )
        return done(
            _("已录入 %(year)s 年节假日安排，重新核定办理期限 %(len)s 件。", year=year, len=len(moved))
        )
    days = s.scalars(select(CalendarDay).order_by(CalendarDay.day)).all()
    years: dict[int, dict[str, list]] = {}
    for d in days:
        years.setdefault(d.day.year, {"holidays": [], "workdays": []})[
            "workdays" if d.workday else "holidays"
        ].append(d.day)
    return render_template("admin/calendar.html", years=years, form=CalendarForm(formdata=None))
