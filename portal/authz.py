"""Authorization, declared once per route (issue 16, item 1): every view is `@public` or
`@requires(Action.…)`, and tests/test_authz_routes.py walks the URL map and fails on any
route that declares nothing. The role-level rule of each action is here; what depends on the
object (a curator's own department, an applicant's own application, a grant's holder) stays
with the service that owns the object, which refuses with PermissionError or a 404.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps

from flask import abort
from flask_login import current_user


class Action(enum.StrEnum):
    ACCOUNT = "account"  # anything a signed-in person does for themself: account, applications, grants, bids
    CURATE = "curate"    # a department's curator in the console (their own department's objects)
    BUREAU = "bureau"    # the big-data bureau's pages and decisions


RULES: dict[Action, Callable] = {
    Action.ACCOUNT: lambda user: True,
    Action.CURATE: lambda user: user.is_curator,
    Action.BUREAU: lambda user: user.is_bureau,
}

PUBLIC = "public"


def can(user, action: Action) -> bool:  # noqa: ANN001
    return bool(user.is_authenticated and RULES[action](user))


def public(view: Callable) -> Callable:
    """Anyone, signed in or not (what the view shows is still only what is public)."""
    view.authorization = PUBLIC
    return view


def requires(action: Action) -> Callable:
    """Signed in (else the login page, or 401 under /api/), and allowed the action (else 403)."""
    def declare(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):  # noqa: ANN202
            from .auth import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not RULES[action](current_user):
                abort(403)
            return view(*args, **kwargs)
        checked.authorization = action
        return checked
    return declare


def undeclared_routes(app) -> list[str]:  # noqa: ANN001
    """Endpoints whose view declares neither @public nor @requires (static files excepted)."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static"
                  and getattr(app.view_functions[rule.endpoint], "authorization", None) is None)
