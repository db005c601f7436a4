"""Simplified Chinese by default, English at a click (Flask-Babel); and the large-text 关怀版.

Messages are written in Chinese — in the templates with Flask-Babel's `_()`, in Python with
portal.messages' `_()` — and translated in portal/translations/en/LC_MESSAGES/messages.po.
Each request sets the reader's language for both (portal.messages.set_locale), so a message a
domain service raises is shown in the language of the page. Catalog text (titles, summaries,
department names) is never translated: it stays as the department wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from flask import Blueprint, Flask, Response, g, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel
from markupsafe import Markup

from . import messages
from .authz import public

LANGUAGES = {"zh": "中文", "en": "English"}
COOKIE_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    lang = request.args.get("lang") or request.cookies.get("lang")
    return lang if lang in LANGUAGES else "zh"


def init_app(app: Flask) -> None:
    from pathlib import Path

    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    Babel(app, locale_selector=select_locale)
    # Templates look their words up in the same compiled catalog as Python code, in the
    # request's language (set below): Flask-Babel's own callables find the request context,
    # the locale and the domain again on every `_()`, ~150 times on a dataset page.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext=messages.gettext,
        ngettext=messages.ngettext,
        newstyle=True,
        pgettext=messages.pgettext,
        npgettext=messages.npgettext,
    )

    @app.before_request
    def _view_settings() -> None:
        g.lang = select_locale()
        g.care = request.cookies.get("care") == "1"
        g.locale_token = messages.set_locale(g.lang)

    @app.after_request
    def _keep_a_chosen_language(response: Response) -> Response:
        """A link with ?lang=en (shared, or typed) chooses the language for the pages after it
        too, as the header's switch does: the next click must not fall back to Chinese."""
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get("lang") != asked:
            response.set_cookie("lang", asked, max_age=COOKIE_AGE, samesite="Lax", httponly=True)
        return response

    @app.context_processor
    def _punctuation() -> dict:
        """Punctuation in the page's language: the colon after a label (「用途：」, "Purpose: "),
        the separators of a list (「甲；乙」「甲、乙」, "a; b", "a, b") and words in brackets
        (「（第 1 轮）」, " (round 1)")."""
        return PUNCTUATION["en" if g.get("lang") == "en" else "zh"]

    @app.teardown_request
    def _forget_locale(_exc: BaseException | None) -> None:
        token = g.pop("locale_token", None)
        if token is not None:
            messages.reset_locale(token)

    app.register_blueprint(bp)


def _brackets(opening: str, closing: str) -> Callable[[object], Markup]:
    def paren(words: object) -> Markup:
        return Markup(opening + "%s" + closing) % (words,)  # escapes plain text, keeps markup

    return paren


PUNCTUATION: dict[str, dict[str, object]] = {
    "zh": {"colon": "：", "semicolon": "；", "enum": "、", "paren": _brackets("（", "）")},
    "en": {"colon": ": ", "semicolon": "; ", "enum": ", ", "paren": _brackets(" (", ")")},
}


def _back() -> str:
    """Return to the page the user came from, never to another site."""
    target = request.args.get("next") or request.referrer or "/"
    parsed = urlparse(target)
    if parsed.netloc and parsed.netloc != request.host:
        return "/"
    return parsed.path + (f"?{parsed.query}" if parsed.query else "") or "/"


@bp.get("/lang/<code>")
@public
def set_language(code: str) -> ResponseReturnValue:
    response = redirect(_back())
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=COOKIE_AGE, samesite="Lax", httponly=True)
    return response


@bp.get("/care/<state>")
@public
def set_care(state: str) -> ResponseReturnValue:
    """关怀版: larger text and stronger contrast, remembered in a cookie."""
    response = redirect(_back())
    response.set_cookie(
        "care", "1" if state == "on" else "0", max_age=COOKIE_AGE, samesite="Lax", httponly=True
    )
    return response
