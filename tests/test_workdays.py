import datetime as dt

from licenses.workdays import add_working_days


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


def test_past_the_last_year_the_calendar_knows():
    deadline = add_working_days(dt.date(2026, 12, 24), 10)  # Thu
    # 25, 28–31 Dec = 5 (2026 known; 1 Jan 2027 onward counted Mon–Fri), 1 Jan (Fri) 6, 4–7 Jan 7–10
    assert deadline.date == dt.date(2027, 1, 7)
    assert "周一至周五" in deadline.note and "Monday to Friday" in deadline.note


def test_a_tender_standstill_of_five_working_days():
    assert add_working_days(dt.date(2026, 11, 20), 5).date == dt.date(2026, 11, 27)  # Fri → next Fri
