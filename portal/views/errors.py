"""How the web answers when something says no — one place for each kind:

- any HTTP error outside /api/ (400, 401, 403, 404, 405, 413, 414, 429, 500, 503): a page in
  the portal's own layout and the reader's language, saying what happened and with a way on
  (a 429 says when to try again);

- a domain rule (portal.errors.DomainError and its subclasses): the request's transaction is
  rolled back, the message is shown, and the browser goes back to the page it came from
  (JSON with status 400 under /api/);
- authorization (portal.authz.NotAllowed): the login page when signed out, else 403, or 404
  when the object must not be known to exist;
- HTTP errors under /api/: JSON in CKAN's envelope, which API clients parse;
- a data file missing behind the portal's back: 503 with a message, and a note to the bureau.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlparse

from flask import Flask, current_app, flash, g, jsonify, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import Forbidden, HTTPException, InternalServerError, NotFound, ServiceUnavailable

from ..auth import login_manager
from ..authz import NotAllowed
from ..errors import DomainError
from ..messages import Message, _
from ..web import portal

log = logging.getLogger(__name__)


def back_url() -> str:
    if g.get("back"):
        return g.back
    referrer = urlparse(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("catalog.home")


def _rollback() -> None:
    session = g.get("db")
    if session is not None:
        session.rollback()


def _database_unavailable(exc: OperationalError) -> Any:
    """The database refused or dropped the connection (too many clients, a restart, a failover,
    SQLite busy past its timeout): the reader is asked to try again shortly — a 503 with
    Retry-After in the portal's own page, not a 500 — and the operator gets the reason in the log."""
    with contextlib.suppress(Exception):  # the connection may be gone: nothing to roll back on it
        _rollback()
    log.error("database unavailable on %s: %s", request.path, str(exc.orig or exc).splitlines()[0])
    response = current_app.make_response(current_app.handle_http_exception(ServiceUnavailable()))
    response.headers["Retry-After"] = "5"
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, _database_unavailable)

    @app.errorhandler(DomainError)
    def _refused(exc: DomainError) -> Any:
        _rollback()
        if request.path.startswith("/api/"):
            return jsonify(
                {
                    "success": False,
                    "error": {"__type": "Validation Error", "status": 400, "message": str(exc)},
                }
            ), 400
        flash(str(exc), "error")
        return redirect(back_url())

    @app.errorhandler(NotAllowed)
    def _not_allowed(exc: NotAllowed) -> Any:
        _rollback()
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return _http_error(NotFound() if exc.status == 404 else Forbidden())

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        """Under /api/ an error is JSON in CKAN's envelope (clients parse it); elsewhere a page."""
        if not request.path.startswith("/api/"):
            return _error_page(exc)
        body = {
            "success": False,
            "error": {"__type": exc.name, "status": exc.code, "message": str(exc.description or exc.name)},
        }
        kept = {
            k: v
            for k, v in exc.get_response().headers.items()
            if k in ("Allow", "WWW-Authenticate", "Retry-After")
        }
        retry = _retry_after(exc)
        if retry:
            kept["Retry-After"] = str(retry)
        return jsonify(body), exc.code, kept

    @app.errorhandler(InternalServerError)
    def _server_error(exc: InternalServerError) -> Any:
        _rollback()
        return _http_error(exc)

    @app.errorhandler(FileNotFoundError)
    def _file_gone(exc: FileNotFoundError) -> Any:
        """A data file missing behind the portal's back (a storage fault, a restore half done):
        a 503 with a message, never a 500, and logged for the operator."""
        file_missing(exc)
        return _http_error(ServiceUnavailable(_("数据文件暂时不可用，请稍后再试")))  # type: ignore[arg-type]  # lazy Message, escaped when shown


