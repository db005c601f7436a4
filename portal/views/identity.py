"""Unified sign-in (OpenID Connect with Authlib's Flask client): sign in through the province's
identity platform, link an account to it, unlink it. Off (every route 404, no button) while
PORTAL_OIDC_ISSUER is empty.

The flow is the authorization code flow with PKCE (S256), state and nonce, all kept in the
signed session cookie by Authlib. At the callback Authlib checks the state, exchanges the code
(with the verifier and the client secret) and verifies the ID token: its signature by the
provider's JWKS, its issuer (the configured one, which discovery must also name), audience (our
client id), expiry and nonce. Only then are its claims handed to portal/identity.py. Whatever
goes wrong (consent refused, a state that is not ours, a bad token, the provider down) ends on
the portal's own page with a message, and in the audit trail as a failed login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user
from joserfc.errors import JoseError

from .. import identity
from ..audit import record
from ..authz import Action, public, requires
from ..identity import IdentityError
from ..limits import limiter
from ..messages import _
from ..web import back, db, done, portal, tell

if TYPE_CHECKING:
    from authlib.integrations.flask_client.apps import FlaskOAuth2App

    from ..models import LinkedIdentity

log = logging.getLogger(__name__)
bp = Blueprint("identity", __name__)

CLIENT = "unified"
LINKING = "oidc_linking"  # the session key: the account that asked to link (absent: a sign-in)
PROVIDER_FAILURES = (requests.RequestException, ValueError, KeyError, RuntimeError)


class ProviderError(Exception):
    """The provider is unreachable or does not describe itself as the configured issuer."""


def _client() -> FlaskOAuth2App:
    """This app's OAuth client, made at first use from the settings; 404 while the feature is off."""
    settings = portal().settings
    if not settings.oidc_issuer:
        abort(404)
    client = current_app.extensions.get("portal_oidc")
    if client is None:
        oauth = OAuth(current_app._get_current_object())  # type: ignore[attr-defined]  # werkzeug's LocalProxy
        client = oauth.register(
            CLIENT,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": "openid profile email",
                "code_challenge_method": "S256",
                "default_timeout": 10,
            },
        )
        current_app.extensions["portal_oidc"] = client
    return client


def _metadata(client: FlaskOAuth2App) -> dict:
    try:
        metadata = client.load_server_metadata()
    except PROVIDER_FAILURES as exc:
        raise ProviderError(str(exc)) from exc
    if metadata.get("issuer") != portal().settings.oidc_issuer:  # OpenID Connect Discovery §4.3
        raise ProviderError(f"discovery names issuer {metadata.get('issuer')!r}, not the configured one")
    return metadata


def _unreachable(exc: Exception, to: str) -> ResponseReturnValue:
    log.warning("unified sign-in: provider unavailable: %s", exc)
    tell(_("暂时无法连接统一身份认证平台，请稍后再试，或用邮箱和密码登录。"), "error")
    return redirect(to)


def _to_provider(client: FlaskOAuth2App, back_to: str) -> ResponseReturnValue:
    try:
        _metadata(client)
        return client.authorize_redirect(url_for("identity.callback", _external=True))
    except (ProviderError, *PROVIDER_FAILURES) as exc:
        return _unreachable(exc, back_to)


# ---------------------------------------------------------------------- the routes


@bp.post("/login/oidc")
@public
@limiter.limit("10 per minute")
def login() -> ResponseReturnValue:
    """The login page's button: off to the provider."""
    client = _client()
    session.pop(LINKING, None)
    return _to_provider(client, url_for("accounts.login"))


@bp.post("/account/identity/link")
@requires(Action.ACCOUNT)
def link() -> ResponseReturnValue:
    """The account page's button: off to the provider, to come back linked."""
    client = _client()
    session[LINKING] = current_user.id
    return _to_provider(client, url_for("accounts.account"))


@bp.post("/account/identity/<int:identity_id>/unlink")
@requires(Action.ACCOUNT)
def unlink(identity_id: int) -> ResponseReturnValue:
    _client()
    back(url_for("accounts.account"))
    try:
        identity.unlink(db(), current_user, identity_id, ip=request.remote_addr)
    except LookupError:
        abort(404)
    return done(_("已解除关联统一身份认证。"))


