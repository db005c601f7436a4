"""One translation mechanism for the whole portal: gettext over one catalog
(portal/translations/<lang>/LC_MESSAGES/messages.po), for templates and Python alike.

Templates call Flask-Babel's `_()`. Python code — the domains (harvest, licenses, catalog,
accounts, feedback) as much as the views — marks its words with `_()` from this module, which
needs no Flask: it returns a `Message`, a lazy message that is put into words only when it is
shown, in the reader's language. The web layer sets that language per request
(`portal/i18n.py` → `use_locale`); outside a request (the CLI, a harvest, a test calling a
service) it is Chinese, the portal's first language and the language of its records.

    raise CurationError(_("「%(title)s」不是有条件开放数据", title=ds.title))

The Chinese text is the message id; `%(name)s` placeholders are filled after translation
(as Flask-Babel does), and a parameter that is itself a Message is translated too. What is
stored in the database (an audit note, a hold reason kept as a summary) is the Chinese text:
`message.source`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations
from markupsafe import Markup, escape

SOURCE_LOCALE = "zh"
LOCALES = ("zh", "en")
TRANSLATIONS = Path(__file__).parent / "translations"

_locale: ContextVar[str] = ContextVar("portal_locale", default=SOURCE_LOCALE)


def current_locale() -> str:
    return _locale.get()


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Words in `locale` inside the block (the web layer wraps each request in it)."""
    token = _locale.set(locale if locale in LOCALES else SOURCE_LOCALE)
    try:
        yield
    finally:
        _locale.reset(token)


def set_locale(locale: str) -> Token[str]:
    """For a request's before/teardown pair: returns the token `reset_locale` takes."""
    return _locale.set(locale if locale in LOCALES else SOURCE_LOCALE)


def reset_locale(token: Token[str]) -> None:
    _locale.reset(token)


@cache
def _catalog(locale: str) -> NullTranslations:
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [locale], domain="messages")


def gettext(msgid: str) -> str:
    """`msgid` in the current locale, as written when not translated (templates' `_()`)."""
    return _catalog(_locale.get()).gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(_locale.get()).ngettext(singular, plural, n)


def pgettext(context: str, msgid: str) -> str:
    return str(_catalog(_locale.get()).pgettext(context, msgid))


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return _catalog(_locale.get()).npgettext(context, singular, plural, n)


def translate(msgid: str, params: Mapping[str, object] | None = None, locale: str | None = None) -> str:
    locale = locale or _locale.get()
    text = _catalog(locale).gettext(msgid)
    if not params or "%" not in text:
        return text
    try:
        return text % {
            k: v.in_locale(locale) if isinstance(v, Message | Joined) else v for k, v in params.items()
        }
    except (KeyError, ValueError, TypeError):  # a stored message whose wording changed since
        return msgid


class Message:
    """A message to a person, put into words when shown (str(), Jinja, JSON via str)."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: Mapping[str, object] | None = None) -> None:
        self.msgid = msgid
        self.params = dict(params or {})

    def in_locale(self, locale: str) -> str:
        return translate(self.msgid, self.params, locale)

    @property
    def source(self) -> str:
        """The Chinese text: what the portal's records keep."""
        return self.in_locale(SOURCE_LOCALE)

    def __str__(self) -> str:
        return translate(self.msgid, self.params)

    def __html__(self) -> Markup:
        return escape(str(self))

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return (self.msgid, self.params) == (other.msgid, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.msgid)

    def __contains__(self, text: str) -> bool:
        return text in str(self)

    def __mod__(self, params: Mapping[str, object]) -> Message:
        """WTForms fills its own fields into a validator's message with `%`."""
        return Message(self.msgid, {**params, **self.params})

    def as_json(self) -> dict:
        """For a JSON column (a hold's details, a report): translated again when shown."""
        return {
            "id": self.msgid,
            "params": {
                k: v.as_json() if isinstance(v, Message | Joined) else v for k, v in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Message:
        params = {k: _from_json(v) for k, v in (data.get("params") or {}).items()}
        return cls(str(data.get("id", "")), params)

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)


class Joined:
    """Messages and plain text shown side by side, each part in the reader's language."""

    __slots__ = ("parts",)

    def __init__(self, *parts: object) -> None:
        self.parts = parts

    @classmethod
    def between(cls, separator: object, items: Iterable[object]) -> Joined:
        """Items with a separator between them (a list: `_("；")` is "; " in English)."""
        parts: list[object] = []
        for item in items:
            parts += [separator, item] if parts else [item]
        return cls(*parts)

    def in_locale(self, locale: str) -> str:
        return "".join(p.in_locale(locale) if isinstance(p, Message | Joined) else str(p) for p in self.parts)

    def __str__(self) -> str:
        return "".join(str(p) for p in self.parts)

    def __html__(self) -> Markup:
        return escape(str(self))

    def __eq__(self, other: object) -> bool:
        return self.parts == other.parts if isinstance(other, Joined) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.parts)

    @property
    def source(self) -> str:
        return self.in_locale(SOURCE_LOCALE)

    def as_json(self) -> dict:
        return {"joined": [p.as_json() if isinstance(p, Message | Joined) else str(p) for p in self.parts]}


def _from_json(value: object) -> object:
    """A stored message's parameter: a message or a list of them again, or a plain value."""
    if isinstance(value, Mapping) and "id" in value:
        return Message.from_json(value)
    if isinstance(value, Mapping) and "joined" in value:
        return Joined(*(_from_json(p) for p in value["joined"]))
    return value


def _(msgid: str, **params: object) -> Message:
    """Mark a message for translation (extracted by pybabel; see babel.cfg)."""
    return Message(msgid, params)


def known(text: str) -> Message:
    """Stored or fixed Chinese text shown in the reader's language when the catalog knows it
    (a status label, a system note); otherwise as it is."""
    return Message(text)


def bilingual(message: Message | str, between: str = "\n") -> str:
    """Chinese, then English: for mail and documents, which have no page language."""
    if not isinstance(message, Message):
        return str(message)
    english = message.in_locale("en")
    return message.source if english == message.source else f"{message.source}{between}{english}"


def stored(message: Message) -> str:
    """A message for a text column, put into words again whenever it is shown (from_stored)."""
    return json.dumps(message.as_json(), ensure_ascii=False)


def from_stored(text: str | None) -> Message | str:
    """What `stored` kept, as a Message; older rows that hold plain text, as they are."""
    if text and text.startswith('{"id"'):
        try:
            return Message.from_json(json.loads(text))
        except ValueError:
            pass
    return text or ""


def words(value: object) -> str:
    """Any message or plain text as the reader's words."""
    return str(value) if value is not None else ""


def source(value: object) -> str:
    """Any message or plain text as the record keeps it (Chinese)."""
    if isinstance(value, Message | Joined):
        return value.source
    return "" if value is None else str(value)