# What each error says, in the reader's language: a heading and what the reader can do.
ERROR_WORDS: dict[int, tuple[Message, Message]] = {
    400: (_("请求有误"), _("请求的内容无法处理，请检查后重试。")),
    401: (_("需要登录"), _("请先登录，或在请求中提供有效的 API 令牌。")),
    403: (_("无权访问"), _("您的账户没有访问此页面的权限。如需权限，请联系东昌府区大数据局。")),
    404: (_("页面不存在"), _("您要找的页面不存在，或数据已不再公开。可以搜索数据目录，或从首页开始。")),
    405: (_("不支持此操作"), _("此页面不接受这种请求方式。请从页面上的按钮或链接操作。")),
    413: (_("提交的内容过大"), _("上传或提交的内容超过了允许的大小。")),
    414: (_("网址过长"), _("网址太长，无法处理。请缩短搜索词或减少筛选条件。")),
    429: (_("操作过于频繁"), _("为保护账户和平台，短时间内的请求次数已达上限。")),
    500: (_("服务器出错"), _("平台处理请求时出错，错误已记录。请稍后再试。")),
    503: (_("暂时无法提供"), _("服务暂时不可用，请稍后再试。")),
}


def _retry_after(exc: HTTPException) -> int | None:
    """Seconds until a rate limit lets the reader try again (Flask-Limiter's window)."""
    if exc.code != 429:
        return None
    import time

    from ..limits import limiter

    current = getattr(limiter, "current_limit", None)
    if current is not None and getattr(current, "reset_at", None):
        return max(1, int(current.reset_at - time.time()))  # as Flask-Limiter's own Retry-After
    return 60


def _error_page(exc: HTTPException) -> Any:
    """An error in the portal's layout: what happened, in the reader's words, and a way on."""
    import datetime as dt

    from flask import render_template

    from .. import clock

    code = exc.code or 500
    heading, explanation = ERROR_WORDS.get(code, (_("出错了"), _("请求未能完成。")))
    if isinstance(exc.description, Message):  # the portal's own words for this case
        explanation = exc.description
    ways = [(url_for("catalog.home"), _("返回首页")), (url_for("catalog.search"), _("搜索数据目录"))]
    if code in (401, 403) and not current_user.is_authenticated:
        ways.insert(0, (url_for("accounts.login", next=request.full_path), _("登录")))
    referrer = urlparse(request.referrer or "")
    if referrer.netloc == request.host and referrer.path != request.path:
        ways.insert(0, (referrer.path + (f"?{referrer.query}" if referrer.query else ""), _("返回上一页")))
    retry = _retry_after(exc)
    retry_at = (clock.now() + dt.timedelta(seconds=retry)).strftime("%H:%M:%S") if retry else None
    headers = {k: v for k, v in exc.get_response().headers.items() if k in ("Allow", "WWW-Authenticate")}
    if retry:
        headers["Retry-After"] = str(retry)
    html = render_template(
        "error.html",
        code=code,
        heading=heading,
        explanation=explanation,
        ways=ways,
        retry_after=retry,
        retry_at=retry_at,
    )
    return html, code, headers


def file_missing(exc: FileNotFoundError) -> None:
    """Log a data file missing behind the portal's back and tell the bureau (for a page that
    goes on without it, like a dataset page whose preview cannot be read)."""
    filename = str(exc.filename or exc)
    log.error("data file missing: %s (%s)", filename, request.path)
    _tell_the_bureau_a_file_is_missing(filename, request.path)


def _tell_the_bureau_a_file_is_missing(filename: str, path: str) -> None:
    """A note in the bureau's outbox, once a day per file: someone must restore it."""
    import datetime as dt

    from sqlalchemy import select

    from ..models import OutboxMessage, User

    subject = f"数据文件缺失，请恢复：{'/'.join(filename.split('/')[-3:])}"[:300]
    try:
        with portal().sessions.begin() as s:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            if s.scalar(
                select(OutboxMessage.id).where(
                    OutboxMessage.subject == subject, OutboxMessage.created_at >= since
                )
            ):
                return
            for user in s.scalars(select(User).where(User.is_bureau.is_(True))):
                s.add(
                    OutboxMessage(
                        to=user.email,
                        subject=subject,
                        body=(
                            f"门户读取数据文件时发现文件缺失：\n{filename}\n请求：{path}\n请从备份恢复（portal restore）或重新采集该数据集。\n"
                        ),
                    )
                )
    except Exception:  # the note is a courtesy: the reader still gets the 503
        log.exception("could not write the missing-file note")