@bp.get("/login/oidc/callback")
@public
# Failed callbacks count against the address, as failed password logins do; successful ones do not.
@limiter.limit("10 per minute", deduct_when=lambda response: bool(g.get("oidc_failed")))
def callback() -> ResponseReturnValue:
    client = _client()
    linking = session.pop(LINKING, None)
    to = url_for("accounts.account") if linking else url_for("accounts.login")
    try:
        who = _verified(client)
    except ProviderError as exc:
        g.oidc_failed = True
        return _unreachable(exc, to)
    except IdentityError as exc:
        return _refused(exc, to, bool(linking))
    s = db()
    try:
        if linking:
            if not current_user.is_authenticated or current_user.id != linking:
                raise IdentityError(_("关联未完成：请先登录本平台账户，再在“我的账户”页关联统一身份认证。"))
            identity.link(s, current_user, who, ip=request.remote_addr)
            message = _("已关联统一身份认证（%(name)s）。", name=portal().settings.oidc_name)
        else:
            user, made = identity.sign_in(s, who, ip=request.remote_addr)
            message = _("已通过统一身份认证创建账户并登录。") if made else _("已通过统一身份认证登录。")
    except IdentityError as exc:
        return _refused(exc, to, bool(linking))
    s.commit()
    if not linking:
        login_user(user)
    tell(message)
    return redirect(url_for("accounts.account"))


def _refused(exc: IdentityError, to: str, linking: bool) -> ResponseReturnValue:
    """The person is told why, on the portal's own page; the attempt stays in the audit trail."""
    g.oidc_failed = True
    s = db()
    s.rollback()
    reason = getattr(exc.message, "source", str(exc.message))
    record(s, "login_failed", ip=request.remote_addr, via="oidc_link" if linking else "oidc", reason=reason)
    s.commit()
    tell(exc, "error")
    return redirect(to)


def _verified(client: FlaskOAuth2App) -> identity.Verified:
    """The person, as the provider's verified ID token (and its userinfo) says."""
    settings = portal().settings
    error = request.args.get("error")
    if error:
        raise IdentityError(
            _("你在统一身份认证平台取消或拒绝了授权，未登录。")
            if error == "access_denied"
            else _("统一身份认证平台未完成认证，请重试。")
        )
    _metadata(client)
    try:
        token = client.authorize_access_token(
            claims_options={"iss": {"essential": True, "value": settings.oidc_issuer}}
        )
    except MismatchingStateError as exc:
        raise IdentityError(_("登录请求已失效或不是由本平台发起，请重新登录。")) from exc
    except (OAuthError, AuthlibBaseError, JoseError) as exc:
        log.info("unified sign-in refused: %r", exc)
        raise IdentityError(
            _("统一身份认证返回的身份凭证未通过校验（签名、签发方、受众、有效期或一次性随机数），未登录。")
        ) from exc
    except PROVIDER_FAILURES as exc:
        raise ProviderError(str(exc)) from exc
    claims: dict[str, Any] = dict(token.get("userinfo") or {})
    if not claims:  # no ID token: nothing was verified
        raise IdentityError(_("统一身份认证平台没有返回身份凭证，未登录。"))
    claims.update(_userinfo(client, token, claims["sub"]))
    return identity.verified_from(settings.oidc_issuer, claims, settings.oidc_level_claim)


def _userinfo(client: FlaskOAuth2App, token: dict, subject: str) -> dict:
    """The userinfo endpoint's word on the name, e-mail and level, when the provider has one and
    it speaks of the same person (OpenID Connect Core §5.3.2)."""
    if not _metadata(client).get("userinfo_endpoint"):
        return {}
    try:
        info = dict(client.userinfo(token=token))
    except (AuthlibBaseError, *PROVIDER_FAILURES) as exc:
        raise ProviderError(str(exc)) from exc
    if info.get("sub") != subject:
        raise IdentityError(_("统一身份认证返回的身份信息不一致，未登录。"))
    kept = (
        "name",
        "preferred_username",
        "email",
        "email_verified",
        portal().settings.oidc_level_claim,
        "acr",
    )
    return {k: info[k] for k in kept if k in info}


# ---------------------------------------------------------------------- the pages' sections


@dataclass
class UnifiedSignin:
    """What templates/accounts/_identity.html and _identity_login.html show."""

    name: str

    def identities(self) -> list[LinkedIdentity]:
        return identity.identities_of(db(), current_user) if current_user.is_authenticated else []

    def has_password(self) -> bool:
        return current_user.is_authenticated and identity.has_password(current_user)

    def placeholder_email(self) -> bool:
        return current_user.is_authenticated and identity.has_placeholder_email(current_user)


def unified_signin() -> UnifiedSignin | None:
    """None while unified sign-in is off."""
    settings = portal().settings
    return UnifiedSignin(settings.oidc_name) if settings.oidc_issuer else None


@bp.app_context_processor
def _sections() -> dict:
    return {"unified_signin": unified_signin}
