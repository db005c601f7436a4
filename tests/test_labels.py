"""People see words, not codes: every state a page shows comes from the label table
(portal/labels.py), in the page's language."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from portal.labels import LABELS, label
from portal.messages import use_locale
from portal.models import Dataset, User, utcnow
from tests.helpers import login

CODES = sorted(
    {
        code
        for table in LABELS.values()
        for code in table
        if code
        and "_" in code
        or code
        in (
            "published",
            "internal",
            "held",
            "withdrawn",
            "unconditional",
            "conditional",
            "submitted",
            "approved",
            "refused",
            "granted",
            "interest",
            "evaluating",
            "awarded",
            "concluded",
            "announced",
            "opened",
            "replaced",
            "valid",
            "expired",
            "revoked",
            "suspended",
            "rejected",
            "citizen",
            "company",
            "researcher",
            "spreadsheet",
            "created",
            "updated",
            "unchanged",
            "finished",
            "running",
            "consent",
            "tender",
            "innovation",
            "governance",
            "commercial",
        )
    }
)


def raw_codes(html: str) -> list[str]:
    """Codes standing as the text of an element, alone or between separators (a cell, a
    badge, "from → to"); words inside a sentence are the sentence's."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    text_nodes = re.findall(r">([^<>]*)<", html)
    parts = {p.strip() for node in text_nodes for p in re.split(r"[·→|：:，,]", node) if p.strip()}
    return sorted(parts & set(CODES))


@pytest.fixture
def world(portal_data, make_user, granted_world):
    from licenses import tenders

    people = {
        "bureau": make_user(bureau=True),
        "curator": make_user(curator_of="dcf-scjgj"),
        "company": make_user("company"),
    }
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        now = utcnow()
        tenders.open_tender(
            s,
            s.get(User, people["bureau"][0]),
            tenders.TenderDraft(
                title="企业信用风险数据商业开发授权",
                datasets=[(ds, None)],
                licence_months=12,
                territory="东昌府区",
                qualifications="依法设立的企业",
                opens_at=now - dt.timedelta(hours=1),
                closes_at=now + dt.timedelta(days=7),
                min_bids=1,
            ),
        )
        s.commit()
    return people


def client_as(app, who, lang: str = "zh"):
    client = app.test_client()
    client.set_cookie("lang", lang)
    login(client, *who[1:])
    return client


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pages_that_show_states_show_words_not_codes(app, world, granted_world, lang):
    pages = {
        "curator": [
            "/console",
            "/console/datasets/371502-scj-0004",
            "/console/datasets/371502-scj-0001",
            "/console/applications",
        ],
        "bureau": [
            "/admin/harvest",
            "/admin/harvest?job=1",
            "/admin/audit",
            "/admin/restrictions",
            "/admin/users",
            "/admin/licensing",
            "/admin/",
            "/tenders",
            "/tenders/",
        ],
        "company": ["/tenders"],
    }
    found = {}
    for who, urls in pages.items():
        client = client_as(app, world[who], lang)
        for url in urls:
            if url == "/tenders/":
                html = client.get("/tenders").get_data(as_text=True)
                url = re.search(r'href="(/tenders/[^"]+)"', html).group(1)
            html = client.get(url).get_data(as_text=True)
            if codes := raw_codes(html):
                found[url] = codes
    applicant = client_as(app, granted_world, lang)
    for url in ["/applications", "/grants"]:
        if codes := raw_codes(applicant.get(url).get_data(as_text=True)):
            found[url] = codes
    assert found == {}, found


def test_every_label_has_its_english_and_unknown_codes_are_not_shown(caplog):
    with use_locale("en"):
        for kind, table in LABELS.items():
            for code, words in table.items():
                assert str(words) != words.source, f"{kind}.{code} has no English"
    assert label("dataset_status", "published").source == "已发布"
    assert label("dataset_status", "no_such_state") == "—" and "no label" in caplog.text


FULL_WIDTH = re.compile(r"[（）：；、，。]")


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", "", html)


def test_english_pages_give_the_portals_own_words_and_punctuation_in_english(
    app, portal_data, world, granted_world
):
    """Generated text (a tender's announcement, its history, a harvest's note, a column's type)
    and the punctuation around the page's own words follow the page's language; what people
    wrote and the catalog's words stay as written."""
    from licenses import tenders
    from portal.models import Grant, Tender

    with portal_data.sessions() as s:
        tender = s.scalar(select(Tender))
        tenders.close(
            s,
            s.scalar(select(User).where(User.email == world["bureau"][1])),
            tender,
            now=utcnow() + dt.timedelta(days=8),
        )
        s.commit()
        number, announcement = tender.number, tender.announcement
        licence = s.scalar(select(Grant)).licence_number
    english = client_as(app, world["bureau"], "en")
    page = english.get(f"/tenders/{number}").get_data(as_text=True)
    words = visible_text(page)
    assert "Scope of the licence: " in words and "Criteria and weights: " in words and "(round 1)" in words
    assert (
        "Fewest valid bids: 1; with fewer, the tender fails." in words and "Development plan 40%; " in words
    )
    assert "Price 15%" in words  # the default criteria are the portal's words
    assert "Bids from " in words and "0 valid bids, fewer than 1: the tender failed" in words
    for chinese in ("东昌府区大数据局会同", "最少有效投标", "有效投标", "（", "；", "北京时间"):
        assert chinese not in words, chinese
    chinese_page = client_as(app, world["bureau"], "zh").get(f"/tenders/{number}").get_data(as_text=True)
    assert announcement in visible_text(chinese_page).replace("&#34;", '"')  # the record, as published
    assert "有效投标 0 家，少于 1 家，流标" in visible_text(chinese_page) and "（第 1 轮）" in visible_text(
        chinese_page
    )
    assert "Audit trail (Beijing time)" in english.get("/admin/audit").get_data(as_text=True)
    lookup = visible_text(english.get(f"/licences/{licence}").get_data(as_text=True))
    assert f"{licence}: " in lookup and not FULL_WIDTH.search(lookup.split("Data")[0]), lookup[:300]
    curator = client_as(app, world["curator"], "en")
    console = visible_text(curator.get("/console/datasets/371502-scj-0001").get_data(as_text=True))
    assert "Open class in the catalog: Unconditional" in console and "目录开放类型" not in console
    assert "Catalog says: Market regulation" in console
    applicant = client_as(app, granted_world, "en")
    mine = applicant.get("/applications").get_data(as_text=True)
    shown = re.search(r'href="(/applications/\d+)"', mine).group(1)
    assert "Licence number: " in visible_text(applicant.get(shown).get_data(as_text=True))


def test_the_audit_trail_names_things_by_the_numbers_people_quote(app, world, granted_world):
    from portal.models import Grant

    with app.extensions["portal"].sessions() as s:
        licence = s.scalar(select(Grant.licence_number))
    html = client_as(app, world["bureau"]).get("/admin/audit").get_data(as_text=True)
    assert licence in html  # the grant by its licence number…
    assert not re.search(r"授权 \d+<", html) and not re.search(r"申请 \d+<", html)  # …not by its row id
