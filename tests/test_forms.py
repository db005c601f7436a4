"""Forms that guide: every problem at once next to its field, the fields of the chosen kind of
account, a form posted twice done once, a licence checked by its number."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.models import DataRequest, User
from tests.helpers import login


def form_fields(html: str, action: str | None = None) -> dict:
    """The hidden fields of a form (of the one posting to `action`, if given), as a browser sends them."""
    forms = [
        f for f in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S) if 'method="post"' in f.split(">", 1)[0]
    ]
    if action:
        forms = [f for f in forms if f'action="{action}"' in f]
    hidden = [tag for tag in re.findall(r"<input\b[^>]*>", forms[0]) if 'type="hidden"' in tag]
    return {
        re.search(r'name="([^"]+)"', tag).group(1): re.search(r'value="([^"]*)"', tag).group(1)
        for tag in hidden
    }


def test_registration_reports_every_problem_at_once_next_to_its_field(client, app):
    page = client.get("/register").get_data(as_text=True)
    response = client.post(
        "/register",
        data={
            **form_fields(page),
            "email": "not-an-address",
            "name": "",
            "password": "short",
            "confirm": "short",
            "kind": "company",
            "company_name": "",
            "credit_code": "91371500MA3C00000X",
        },
    )
    html = response.get_data(as_text=True)
    fields = {
        name: re.search(rf'<div class="field has-error">\s*<label for="{name}".*?</div>', html, re.S)
        for name in ("email", "name", "password", "company_name", "credit_code")
    }
    assert all(fields.values()), [
        n for n, m in fields.items() if not m
    ]  # five fields, each with its error, in one round
    assert "邮箱地址格式不正确" in fields["email"].group(0) and "统一社会信用代码不正确" in fields[
        "credit_code"
    ].group(0)
    assert "密码至少" in fields["password"].group(0)
    with app.extensions["portal"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_only_the_chosen_kinds_fields_are_checked(client, app):
    page = client.get("/register").get_data(as_text=True)
    assert (
        'data-kind="company"' in page and 'data-kind="researcher"' in page
    )  # shown per kind by the page's script
    response = client.post(
        "/register",
        data={
            **form_fields(page),
            "email": "resident@example.cn",
            "name": "居民",
            "password": "Long-enough-pass-1",
            "confirm": "Long-enough-pass-1",
            "kind": "citizen",
            "company_name": "",
            "credit_code": "garbage",
        },
    )
    assert response.status_code == 302  # a citizen's stray company fields are not held against them


def test_a_form_posted_twice_is_done_once(app, make_user):
    _id, email, password = make_user()
    citizen = app.test_client()
    login(citizen, email, password)
    page = citizen.get("/requests").get_data(as_text=True)
    form = {**form_fields(page), "title": "公共充电桩位置", "description": "用于新能源车主查找附近充电桩"}
    first = citizen.post("/requests", data=form)
    again = citizen.post("/requests", data=form, follow_redirects=True)
    assert first.status_code == 302 and "此表单已提交过，未重复处理" in again.get_data(as_text=True)
    with app.extensions["portal"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 1
    # the back button's fresh form with the same text still in it: the same need, not a second one
    page = citizen.get("/requests").get_data(as_text=True)
    same = citizen.post("/requests", data={**form, **form_fields(page)}, follow_redirects=True)
    assert "已提交过同样的数据需求" in same.get_data(as_text=True)
    # a new rendering of the form with another need is a new request
    page = citizen.get("/requests").get_data(as_text=True)
    citizen.post(
        "/requests",
        data={**form_fields(page), "title": "公共厕所位置", "description": "方便出行的居民查找附近公共厕所"},
    )
    with app.extensions["portal"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 2


def test_two_posts_of_one_form_in_flight_together_are_done_once(app, make_user):
    """A double click whose second request leaves before the first's answer came back: the
    second carries the session cookie from before the first was done, so nothing in the
    browser knows of the first. The database does (the form's nonce, committed with its work)."""
    from click.testing import CliRunner

    from portal.cli import main
    from portal.models import FormSubmission

    _id, email, password = make_user()
    citizen = app.test_client()
    login(citizen, email, password)
    page = citizen.get("/requests").get_data(as_text=True)
    cookie_before = citizen.get_cookie("session").value
    form = {**form_fields(page), "title": "公共充电桩位置", "description": "用于新能源车主查找附近充电桩"}
    assert citizen.post("/requests", data=form).status_code == 302
    citizen.set_cookie("session", cookie_before)  # the second click's request, sent with the old cookie
    again = citizen.post("/requests", data=form, follow_redirects=True)
    assert "此表单已提交过，未重复处理" in again.get_data(as_text=True)
    with app.extensions["portal"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 1

    # The daily job forgets done forms after 30 days.
    import datetime as dt

    with app.extensions["portal"].sessions.begin() as s:
        s.scalars(select(FormSubmission)).one().done_at -= dt.timedelta(days=31)
    settings = app.extensions["portal"].settings
    result = CliRunner().invoke(
        main,
        ["--instance", str(settings.instance_path), "remind"],
        env={"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_SEARCH_BACKEND": settings.search_backend},
    )
    assert "1 done forms forgotten" in result.output, result.output


def test_anyone_checks_a_licence_by_its_number(client, granted_world, portal_data):
    from portal.models import Grant

    with portal_data.sessions() as s:
        number = s.scalar(select(Grant.licence_number))
    page = client.get("/licences/").get_data(as_text=True)
    assert 'name="number"' in page and "授权核验" in page
    found = client.get("/licences/", query_string={"number": f" {number.lower()} "}, follow_redirects=True)
    assert number in found.get_data(as_text=True) and "有效" in found.get_data(as_text=True)
    missing = client.get("/licences/", query_string={"number": "DCFL-2026-000000000"}, follow_redirects=True)
    assert missing.status_code == 404 and 'name="number"' in missing.get_data(as_text=True)
