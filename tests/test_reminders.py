"""Reminders and escalation (portal/deadlines.py), run by the day's `remind` job through the
scheduler's clock (portal/worker.py tick): what falls due reminds whoever must act, once; what
is late reaches the bureau too; each is a notice on the recipient's account page, counted in the
header until read."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal import feedback
from portal.models import Dataset, OutboxMessage, User
from portal.worker import tick
from tests.helpers import submit

BEIJING = ZoneInfo("Asia/Shanghai")


def _morning(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(8, 5), tzinfo=BEIJING)


def _subjects(ctx, email: str, words: str) -> list[str]:
    with ctx.sessions() as s:
        return [
            m.subject
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.to == email))
            if words in m.subject
        ]


def test_an_application_is_reminded_before_its_deadline_and_escalated_after(portal_data, people):
    ctx = portal_data
    with ctx.sessions() as s:
        application = submit(s, s.get(User, people["applicant"][0]))
        number, deadline = application.number, application.deadline
    curator, bureau = people["curator"][1], people["bureau"][1]

    tick(ctx, now=_morning(deadline - dt.timedelta(days=20)))
    assert _subjects(ctx, curator, number) == [
        s for s in _subjects(ctx, curator, number) if "新的数据申请" in s
    ]

    tick(ctx, now=_morning(deadline - dt.timedelta(days=1)))
    tick(ctx, now=_morning(deadline - dt.timedelta(days=1)) + dt.timedelta(hours=3))  # later that day
    soon = [s for s in _subjects(ctx, curator, number) if "到期" in s]
    assert len(soon) == 1 and str(deadline) in soon[0]
    assert _subjects(ctx, bureau, number) == []  # not late yet: the department's business

    tick(ctx, now=_morning(deadline + dt.timedelta(days=1)))
    tick(ctx, now=_morning(deadline + dt.timedelta(days=2)))
    assert len([s for s in _subjects(ctx, curator, number) if "已逾期" in s]) == 1
    assert len([s for s in _subjects(ctx, bureau, number) if "已逾期" in s]) == 1  # escalated, once


def test_an_answered_error_report_is_not_reminded_an_unanswered_one_escalates(portal_data, people):
    ctx = portal_data
    with ctx.sessions.begin() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
        reporter = s.get(User, people["stranger"][0])
        open_report = feedback.report_error(s, reporter, ds, "数据中的地址有误，请核实")
        answered = feedback.report_error(s, reporter, ds, "电话号码格式有误，请核实")
        s.flush()
        feedback.answer_error(s, s.get(User, people["curator"][0]), answered, "已核实并更正")
        deadline, title = open_report.deadline, ds.title
    tick(ctx, now=_morning(deadline + dt.timedelta(days=1)))
    late = _subjects(ctx, people["curator"][1], "已逾期未答复")
    assert len(late) == 1 and title in late[0]
    assert len(_subjects(ctx, people["bureau"][1], "已逾期未答复")) == 1


def test_a_data_request_the_bureau_has_not_routed_reminds_the_bureau(portal_data, people):
    ctx = portal_data
    with ctx.sessions.begin() as s:
        feedback.ask_for_data(
            s, s.get(User, people["stranger"][0]), "公共停车场泊位数据", "希望开放全区公共停车场泊位实时数据"
        )
    today = dt.datetime.now(BEIJING).date()
    tick(ctx, now=_morning(today + dt.timedelta(days=1)))
    assert _subjects(ctx, people["bureau"][1], "待分派") == []
    tick(ctx, now=_morning(today + dt.timedelta(days=10)))
    assert len(_subjects(ctx, people["bureau"][1], "待分派")) == 1


def test_reminders_are_notices_counted_in_the_header_until_read(portal_data, people, client, auth):
    ctx = portal_data
    with ctx.sessions() as s:
        application = submit(s, s.get(User, people["applicant"][0]))
        deadline, number = application.deadline, application.number
    tick(ctx, now=_morning(deadline + dt.timedelta(days=1)))
    email, password = people["curator"][1], people["curator"][2]
    auth.login(email, password)
    with ctx.sessions() as s:
        unread = len(s.scalars(select(OutboxMessage).where(OutboxMessage.to == email)).all())
    home = client.get("/").get_data(as_text=True)
    assert f'<span class="unread" aria-label="{unread} 条未读通知">{unread}</span>' in home
    page = client.get("/account/notices").get_data(as_text=True)
    assert "数据申请已逾期" in page and number in page and "未读" in page
    assert 'class="unread" aria-label' not in client.get("/").get_data(as_text=True)  # read now
    assert "is-unread" not in client.get("/account/notices").get_data(as_text=True)


def test_the_notices_page_never_shows_a_link_that_acts_by_itself(app, client, auth, make_user):
    _, email, password = make_user()
    auth.login(email, password)
    from tests.helpers import post_form

    post_form(client, "/reset", {"email": email}, page="/reset")
    page = client.get("/account/notices").get_data(as_text=True)
    assert "/reset/" not in page and "此链接只在邮件中提供" in page
