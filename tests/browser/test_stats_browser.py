"""The statistics pages, the dataset page's API section and the account page's API usage in a
real browser: they fit a 390 px phone, in Chinese and in English (PORTAL_SCREENSHOTS=1 saves them)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import select

from portal import accounts, clock
from portal.counters import upsert
from portal.models import Dataset, User
from tests.helpers import SHOTS, shot, sideways_overflow

PHONE = (390, 844)
OPEN = "371502-scj-0001"


@pytest.fixture
def history(portal_data):
    """Sixty days of downloads and API calls of the two open datasets."""
    with portal_data.sessions() as s:
        known = {name: i for name, i in s.execute(select(Dataset.name, Dataset.id))}
        today = clock.today()
        for i in range(60):
            day = today - dt.timedelta(days=i)
            upsert(s, day, "download", known[OPEN], 0, 5 + (i * 7) % 11)
            upsert(s, day, "api_data", known[OPEN], 0, 20 + (i * 13) % 17)
            upsert(s, day, "download", known["371502-jty-0001"], 0, (i * 3) % 5)
            upsert(s, day, "api_meta", known["371502-scj-0002"], 0, 2 + i % 3)
        s.commit()


def section_shot(page, name: str, selector: str | None) -> None:
    """The whole page, or only the section that is this work's (the dataset and account pages are long)."""
    if selector is None or not os.environ.get("PORTAL_SCREENSHOTS"):
        shot(page, name)
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_stats_pages_fit_a_phone_and_a_desktop(open_page, live_server, portal_data, history, make_user, lang):
    user = make_user()
    with portal_data.sessions() as s:
        _row, token = accounts.create_token(s, s.get(User, user[0]), "夜间同步", 90)
        s.commit()
    for _ in range(3):
        portal_data.counters.add("api_data", None, _row.id)
    portal_data.counters.flush()
    pages = {
        "stats": "/stats",
        "stats-department": "/stats/department/dcf-scjgj",
        "dataset-api": f"/dataset/{OPEN}?api_call=rows",
    }
    for size, width in (((1366, 900), "1366"), (PHONE, "390")):
        page = open_page(size, lang=lang if lang == "en" else None)
        for name, path in pages.items():
            assert page.goto(live_server + path).status == 200, (name, width)
            assert sideways_overflow(page) == 0, (name, width)
            section_shot(page, f"{name}-{width}-{lang}", "#api" if name == "dataset-api" else None)
        signed_in = open_page(size, lang=lang if lang == "en" else None, user=user)
        assert signed_in.goto(live_server + "/account?usage").status == 200
        assert sideways_overflow(signed_in) == 0
        assert signed_in.locator("table.api-usage td").nth(1).inner_text() == "3"
        section_shot(signed_in, f"account-api-usage-{width}-{lang}", "section:has(#tokens)")
