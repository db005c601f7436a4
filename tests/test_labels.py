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

CODES = sorted({code for table in LABELS.values() for code in table if code and "_" in code or code in (
    "published", "internal", "held", "withdrawn", "unconditional", "conditional", "submitted", "approved", "refused",
    "granted", "interest", "evaluating", "awarded", "concluded", "announced", "opened", "replaced", "valid",
    "expired", "revoked", "suspended", "rejected", "citizen", "company", "researcher", "spreadsheet", "created",
    "updated", "unchanged", "finished", "running", "consent", "tender", "innovation", "governance", "commercial")})


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

    people = {"bureau": make_user(bureau=True), "curator": make_user(curator_of="dcf-scjgj"),
              "company": make_user("company")}
    with portal_data.sessions() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0002"))
        now = utcnow()
        tenders.open_tender(s, s.get(User, people["bureau"][0]), tenders.TenderDraft(
            title="企业信用风险数据商业开发授权", datasets=[(ds, None)], licence_months=12, territory="东昌府区",
            qualifications="依法设立的企业", opens_at=now - dt.timedelta(hours=1), closes_at=now + dt.timedelta(days=7),
            min_bids=1))
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
        "curator": ["/console", "/console/datasets/371502-scj-0004", "/console/datasets/371502-scj-0001",
                    "/console/applications"],
        "bureau": ["/admin/harvest", "/admin/harvest?job=1", "/admin/audit", "/admin/restrictions", "/admin/users",
                   "/admin/licensing", "/admin/", "/tenders", "/tenders/" ],
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
