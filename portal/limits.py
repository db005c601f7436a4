"""Rate limits (Flask-Limiter): in memory by default, in Redis when PORTAL_REDIS_URL is set
(needed once several worker processes serve the portal)."""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def client_key() -> str:
    """Whom a limit counts: the API token when a valid one is presented (its holder's own
    allowance, wherever the calls come from), else the client's address."""
    if request.headers.get("Authorization"):
        from flask_login import current_user

        current_user._get_current_object()  # loads the token's user (a bad token is a 401)
        if token_id := g.get("api_token_id"):
            return f"token:{token_id}"
    return get_remote_address()


limiter = Limiter(key_func=client_key, default_limits=[], headers_enabled=True)


def init_app(app: Flask, redis_url: str = "") -> None:
    app.config["RATELIMIT_STORAGE_URI"] = redis_url or "memory://"
    app.config.setdefault("RATELIMIT_ENABLED", True)
    if redis_url:  # Redis away for a moment: each process limits on its own, no request fails
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 2, "socket_connect_timeout": 2})
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)

    # Registered before Flask-Limiter's own: after_request functions run last-registered first.
    @app.after_request
    def _retry_after_only_when_refused(response: Response) -> Response:
        """Flask-Limiter puts Retry-After on every answer of a limited route; it means "come back
        later" (RFC 9110) and belongs only to a refusal, or to a 202 whose file is being made
        (a bundle, a licensed ZIP). The X-RateLimit-* counters stay."""
        if response.status_code not in (202, 429, 503):
            response.headers.pop("Retry-After", None)
        return response

    limiter.init_app(app)
