"""The web layer: one module per area, the bureau's area (admin/) one blueprint, above the
domain services. Every route declares its authorization (portal.authz); every form is
CSRF-checked once, by CSRFProtect, before any view runs; a domain error is answered by one
handler (errors.py)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    from ..web import (
        csrf_token,
        form_nonce,
        read_no_body_before_the_route_allows_it,
        refuse_a_form_posted_twice,
    )
    from . import (
        accounts,
        admin,
        api,
        api_usage,
        catalog,
        console,
        content,
        data_api,
        dcat,
        downloads,
        errors,
        feedback,
        follows,
        identity,
        licensing,
        public_stats,
        sandbox,
        tenders,
    )

    app.before_request(read_no_body_before_the_route_allows_it)  # ahead of every hook that reads a body
    csrf = CSRFProtect(app)
    app.before_request(refuse_a_form_posted_twice)
    app.jinja_env.globals["form_nonce"] = form_nonce
    app.jinja_env.globals["csrf_token"] = csrf_token  # Flask-WTF's, or its mark in a reader's kept part
    csrf.exempt(api.bp)  # the read-only CKAN API (GET, or POST with a JSON body as ckanapi sends) as a whole
    csrf.exempt(sandbox.api_submit)  # a token's call only: it refuses a session cookie (no form, no CSRF)
    errors.init_app(app)
    api_usage.init_app(app)  # API calls counted, tokens' daily quotas
    for blueprint in (
        accounts.bp,
        identity.bp,
        admin.bp,
        licensing.bp,
        tenders.bp,
        console.bp,
        feedback.bp,
        content.bp,
        follows.bp,
        dcat.bp,
        catalog.bp,
        downloads.bp,
        api.bp,
        data_api.bp,
        data_api.docs_bp,
        public_stats.bp,
        sandbox.bp,
    ):
        app.register_blueprint(blueprint)
    # CKAN answers under /api/action as well as /api/3/action; ckanapi uses the former.
    app.register_blueprint(api.bp, url_prefix="/api/action", name="api_unversioned")
