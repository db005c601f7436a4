"""Every message of the UI has its English, and the compiled catalog matches the .po file."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "portal/translations/en/LC_MESSAGES/messages.po"


def test_every_ui_message_is_translated():
    with open(PO, "rb") as f:
        catalog = read_po(f)
    method_map = [
        ("portal/**.py", "python"),
        ("harvest/**.py", "python"),
        ("licenses/**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    ids = {
        msg
        for _file, _line, msg, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords={"_": None, "gettext": None, "_l": None}
        )
        if isinstance(msg, str)
    }
    missing = sorted(i for i in ids if not (catalog.get(i) and catalog.get(i).string))
    assert missing == []


def test_compiled_catalog_is_current():
    with open(PO, "rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id}
    with open(PO.with_suffix(".mo"), "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert po == mo, "run: pybabel compile -d portal/translations -D messages"


# ------------------------------------------------------------------ one language per page

BILINGUAL = re.compile(r"[\u4e00-\u9fff][^\"'\n]{0,80}\s/\s[A-Za-z]")
# Documents that are bilingual by design (a file or a mail read without a page language).
DOCUMENTS = {
    "licenses/agreement_text.py",
    "licenses/notify.py",
    "licenses/decision_pdf.py",
    "licenses/grants.py",
    "licenses/sandbox_output.py",
    "portal/catalog/bundle.py",
    "portal/openapi.py",
    "portal/demo.py",
}


def test_python_code_words_its_messages_through_gettext_not_as_chinese_slash_english():
    """Every message of the Python side goes through portal.messages._ (one catalog, the reader's
    language); a literal "中文 / English" would show both languages on every page."""
    found = []
    for package in ("portal", "harvest", "licenses"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in DOCUMENTS or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if BILINGUAL.search(code) and ('"' in code or "'" in code) and '"""' not in code:
                    found.append(f"{relative}:{number}: {line.strip()[:90]}")
    assert found == []


def _as_curator(app, make_user, department: str, lang: str):
    from tests.helpers import login

    _id, email, password = make_user(curator_of=department)
    client = app.test_client()
    client.set_cookie("lang", lang)
    login(client, email, password)
    return client


def test_a_domain_refusal_is_shown_in_the_language_of_the_page(app, make_user):
    from tests import factories
    from tests.helpers import post_form

    with app.extensions["portal"].sessions() as s:  # a published dataset is all the refusal needs
        factories.dataset(s, "371502-scj-0001", "药品零售企业名录")
        s.commit()
    for lang, said, not_said in (
        ("zh", "有条件开放和不予开放须写明法律依据", "legal basis"),
        ("en", "A restriction needs its legal basis", "须写明法律依据"),
    ):
        curator = _as_curator(app, make_user, "dcf-scjgj", lang)
        page = post_form(
            curator,
            "/console/datasets/371502-scj-0001/reclassify",
            {"open_class": "conditional", "legal_basis": "", "reason": "试一试"},
            page="/console/datasets/371502-scj-0001",
            follow_redirects=True,
        ).get_data(as_text=True)
        assert said in page and not_said not in page, lang


def test_why_a_dataset_is_held_and_its_fix_are_in_the_language_of_the_page(app, portal_data, make_user):
    page = (
        _as_curator(app, make_user, "dcf-scjgj", "en")
        .get("/console/datasets/371502-scj-0004")
        .get_data(as_text=True)
    )
    [english] = re.findall(r'<ol class="hold-details">.*?</ol>', page, re.S)  # (the history keeps its record)
    assert "resident ID numbers" in english and "choose a masking for the column" in english
    assert "身份证号码" not in english and "脱敏方式（部分遮蔽" not in english
    chinese = (
        _as_curator(app, make_user, "dcf-scjgj", "zh")
        .get("/console/datasets/371502-scj-0004")
        .get_data(as_text=True)
    )
    assert "身份证号码" in chinese and "resident ID numbers" not in chinese
    home = _as_curator(app, make_user, "dcf-scjgj", "en").get("/console").get_data(as_text=True)
    assert "resident ID numbers" in home and "身份证号码" not in home


def test_a_stored_message_is_put_into_words_when_shown():
    from portal.messages import Message, _, from_stored, stored, use_locale

    note = _(
        "补充材料后重新计算：%(note)s", note=_("%(days)s 个工作日，已计入法定节假日和调休上班日", days=20)
    )
    kept = stored(note)
    assert "%(days)s" in kept  # the record keeps the message, not one language's words
    with use_locale("en"):
        assert (
            str(from_stored(kept))
            == "Counted again after the answer: 20 working days, counting statutory holidays and make-up working days"
        )
    assert str(from_stored(kept)) == "补充材料后重新计算：20 个工作日，已计入法定节假日和调休上班日"
    assert from_stored("旧的说明文字") == "旧的说明文字"  # rows written before keep their text
    assert isinstance(from_stored(kept), Message)


def test_the_english_page_shows_the_departments_english_and_marks_chinese_it_did_not_translate(
    app, portal_data, make_user
):
    from tests.helpers import post_form

    curator = _as_curator(app, make_user, "dcf-scjgj", "zh")
    post_form(
        curator,
        "/console/datasets/371502-scj-0001/edit",
        {
            "title_en": "Licensed pharmacies",
            "summary_en": "Retail pharmacies of the district and their streets",
        },
        page="/console/datasets/371502-scj-0001",
    )
    reader = app.test_client()
    reader.set_cookie("lang", "en")
    page = reader.get("/dataset/371502-scj-0001").get_data(as_text=True)
    [heading] = re.findall(r"<h1>.*?</h1>", page, re.S)
    assert '<span lang="en">Licensed pharmacies</span>' in heading and "药品零售企业名录" in heading
    assert "Retail pharmacies of the district" in page
    other = reader.get("/dataset/371502-jty-0001").get_data(as_text=True)
    [heading] = re.findall(r"<h1>.*?</h1>", other, re.S)
    assert '<span lang="zh-CN">公交站点位置</span>' in heading and "(title in Chinese)" in heading
    # the catalog's controlled values are in the reader's words; free text stays as written
    assert "<span>Transport</span>" in other and "<span>Daily</span>" in other and ">交通运输<" not in other


def test_a_link_with_lang_en_keeps_english_on_the_next_page(client, portal_data):
    """A shared link with ?lang=en: the result the reader clicks next is English too."""
    first = client.get("/search", query_string={"q": "bus", "lang": "en"})
    assert first.status_code == 200 and 'lang="en"' in first.get_data(as_text=True)
    following = client.get("/dataset/371502-jty-0001").get_data(as_text=True)  # no ?lang= on the link
    assert 'lang="en"' in following
