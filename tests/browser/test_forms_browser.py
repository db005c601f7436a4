"""Forms in a real browser: the fields of the chosen kind of account."""

from __future__ import annotations


def test_registration_shows_the_fields_of_the_chosen_kind(page, live_server):
    page.goto(live_server + "/register")
    company, researcher = (
        page.locator("fieldset[data-kind=company]"),
        page.locator("fieldset[data-kind=researcher]"),
    )
    assert not company.is_visible() and not researcher.is_visible()  # a citizen fills in neither
    page.get_by_label("用户类型").select_option("company")
    assert company.is_visible() and not researcher.is_visible()
    page.get_by_label("用户类型").select_option("researcher")
    assert researcher.is_visible() and not company.is_visible()
