"""Authorization, declared once: the action table.

Every action a person can take has one `can_<action>(user, obj=None)` rule here. Routes
declare theirs (`@requires(Action.X)`, or `@public`); services call `require(user, Action.X,
obj)` on the object they are about to change. With no object a rule answers the role-level
question ("could this person ever do it?"), which is what a route checks before any query;
with the object it answers for that object. tests/test_authz_routes.py walks the URL map and
fails on any route that declares nothing, and drives every route as every role from this table.

One denial, one status (NotAllowed, turned into a page by portal/views/errors.py): signed
out → the login page (401 under /api/); refused by the role → 403; refused on an object the
person may not even know exists (another applicant's application, another department's
dataset, another holder's grant) → 404, as if it were not there.

Anchors: CKAN's one auth function per action (ckan/logic/auth/), Warehouse's Permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import abort, current_app, g, request
from flask_login import current_user
from werkzeug.datastructures import WWWAuthenticate


class Action(enum.StrEnum):
    # anyone signed in, for themself: account, tokens, applying, bidding, asking, reporting
    ACCOUNT = "account"
    FOLLOW = "follow"  # anyone signed in: follows and favourites; on a follow, its owner only
    # the catalog (portal/catalog/curation.py)
    CURATE = "curate"  # a curator, on their own department's datasets
    DECIDE_RESTRICTION = "decide_restriction"  # the bureau approves or rejects a restriction
    # public feedback (portal/feedback.py)
    ANSWER_ERROR_REPORT = "answer_error_report"  # the providing department's curator
    ROUTE_DATA_REQUEST = "route_data_request"  # the bureau sends a request to a department
    ANSWER_DATA_REQUEST = "answer_data_request"  # the curator of the department it went to
    # conditional data (licenses/)
    REVIEW_APPLICATIONS = "review_applications"  # the queue: a curator (their department) or the bureau
    VIEW_APPLICATION = "view_application"  # the applicant, the provider's curators, the bureau
    DECIDE_APPLICATION = "decide_application"  # the providing department's curators (Art. 25)
    ACT_AS_APPLICANT = "act_as_applicant"  # withdraw, answer, accept: the applicant only
    HOLD_GRANT = "hold_grant"  # download, report use: the grant's holder
    REVOKE_GRANT = "revoke_grant"  # the providing department's curators or the bureau
    # the data sandbox (licenses/sandbox.py): queries and their results are seen by the
    # providing department's curators and the bureau; a release is decided by the department
    OVERSEE_SANDBOX = "oversee_sandbox"
    DECIDE_RELEASE = "decide_release"
    ENTER_CALENDAR = "enter_calendar"  # the bureau enters the State Council's schedule
    # tenders (licenses/tenders.py)
    MANAGE_TENDER = "manage_tender"  # announce, answer, close, re-open, award, conclude
    EVALUATE_TENDER = "evaluate_tender"  # the bureau or the providing department's staff
    BID = "bid"  # a company account the bureau verified
    # accounts (portal/accounts.py)
    MANAGE_USERS = "manage_users"  # roles, verification of researchers and companies
    # the bureau's pages (the /admin area, guarded as a whole)
    BUREAU = "bureau"


def _curator_of(user: Any, department_id: int | None) -> bool:
    return user.curator_department_id is not None and user.curator_department_id == department_id


def _bureau(user: Any, obj: Any = None) -> bool:
    return bool(user.is_bureau)


def can_use_account(user: Any, obj: Any = None) -> bool:
    return True


def can_follow(user: Any, follow: Any = None) -> bool:
    return follow is None or follow.user_id == user.id


def can_curate(user: Any, dataset: Any = None) -> bool:
    return user.is_curator if dataset is None else _curator_of(user, dataset.department_id)


def can_answer_error_report(user: Any, report: Any = None) -> bool:
    return user.is_curator if report is None else _curator_of(user, report.dataset.department_id)


def can_answer_data_request(user: Any, request: Any = None) -> bool:
    return (
        user.is_curator
        if request is None
        else (request.department_id is not None and _curator_of(user, request.department_id))
    )


def can_review_applications(user: Any, obj: Any = None) -> bool:
    return user.is_curator or user.is_bureau


def can_view_application(user: Any, app: Any = None) -> bool:
    if app is None:
        return True
    return user.id == app.applicant_id or _curator_of(user, app.department_id) or user.is_bureau


def can_decide_application(user: Any, app: Any = None) -> bool:
    return user.is_curator if app is None else _curator_of(user, app.department_id)


def can_act_as_applicant(user: Any, app: Any = None) -> bool:
    return app is None or user.id == app.applicant_id


def can_hold_grant(user: Any, grant: Any = None) -> bool:
    return grant is None or user.id == grant.user_id


def can_revoke_grant(user: Any, grant: Any = None) -> bool:
    if grant is None:
        return user.is_bureau or user.is_curator
    return user.is_bureau or _curator_of(user, grant.application.department_id)


def can_oversee_sandbox(user: Any, query: Any = None) -> bool:
    """`query`: a sandbox query (or anything with a dataset)."""
    if query is None:
        return user.is_bureau or user.is_curator
    return user.is_bureau or _curator_of(user, query.dataset.department_id)


def can_decide_release(user: Any, release: Any = None) -> bool:
    return user.is_curator if release is None else _curator_of(user, release.query.dataset.department_id)


def can_evaluate_tender(user: Any, tender: Any = None) -> bool:
    if tender is None:
        return user.is_bureau or user.is_curator
    return user.is_bureau or _curator_of(user, tender.department_id)


def can_bid(user: Any, tender: Any = None) -> bool:
    """Bids come from company accounts the bureau verified (a credit code, one account per
    code) with a verified email: a valid check digit alone proves nothing."""
    return user.is_verified_company and user.email_verified_at is not None


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any, Any], bool]
    hides: bool = False  # refused on an object: 404 (the object does not exist for this person)


RULES: dict[Action, Rule] = {
    Action.ACCOUNT: Rule(can_use_account),
    Action.FOLLOW: Rule(can_follow, hides=True),
    Action.CURATE: Rule(can_curate, hides=True),
    Action.DECIDE_RESTRICTION: Rule(_bureau),
    Action.ANSWER_ERROR_REPORT: Rule(can_answer_error_report, hides=True),
    Action.ROUTE_DATA_REQUEST: Rule(_bureau),
    Action.ANSWER_DATA_REQUEST: Rule(can_answer_data_request),
    Action.REVIEW_APPLICATIONS: Rule(can_review_applications),
    Action.VIEW_APPLICATION: Rule(can_view_application, hides=True),
    Action.DECIDE_APPLICATION: Rule(can_decide_application),
    Action.ACT_AS_APPLICANT: Rule(can_act_as_applicant),
    Action.HOLD_GRANT: Rule(can_hold_grant, hides=True),
    Action.REVOKE_GRANT: Rule(can_revoke_grant),
    Action.OVERSEE_SANDBOX: Rule(can_oversee_sandbox, hides=True),
    Action.DECIDE_RELEASE: Rule(can_decide_release, hides=True),
    Action.ENTER_CALENDAR: Rule(_bureau),
    Action.MANAGE_TENDER: Rule(_bureau),
    Action.EVALUATE_TENDER: Rule(can_evaluate_tender),
    Action.BID: Rule(can_bid),
    Action.MANAGE_USERS: Rule(_bureau),
    Action.BUREAU: Rule(_bureau),
}

PUBLIC = "public"


class NotAllowed(PermissionError):
    """This person may not take this action (on this object). `status` is what the web says."""

    def __init__(self, action: Action, status: int = 403) -> None:
        super().__init__(f"not allowed: {action.value}")
        self.action, self.status = action, status


def can(user: Any, action: Action, obj: Any = None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(RULES[action].check(user, obj))


def require(user: Any, action: Action, obj: Any = None) -> None:
    """Raise NotAllowed unless `user` may take `action` (on `obj`). Services call this first."""
    if can(user, action, obj):
        return
    hidden = obj is not None and RULES[action].hides and can(user, action)
    raise NotAllowed(action, 404 if hidden else 403)


# ---------------------------------------------------------------------- route declarations


def public(view: Callable) -> Callable:
    """Anyone, signed in or not (what the view shows is still only what is public)."""
    view.authorization = PUBLIC  # type: ignore[attr-defined]  # the declaration rides on the function
    return view


def _check(action: Action) -> Any:
    """The role-level check of a route: the login page when signed out, 403 when refused."""
    if not current_user.is_authenticated:
        if request.path.startswith("/api/"):  # an API client has no login page to go to
            abort(401, www_authenticate=WWWAuthenticate("Bearer", {"realm": "portal"}))
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]  # set by Flask-Login
    if not can(current_user, action):
        g.refused_by_route = action  # tests tell a route's refusal from an object's
        abort(403)
    return None


def requires(action: Action) -> Callable:
    """Signed in (else the login page, or 401 under /api/), and allowed the action (else 403)."""

    def declare(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            return _check(action) or view(*args, **kwargs)

        checked.authorization = action  # type: ignore[attr-defined]  # as on @public views
        return checked

    return declare


def guard_blueprint(blueprint: Any, action: Action) -> None:
    """A whole area behind one action (the /admin area: the bureau): checked before every
    view of the blueprint, so a page added there without a declaration is still guarded."""
    blueprint.authorization = action
    blueprint.before_request(lambda: _check(action))


def declared(app: Any, endpoint: str) -> str | Action | None:
    """What a route declares: its blueprint's guard, else its view's own declaration."""
    blueprint = app.blueprints.get(endpoint.rpartition(".")[0]) if "." in endpoint else None
    return getattr(blueprint, "authorization", None) or getattr(
        app.view_functions[endpoint], "authorization", None
    )


def undeclared_routes(app: Any) -> list[str]:
    """Routes that declare neither @public nor @requires, nor sit in a guarded blueprint."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and declared(app, rule.endpoint) is None
    )
