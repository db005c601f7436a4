import datetime as dt

from portal.workdays import add_working_days


def test_spring_festival_2026_is_skipped():
    # 2026 Spring Festival holiday: 15–23 February; 14 and 28 February are make-up working days
    deadline = add_working_days(dt.date(2026, 2, 12), 10)  # a Thursday
    # 13 Feb (Fri) 1, 14 Feb (Sat, make-up) 2, 24–27 Feb 3–6, 28 Feb (Sat, make-up) 7, 2–4 Mar 8–10
    assert deadline.date == dt.date(2026, 3, 4)
    assert "法定节假日" in deadline.note and "周一至周五" not in deadline.note


def test_a_make_up_saturday_counts_and_national_day_does_not():
    deadline = add_working_days(dt.date(2026, 9, 28), 5)  # Mon; 1–7 Oct holiday, 10 Oct (Sat) make-up
    # 29, 30 Sep = 2; 8, 9 Oct = 4; 10 Oct (Sat) = 5
    assert deadline.date == dt.date(2026, 10, 10)


def test_past_the_last_year_the_calendar_knows_statutory_holidays_still_count():
    deadline = add_working_days(dt.date(2026, 12, 24), 10)  # Thu
    # 25, 28–31 Dec = 5 (2026 known); 1 Jan 2027 (Fri) is New Year's Day; 4–8 Jan = 6–10
    assert deadline.date == dt.date(2027, 1, 8)
    assert "尚未公布" in deadline.note and "statutory holidays are counted" in deadline.note.in_locale("en")


STATUTORY_2027 = [
    dt.date(2027, 1, 1),
    dt.date(2027, 2, 5),
    dt.date(2027, 2, 8),
    dt.date(2027, 2, 9),
    dt.date(2027, 2, 10),
    dt.date(2027, 4, 5),
    dt.date(2027, 5, 3),
    dt.date(2027, 5, 4),
    dt.date(2027, 6, 9),
    dt.date(2027, 9, 15),
    dt.date(2027, 10, 1),
    dt.date(2027, 10, 4),
    dt.date(2027, 10, 5),
]


def test_no_statutory_holiday_of_2027_is_a_working_day():
    from portal.workdays import is_workday

    for day in STATUTORY_2027:  # New Year, Spring Festival from its eve, Qingming, Labour Day, Dragon Boat, …
        assert is_workday(day) == (False, False), day
    assert is_workday(dt.date(2027, 2, 15)) == (True, False)  # the Monday after the Spring Festival week


def test_deadlines_across_the_2027_holidays_come_out_late_never_early():
    # Unpublished: the Spring Festival counted off from its eve (5 Feb) for nine days, 1–8 Oct
    spring = add_working_days(dt.date(2027, 2, 3), 10)  # Wed
    # 4 Feb = 1; 15–19 Feb = 6; 22–25 Feb = 10
    assert spring.date == dt.date(2027, 2, 25)
    national = add_working_days(dt.date(2027, 9, 29), 5)  # Wed
    # 30 Sep = 1; 11–14 Oct = 5
    assert national.date == dt.date(2027, 10, 14)
    # against the real pattern of a National Day week (1–7 Oct off, Sat 9 Oct worked), the
    # estimate is never the earlier one
    real_off = {dt.date(2027, 10, d) for d in range(1, 8)}
    real_work = {dt.date(2027, 10, 9)}
    from portal.workdays import Schedule

    published = Schedule({**{d: False for d in real_off}, **{d: True for d in real_work}}, frozenset({2027}))
    for start in [dt.date(2027, 9, d) for d in range(20, 31)] + [dt.date(2027, 10, d) for d in range(1, 10)]:
        for days in (5, 10, 15):
            assert add_working_days(start, days).date >= add_working_days(start, days, published).date, (
                start,
                days,
            )


def test_a_tender_standstill_of_five_working_days():
    assert add_working_days(dt.date(2026, 11, 20), 5).date == dt.date(2026, 11, 27)  # Fri → next Fri


def test_the_portal_counts_days_in_beijing_whatever_the_servers_clock(monkeypatch):
    from zoneinfo import ZoneInfo

    from portal import clock

    monkeypatch.delenv("PORTAL_TIMEZONE", raising=False)
    clock.zone.cache_clear()
    late_evening_utc = dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.UTC)
    assert clock.local(late_evening_utc).date() == dt.date(2027, 1, 1)  # already New Year's Day in Liaocheng
    assert clock.today() == dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    monkeypatch.setenv("PORTAL_TIMEZONE", "UTC")
    clock.zone.cache_clear()
    assert clock.local(late_evening_utc).date() == dt.date(2026, 12, 31)
    clock.zone.cache_clear()
