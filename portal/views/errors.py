"""How the web answers when something says no — one place for each kind:

- a domain rule (portal.errors.DomainError and its subclasses): the request's transaction is
  rolled back, the message is shown, and the browser goes back to the page it came from
  (JSON with status 400 under /api/);
- authorization (portal.authz.NotAllowed): the login page when signed out, else 403, or 404
  when the object must not be known to exist;
- HTTP errors under /api/: JSON in CKAN's envelope, which API clients parse;
- a data file missing behind the portal's back: 503 with a message, and a note to the bureau.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from flask import Flask, flash, g, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.exceptions import Forbidden, HTTPException, NotFound, ServiceUnavailable

from ..auth import login_manager
from ..authz import NotAllowed
from ..errors import DomainError
from ..messages import _
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


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _refused(exc: DomainError) -> Any:
        _rollback()
        if request.path.startswith("/api/"):
            return jsonify({"success": False, "error": {"__type": "Validation Error", "status": 400,
                                                        "message": str(exc)}}), 400
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
            return exc
        body = {"success": False, "error": {"__type": exc.name, "status": exc.code,
                                            "message": str(exc.description or exc.name)}}
        kept = {k: v for k, v in exc.get_response().headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")}
        return jsonify(body), exc.code, kept

    @app.errorhandler(FileNotFoundError)
    def _file_gone(exc: FileNotFoundError) -> Any:
        """A data file missing behind the portal's back (a storage fault, a restore half done):
        a 503 with a message, never a 500, and logged for the operator."""
        filename = str(exc.filename or exc)
        log.error("data file missing: %s (%s)", filename, request.path)
        _tell_the_bureau_a_file_is_missing(filename, request.path)
        return _http_error(ServiceUnavailable(_("数据文件暂时不可用，请稍后再试")))  # type: ignore[arg-type]  # lazy Message, escaped when shown


def _tell_the_bureau_a_file_is_missing(filename: str, path: str) -> None:
    """A note in the bureau's outbox, once a day per file: someone must restore it."""
    import datetime as dt

    from sqlalchemy import select

    from ..models import OutboxMessage, User

    subject = f"数据文件缺失，请恢复：{'/'.join(filename.split('/')[-3:])}"[:300]
    try:
        with portal().sessions.begin() as s:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            if s.scalar(select(OutboxMessage.id).where(OutboxMessage.subject == subject, OutboxMessage.created_at >= since)):
                return
            for user in s.scalars(select(User).where(User.is_bureau.is_(True))):
                s.add(OutboxMessage(to=user.email, subject=subject, body=(
                    f"门户读取数据文件时发现文件缺失：\n{filename}\n请求：{path}\n请从备份恢复（portal restore）或重新采集该数据集。\n")))
    except Exception:  # the note is a courtesy: the reader still gets the 503
        log.exception("could not write the missing-file note")
