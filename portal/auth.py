"""Who is asking, and may they: Flask-Login sessions, API tokens, role checks.

Authorization is decided here on the server for every request and object; templates only
hide what the server would refuse anyway.
"""

from __future__ import annotations

from flask import Flask, Request, Response, abort, g
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager

from . import accounts
from .messages import _
from .models import User

login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = _("请先登录")
login_manager.localize_callback = str  # the message in the reader's language, flashed as text
login_manager.session_protection = "strong"


class _NoCookieForTokens(SecureCookieSessionInterface):
    """A request signed in by an API token gets no session cookie: the token is its identity,
    and a cookie written while rendering its page (a CSRF token, a flash) would carry one
    person's session into the next request of a client that holds several tokens."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if g.get("signed_in_by_token"):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.session_interface = _NoCookieForTokens()


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """Session ids are 'user:version'; a password reset bumps the version, ending old sessions."""
    from .web import db

    try:
        user_id, version = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    user = db().get(User, user_id)
    return user if user is not None and user.session_version == version else None


def request_token(req: Request) -> None:
    """Check a Bearer token whatever else the request carries: with a session cookie Flask-Login
    would not ask the request loader, but an API call's quota and limits count its token."""
    if "api_token_id" not in g and req.headers.get("Authorization"):
        _token_user(req)


@login_manager.request_loader
def _token_user(req: Request) -> User | None:
    """`Authorization: Bearer dcf_...` (scripts and API clients)."""
    from .web import db

    header = req.headers.get("Authorization", "")
    scheme, _space, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token:
        return None
    session = db()
    row = accounts.valid_token(session, token.strip(), ip=req.remote_addr)
    session.commit()  # last use and the audit event, whatever the request does next
    if row is None:
        abort(401, description=_("令牌无效、已过期或已撤销"))
    g.signed_in_by_token = True
    # rate limits and quotas count the token (portal/limits.py, portal/views/api_usage.py)
    g.api_token_id, g.api_token_quota = row.id, row.daily_quota
    return row.user
