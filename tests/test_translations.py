"""Every message of the UI has its English, and the compiled catalog matches the .po file."""
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "portal/translations/en/LC_MESSAGES/messages.po"


def test_every_ui_message_is_translated():
    with open(PO, "rb") as f:
        catalog = read_po(f)
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
    ids = {msg for _file, _line, msg, _comments, _context in
           extract_from_dir(str(ROOT), method_map, keywords={"_": None, "gettext": None, "_l": None}) if isinstance(msg, str)}
    missing = sorted(i for i in ids if not (catalog.get(i) and catalog.get(i).string))
    assert missing == []


def test_compiled_catalog_is_current():
    with open(PO, "rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id}
    with open(PO.with_suffix(".mo"), "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert po == mo, "run: pybabel compile -d portal/translations -D messages"
