"""create_app(config=None): settings, database, storage, blueprints."""
from __future__ import annotations

import hashlib

from flask import Flask, g, jsonify, request

from . import PROJECT_ROOT
from .config import Settings
from .db import make_engine, make_sessionmaker, upgrade
from .storage import open_storage


class PortalContext:
    """What every part of a running portal shares; kept in app.extensions['portal']."""

    def __init__(self, settings: Settings, *, migrate: bool = True):
        import licenses.follow  # noqa: F401  (grants follow their datasets in every process that changes them)

        settings.ensure_dirs()
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        if migrate:
            upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.storage = open_storage(settings)
        self._search = None
        # Portals sharing one Redis keep apart: the page cache's namespace is their database's.
        self.cache_namespace = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
        self.redis = None
        if settings.redis_url and settings.page_cache_seconds > 0:
            import redis

            from .page_cache import invalidate_on_commit

            self.redis = redis.Redis.from_url(settings.redis_url)
            invalidate_on_commit(self.sessions, self.redis, self.cache_namespace)

    @property
    def search(self):  # noqa: ANN201
        """The search backend the settings name (Whoosh by default), opened on first use."""
        if self._search is None:
            from .search import open_backend
            from .search.sync import popularity

            self._search = open_backend(self.settings, self.engine, popularity=popularity(self.sessions))
        return self._search

    def harvester(self):  # noqa: ANN201
        """A harvester that keeps this instance's search index in step."""
        from harvest.run import Harvester

        from .search.sync import sync

        return Harvester(self.sessions, self.storage, row_group_bytes=self.settings.parquet_row_group_bytes,
                         timeout=self.settings.http_timeout, sync_index=lambda: sync(self.sessions, self.search))


def _has_nul(value) -> bool:  # noqa: ANN001
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def create_app(config: dict | None = None) -> Flask:
    settings = Settings.load(config)
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"), instance_path=str(settings.instance_path))
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
    ctx = PortalContext(settings)
    app.extensions["portal"] = ctx

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    from flask_wtf.csrf import CSRFProtect

    from . import auth, i18n, limits
    from .views import (
        accounts,
        admin,
        api,
        catalog,
        console,
        data_api,
        dcat,
        downloads,
        feedback,
        licensing,
        tenders,
    )

    csrf = CSRFProtect(app)  # every form; the read-only CKAN API (GET, or POST by CKAN clients) is exempt
    for view in (api.package_search, api.package_show, api.help_show, api.status_show, api.package_list,
                 api.current_package_list_with_resources, api.organization_list, api.organization_show,
                 api.group_list, api.tag_list, api.resource_show):
        csrf.exempt(view)
    limits.init_app(app, settings.redis_url)
    auth.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(licensing.bp)
    app.register_blueprint(tenders.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(dcat.bp)
    app.register_blueprint(catalog.bp)
    app.register_blueprint(downloads.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(data_api.bp)
    app.register_blueprint(data_api.docs_bp)
    # CKAN answers under /api/action as well as /api/3/action; ckanapi uses the former.
    app.register_blueprint(api.bp, url_prefix="/api/action", name="api_unversioned")

    from werkzeug.exceptions import BadRequest, HTTPException

    @app.before_request
    def _refuse_nul_characters() -> None:
        """A NUL character is never meaningful input, and PostgreSQL refuses it in text (a 500
        the attack suite found): refuse it up front, anywhere in the request."""
        values = [request.path, *request.args.keys(), *request.args.values()]
        if request.method in ("POST", "PUT", "PATCH"):
            values += [*request.form.keys(), *request.form.values()]
            if request.is_json:
                values.append(request.get_json(silent=True))
        if any(_has_nul(v) for v in values):
            raise BadRequest("请求中含有空字符（NUL） / the request contains a NUL character")

    @app.before_request
    def _ids_the_database_can_hold() -> None:
        """/download/99999999999999999999.csv: no row has such an id (and the database would
        raise on it): not found, before any query."""
        from werkzeug.exceptions import NotFound

        if any(isinstance(v, int) and not -2**31 <= v < 2**31 for v in (request.view_args or {}).values()):
            raise NotFound()

    @app.errorhandler(FileNotFoundError)
    def _file_gone(exc: FileNotFoundError):  # noqa: ANN202
        """A data file missing behind the portal's back (a storage fault, a restore half done):
        a 503 with a message, never a 500, and logged for the operator."""
        from werkzeug.exceptions import ServiceUnavailable

        app.logger.error("data file missing: %s (%s)", exc.filename or exc, request.path)
        _tell_the_bureau_a_file_is_missing(ctx, str(exc.filename or exc), request.path)
        return _api_errors_as_json(ServiceUnavailable("数据文件暂时不可用，请稍后再试 / the data file is "
                                                      "temporarily unavailable"))

    @app.errorhandler(HTTPException)
    def _api_errors_as_json(exc: HTTPException):  # noqa: ANN202
        """Under /api/ an error is JSON in CKAN's envelope (clients parse it); elsewhere a page."""
        if not request.path.startswith("/api/"):
            return exc
        body = {"success": False, "error": {"__type": exc.name, "status": exc.code,
                                            "message": exc.description or exc.name}}
        kept = {k: v for k, v in exc.get_response().headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")}
        return jsonify(body), exc.code, kept

    if ctx.redis is not None:
        from .page_cache import PageCache

        app.wsgi_app = PageCache(app.wsgi_app, ctx.redis, ctx.cache_namespace, settings.page_cache_seconds)
    if settings.proxies:  # outermost: the page cache sees the client's host and scheme
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    from . import clock

    app.jinja_env.filters["local"] = clock.local  # stored instants shown in the portal's zone
    app.jinja_env.globals.update(OPEN_CLASS_LABELS={"unconditional": "无条件开放", "conditional": "有条件开放",
                                                    "not_open": "不予开放"})
    return app


def _tell_the_bureau_a_file_is_missing(ctx: PortalContext, filename: str, path: str) -> None:
    """A note in the bureau's outbox, once a day per file: someone must restore it."""
    import datetime as dt

    from sqlalchemy import select

    from .models import OutboxMessage, User

    subject = f"数据文件缺失，请恢复：{'/'.join(filename.split('/')[-3:])}"[:300]
    try:
        with ctx.sessions.begin() as s:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            if s.scalar(select(OutboxMessage.id).where(OutboxMessage.subject == subject, OutboxMessage.created_at >= since)):
                return
            for user in s.scalars(select(User).where(User.is_bureau.is_(True))):
                s.add(OutboxMessage(to=user.email, subject=subject, body=(
                    f"门户读取数据文件时发现文件缺失：\n{filename}\n请求：{path}\n请从备份恢复（portal restore）或重新采集该数据集。\n")))
    except Exception:  # the note is a courtesy: the reader still gets the 503
        import logging

        logging.getLogger(__name__).exception("could not write the missing-file note")


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
