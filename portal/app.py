"""create_app(config=None): settings, database, storage, blueprints."""

from __future__ import annotations

import logging
import re

from flask import Flask, g, request
from werkzeug.exceptions import BadRequest, NotFound, RequestURITooLarge

from . import PROJECT_ROOT
from .config import Settings
from .context import PortalContext
from .messages import _


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


MAX_URL_LENGTH = 2048  # characters of path and query string


def create_app(config: dict | None = None) -> Flask:
    from . import logs

    logs.configure()
    settings = Settings.load(config)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.load_secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.https,
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead: a form left open for hours still posts
        MAX_CONTENT_LENGTH=50 * 1024 * 1024,
    )
    app.config.update({k: v for k, v in (config or {}).items() if k.isupper()})
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # JSON answers in readable UTF-8, as the data API's
    ctx = PortalContext(settings)
    app.extensions["portal"] = ctx

    app.teardown_appcontext(_close_session)

    from . import auth, i18n, limits, views

    limits.init_app(app, settings.redis_url)
    auth.init_app(app)
    i18n.init_app(app)
    if settings.https:  # before the CSRF check, which would otherwise be the first to fail
        app.before_request(_https_only)
    views.register(app)
    from .catalog import rows

    rows.CHUNKS.resize(settings.data_api_cache_bytes)  # one cache per process, sized by the settings
    app.before_request(_refuse_nul_characters)
    app.before_request(_urls_of_a_sensible_length)
    app.before_request(_ids_the_database_can_hold)

    if ctx.redis is not None:
        from .page_cache import PageCache

        app.wsgi_app = PageCache(  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
            app.wsgi_app, ctx.redis, ctx.cache_namespace, settings.page_cache_seconds
        )
    if settings.proxies:  # outermost: the page cache sees the client's host and scheme
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]  # likewise
    from . import clock
    from .web import KeptForTheReader, KeptInTemplates

    app.jinja_env.add_extension(KeptInTemplates)  # {% kept %}: parts every page repeats, rendered once
    app.jinja_env.add_extension(KeptForTheReader)  # {% mine %}: a signed-in reader's own, kept for them
    app.jinja_env.filters["local"] = clock.local  # stored instants shown in the portal's zone
    app.jinja_env.filters["without_secret_links"] = without_secret_links
    from .catalog.bundle import field_type
    from .labels import label, vocabulary
    from .messages import from_stored

    # the words for a stored code, and for a controlled catalog value (portal/labels.py); a
    # column's type in words (label('data_type', field_type(arrow type))); a note kept with
    # messages.stored(), in the reader's language
    from .open_licence import CURRENT as CURRENT_OPEN_LICENCE
    from .web import unread_notices

    app.jinja_env.globals.update(
        label=label,
        vocabulary=vocabulary,
        field_type=field_type,
        from_stored=from_stored,
        unread_notices=unread_notices,
        open_licence=CURRENT_OPEN_LICENCE,
    )
    return app


SECRET_LINK = re.compile(r"https?://\S*?/(?:reset|verify|download)/[A-Za-z0-9._~-]{16,}\S*")


def without_secret_links(body: str) -> str:
    """A mail shown on the notices page without the links that act by themselves (a password
    reset, an e-mail verification, a signed download): whoever holds a session must not be able
    to take the account or the data from the page; the links stay in the mail."""
    from .messages import _

    return SECRET_LINK.sub(str(_("（此链接只在邮件中提供）")), body)


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def _refuse_nul_characters() -> None:
    """A NUL character is never meaningful input, and PostgreSQL refuses it in text (a 500
    the attack suite found): refuse it up front, anywhere in the request."""
    values: list[object] = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH"):
        values += [*request.form.keys(), *request.form.values()]
        if request.is_json:
            values.append(request.get_json(silent=True))
    if any(_has_nul(v) for v in values):
        raise BadRequest(_("请求中含有空字符（NUL）"))  # type: ignore[arg-type]  # a lazy Message: Werkzeug escapes it when shown


def _https_only() -> None:
    """With PORTAL_HTTPS on, cookies are Secure: a browser on plain http never sends them back,
    and every form would fail its CSRF check. Such a request gets a page that says what is
    wrong and links to the https address (nginx normally redirects http before it reaches us;
    this is the half-set-up case: PORTAL_HTTPS=1 before TLS, or a proxy that does not send
    X-Forwarded-Proto with PORTAL_PROXIES unset)."""
    if request.is_secure:
        return
    https_url = "https://" + request.host + request.full_path.rstrip("?")
    # The reader is told where to go; the operator's fix (settings) goes to the log, not to the public.
    logging.getLogger("portal").warning(
        "a request reached the portal over plain http while PORTAL_HTTPS is on (%s): set up TLS in front of it, "
        "and make sure the proxy sends X-Forwarded-Proto and PORTAL_PROXIES is set (docs/deploy.md, HTTPS)",
        request.path,
    )
    raise BadRequest(_("本平台只通过 HTTPS 访问，请改用 %(url)s 。", url=https_url))  # type: ignore[arg-type]  # a lazy Message: Werkzeug escapes it when shown


def _urls_of_a_sensible_length() -> None:
    """A search or filter longer than any person types is refused with the portal's own 414
    page (gunicorn and nginx refuse far longer request lines with theirs). The API keeps the
    servers' limits: a client may send long filter lists."""
    if len(request.full_path) > MAX_URL_LENGTH and not request.path.startswith("/api/"):
        raise RequestURITooLarge()


def _ids_the_database_can_hold() -> None:
    """/download/99999999999999999999.csv: no row has such an id (and the database would
    raise on it): not found, before any query."""
    if any(isinstance(v, int) and not -(2**31) <= v < 2**31 for v in (request.view_args or {}).values()):
        raise NotFound()


def warm_up(app: Flask) -> None:
    """Pay a new worker's first-request costs before it takes requests: loading the Chinese
    dictionary (rjieba, ~1 s), opening the search index and compiling the main templates.
    Without it, the first requests each worker answers after a (re)start waited seconds
    (benchmarks/load.py saw a p99 of 2.7 s in the first run after starting, 0.1 s after)."""
    from .search import SearchQuery

    with app.app_context():
        app.extensions["portal"].search.search(SearchQuery(q="东昌府区 数据", rows=1))
        for name in ("home.html", "search.html", "dataset.html"):
            app.jinja_env.get_template(name)
